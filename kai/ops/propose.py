"""`kai run`: ask a model for kubectl commands (structured output), parse them tolerantly.

The model only proposes: every command it returns is classified by `kai.ops.classify` and run (or not) by
`kai.ops.gate`. Whatever shape the answer has, nothing here runs anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kai.errors import ModelError
from kai.model.client import LLM
from kai.model.plan import PlanError, first_json_object
from kai.model.prompts import render
from kai.ops.classify import Command, split_line

OPS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "commands": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "argv": {"type": "array", "items": {"type": "string"}},
                    "purpose": {"type": "string"},
                },
                "required": ["argv", "purpose"],
                "additionalProperties": False,
            },
        },
        "explanation": {"type": "string"},
        "questions": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["commands", "explanation", "questions"],
    "additionalProperties": False,
}


@dataclass(slots=True)
class Proposal:
    commands: list[Command] = field(default_factory=list)
    explanation: str = ""
    questions: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # entries kai could not turn into argv


def _command(entry: Any) -> Command | str:
    """One proposed entry as a Command, or why it cannot be one."""
    if isinstance(entry, str):
        entry = {"command": entry}
    if not isinstance(entry, dict):
        return f"not a command: {str(entry)[:80]}"
    purpose = str(entry.get("purpose") or entry.get("description") or "")
    argv = entry.get("argv")
    if argv is None and isinstance(entry.get("command"), str):
        try:
            argv = split_line(entry["command"])
        except ValueError as e:
            return str(e)
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        return f"argv is not a list of strings: {json.dumps(argv)[:80]}"
    return Command(list(argv), purpose)


def parse_proposal(text: str) -> Proposal:
    """The model's answer as a Proposal: JSON, bare or wrapped in prose or a fence."""
    if not text or not text.strip():
        raise PlanError("the answer is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = first_json_object(text)
    if not isinstance(data, dict):
        raise PlanError("the answer is not a JSON object")
    raw = data.get("commands")
    if raw is None:
        raise PlanError('the answer has no "commands"')
    if not isinstance(raw, list):
        raise PlanError('"commands" is not a list')
    out = Proposal(explanation=str(data.get("explanation") or ""))
    questions = data.get("questions") or []
    out.questions = [str(q) for q in questions] if isinstance(questions, list) else [str(questions)]
    for entry in raw:
        c = _command(entry)
        if isinstance(c, str):
            out.unreadable.append(c)
        else:
            out.commands.append(c)
    return out


def propose(llm: LLM, request: str, context: str, namespace: str, persona: str) -> Proposal:
    """Ask the model for commands; one corrective retry when the answer cannot be read."""
    messages = render(
        "operate", persona=persona, context=context, namespace=namespace, request=request.strip()
    )
    completion = llm.complete(messages, OPS_SCHEMA)
    try:
        return parse_proposal(completion.text)
    except PlanError as first:
        messages = [
            *messages,
            {"role": "assistant", "content": completion.text},
            *render("retry", error=str(first)),
        ]
        completion = llm.complete(messages, OPS_SCHEMA)
        try:
            return parse_proposal(completion.text)
        except PlanError as second:
            raise ModelError(f"the model's answer could not be read twice: {second}") from None

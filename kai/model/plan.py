"""The model's answer as a Plan: tolerant of fences and prose, strict about what it accepts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from kai.errors import InputError

PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "objects": {"type": "array", "items": {"type": "object"}},
        "rationale": {"type": "string"},
        "explanations": {"type": "object", "additionalProperties": {"type": "string"}},
        "assumptions": {"type": "array", "items": {"type": "string"}},
        "questions": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["objects", "rationale", "questions"],
}

_FENCE = re.compile(r"```([A-Za-z]*)[^\n]*\n(.*?)```", re.S)


class PlanError(ValueError):
    """The answer holds no usable plan; the message is sent back to the model once."""


@dataclass(slots=True)
class Plan:
    objects: list[dict[str, Any]] = field(default_factory=list)
    rationale: str = ""
    explanations: dict[str, str] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _from_json(data: Any) -> Plan:
    if not isinstance(data, dict) or not isinstance(data.get("objects"), list):
        raise PlanError('the JSON has no "objects" list')
    objects = data["objects"]
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict) or not obj.get("apiVersion") or not obj.get("kind"):
            raise PlanError(
                f"objects[{i}] is not a Kubernetes object (apiVersion and kind are required)"
            )
    if not objects and not _strings(data.get("questions")):
        raise PlanError(
            'the answer has no objects and no questions: put the Kubernetes objects in "objects", '
            'or ask what you need to know in "questions"'
        )
    raw = data.get("explanations")
    explanations: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return Plan(
        objects=objects,
        rationale=str(data.get("rationale") or ""),
        explanations={str(k): str(v) for k, v in explanations.items()},
        assumptions=_strings(data.get("assumptions")),
        questions=_strings(data.get("questions")),
    )


def first_json_object(text: str) -> Any:
    """The first JSON object in `text`, wherever prose or fences put it."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise PlanError("no JSON object found")


def _from_yaml(blocks: list[str], prose: str) -> Plan:
    from kai.manifests import load_text

    objects: list[dict[str, Any]] = []
    for block in blocks:
        try:
            manifests, _ = load_text(block, "model answer")
        except InputError as e:
            raise PlanError(e.message) from None
        objects += [m.obj for m in manifests]
    if not objects:
        raise PlanError("the YAML holds no Kubernetes object")
    return Plan(objects=objects, rationale=prose.strip())


def parse_plan(text: str) -> Plan:
    """A Plan from the model's text: JSON (bare, fenced or wrapped in prose) or fenced YAML."""
    if not text or not text.strip():
        raise PlanError("the answer is empty")
    fences = _FENCE.findall(text)
    for lang, body in fences:
        if lang.lower() in ("json", ""):
            try:
                return _from_json(json.loads(body))
            except json.JSONDecodeError:
                pass
    yaml_blocks = [body for lang, body in fences if lang.lower() in ("yaml", "yml")]
    if yaml_blocks:
        return _from_yaml(yaml_blocks, _FENCE.sub("", text))
    try:
        return _from_json(first_json_object(text))
    except PlanError as json_error:
        stripped = text.lstrip()
        if stripped.startswith(("apiVersion:", "---", "kind:")):
            return _from_yaml([stripped], "")
        raise PlanError(str(json_error)) from None

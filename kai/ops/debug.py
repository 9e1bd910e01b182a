"""`kai debug KIND/NAME`: a bounded, read-only diagnosis loop over the model's tool calling.

The model may only call the read-only tools below; each becomes a kubectl argv that kai builds
itself and checks with its own classifier (a tool can never produce a write). Tool output is
redacted, optionally anonymized, size-capped, and goes back to the model as data. The loop ends
with a diagnosis whose fix is only a proposal: the CLI sends it through the same write gate as
`kai run`, after the person has seen it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kai.errors import ModelError
from kai.model.anonymize import Anonymizer
from kai.model.client import LLM, Completion, ToolCall, Tools
from kai.model.plan import PlanError, first_json_object
from kai.model.prompts import render
from kai.model.redact import redact_object, redact_text
from kai.ops.classify import Command, classify
from kai.ops.grammar import Kind
from kai.ops.runner import Kubectl, Ran

MAX_TOOL_OUTPUT = 12_000
MAX_LOG_LINES = 200
_KIND = {"type": "string", "description": "Resource type, e.g. pod, deployment, service, node."}
_NAME = {"type": "string", "description": "Object name."}
TOOL_SPECS: list[dict[str, Any]] = [
    {
        "name": "get",
        "description": "kubectl get: list objects of a kind (table), or one object as YAML.",
        "parameters": {
            "type": "object",
            "properties": {
                "kind": _KIND,
                "name": _NAME,
                "output": {"type": "string", "enum": ["wide", "yaml"]},
            },
            "required": ["kind"],
        },
    },
    {
        "name": "describe",
        "description": "kubectl describe: an object's state, conditions and recent events.",
        "parameters": {
            "type": "object",
            "properties": {"kind": _KIND, "name": _NAME},
            "required": ["kind", "name"],
        },
    },
    {
        "name": "logs",
        "description": "kubectl logs: the last lines a container wrote (previous: the crashed run).",
        "parameters": {
            "type": "object",
            "properties": {
                "pod": {"type": "string"},
                "container": {"type": "string"},
                "previous": {"type": "boolean"},
                "tail": {"type": "integer", "minimum": 1, "maximum": MAX_LOG_LINES},
            },
            "required": ["pod"],
        },
    },
    {
        "name": "events",
        "description": "kubectl events: recent events in the namespace, or for one object (kind/name).",
        "parameters": {
            "type": "object",
            "properties": {"for": {"type": "string", "description": "kind/name, optional"}},
        },
    },
    {
        "name": "top",
        "description": "kubectl top: CPU and memory in use by pods or nodes (needs metrics-server).",
        "parameters": {
            "type": "object",
            "properties": {"kind": {"type": "string", "enum": ["pod", "node"]}, "name": _NAME},
            "required": ["kind"],
        },
    },
    {
        "name": "evaluate",
        "description": "kai's policy evaluator on a live object: missing probes, limits, security.",
        "parameters": {
            "type": "object",
            "properties": {"kind": _KIND, "name": _NAME},
            "required": ["kind", "name"],
        },
    },
]
_SECRET_KINDS = {"secret", "secrets"}
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,252}")  # never a flag, never shell syntax


@dataclass(slots=True)
class Step:
    tool: str
    arguments: dict[str, Any]
    argv: list[str]  # the kubectl command kai ran for it ([] when it ran none)
    ok: bool
    note: str = ""


@dataclass(slots=True)
class Diagnosis:
    root_cause: str
    evidence: list[dict[str, str]] = field(default_factory=list)
    fix: Command | None = None
    fix_explanation: str = ""
    confidence: str = ""
    steps: list[Step] = field(default_factory=list)
    model_calls: int = 0
    prompt_tokens: int = 0
    cost_usd: float | None = 0.0
    stopped_because: str = ""


def _str(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    return str(value).strip() if value is not None else ""


def tool_argv(call: ToolCall) -> list[str] | str:
    """The kubectl argv for a tool call, or why there is none."""
    a = call.arguments
    kind = _str(a, "kind").lower()
    name = _str(a, "name")
    for key in ("kind", "name", "pod", "container", "for"):
        value = _str(a, key)
        if value and not _WORD.fullmatch(value):
            return f"{key} {value[:60]!r} is not a Kubernetes name"
    if kind.split(".")[0] in _SECRET_KINDS or name.lower().startswith(("secret/", "secrets/")):
        return "Secrets are never read"
    if call.name == "get":
        output = "yaml" if _str(a, "output") == "yaml" and name else "wide"
        return ["get", kind, *([name] if name else []), "-o", output]
    if call.name in ("describe", "evaluate"):
        if not kind or not name:
            return f"{call.name} needs kind and name"
        return (
            ["describe", kind, name]
            if call.name == "describe"
            else ["get", kind, name, "-o", "json"]
        )
    if call.name == "logs":
        pod = _str(a, "pod")
        if not pod:
            return "logs needs a pod"
        try:
            tail = max(1, min(int(a.get("tail") or 100), MAX_LOG_LINES))
        except (TypeError, ValueError):
            tail = 100
        argv = ["logs", pod, f"--tail={tail}"]
        if _str(a, "container"):
            argv += ["-c", _str(a, "container")]
        if a.get("previous") is True:
            argv.append("--previous")
        return argv
    if call.name == "events":
        target = _str(a, "for")
        return ["events"] + (["--for", target] if target else [])
    if call.name == "top":
        kind = "node" if kind == "node" else "pod"
        return ["top", kind] + ([name] if name else [])
    return f"unknown tool {call.name!r}: the tools are get, describe, logs, events, top, evaluate"


def _clip(text: str) -> str:
    if len(text) <= MAX_TOOL_OUTPUT:
        return text
    return f"[first {len(text) - MAX_TOOL_OUTPUT:,} characters cut]\n" + text[-MAX_TOOL_OUTPUT:]


@dataclass(slots=True)
class Investigator:
    """Runs the model's tool calls read-only and prepares their output for the model."""

    kubectl: Kubectl
    namespace: str | None
    anonymizer: Anonymizer | None = None
    rules: list[Any] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    # Every secret value redaction has removed from an object so far: logs and events that
    # echo one are scrubbed of it too.
    known: set[str] = field(default_factory=set)

    def hide(self, text: str) -> str:
        text = redact_text(text, self.known)
        return self.anonymizer.hide(text) if self.anonymizer else text

    def run(self, call: ToolCall) -> str:
        """The tool's result as text for the model (an error message is a result too)."""
        if self.anonymizer:
            call = ToolCall(call.id, call.name, self.anonymizer.reveal_any(call.arguments))
        built = tool_argv(call)
        if isinstance(built, str):
            self.steps.append(Step(call.name, call.arguments, [], False, built))
            return self.hide(f"error: {built}")
        verdict = classify(built, self.namespace)
        if verdict.kind is not Kind.read or verdict.sensitive:
            # Defence in depth: tool_argv only builds reads, and the classifier must agree.
            reason = verdict.reason or f"kai classifies it as {verdict.kind.value}"
            self.steps.append(Step(call.name, call.arguments, [], False, reason))
            return self.hide(f"error: not a read-only command ({reason})")
        argv = self.kubectl.full(verdict)
        ran = self.kubectl.run(argv)
        self.steps.append(Step(call.name, call.arguments, argv, ran.code == 0))
        return self.hide(_clip(self._result(call, ran)))

    def _result(self, call: ToolCall, ran: Ran) -> str:
        if ran.code != 0:
            return f"kubectl exited {ran.code}: {ran.stderr.strip() or ran.stdout.strip()}"
        out = ran.stdout
        if self.anonymizer and call.name == "get":
            self.anonymizer.learn_table(out)
        if call.name == "evaluate" or ("-o" in ran.argv and "yaml" in ran.argv):
            out = self._structured(call, out)
        return out or "(no output)"

    def _structured(self, call: ToolCall, text: str) -> str:
        from kai.yamlio import YAMLError, load_one

        try:
            obj = load_one(text)
        except (YAMLError, ValueError):
            return text
        if not isinstance(obj, dict):
            return text
        obj = redact_object(obj, self.known)
        if self.anonymizer:
            self.anonymizer.learn_object(obj)
        if call.name != "evaluate":
            from kai.yamlio import dump

            return dump(obj)
        return self._evaluate(obj)

    def _evaluate(self, obj: dict[str, Any]) -> str:
        from kai.manifests import object_ref
        from kai.models import Manifest, Source
        from kai.pipeline import evaluate

        for key in ("status",):
            obj.pop(key, None)
        manifest = Manifest(object_ref(obj), Source("live", 1), obj)
        report = evaluate([manifest], self.rules, namespace=self.namespace or "default")
        found = [f for f in report.findings if not f.suppressed]
        if not found:
            return "kai's evaluator: no findings"
        return "kai's evaluator found:\n" + "\n".join(
            f"- {f.rule} ({f.severity.value}): {f.message}" + (f" at {f.path}" if f.path else "")
            for f in found
        )


def text_tool_calls(text: str, known: set[str]) -> list[ToolCall]:
    """Tool calls written as JSON in the answer's text, as small local models do:
    {"name": "get", "arguments": {...}} in a ```json fence or bare (one or several). Only the
    names of kai's tools count; anything else in the text stays text."""
    decoder = json.JSONDecoder()
    calls: list[ToolCall] = []
    pos = 0
    for m in re.finditer(r"\{", text):
        if m.start() < pos:
            continue
        try:
            value, end = decoder.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        pos = end
        if not isinstance(value, dict) or value.get("name") not in known:
            continue
        args = value.get("arguments", value.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                args = {"_unreadable": args[:200]}
        if isinstance(args, dict):
            calls.append(ToolCall(f"text-call-{len(calls) + 1}", str(value["name"]), args))
    return calls


def _normal(text: str) -> str:
    return " ".join(text.split()).strip(" .\"'“”").lower()


def check_evidence(d: Diagnosis, results: Sequence[str]) -> None:
    """Mark each quoted piece of evidence verified when it appears in a tool result kai returned
    (whitespace and case aside), unverified otherwise. With no tool call at all, or no verified
    quote, the model's confidence is not repeated as if it were earned."""
    haystack = [_normal(r) for r in results]
    for e in d.evidence:
        quote = _normal(e.get("quote", ""))
        e["verified"] = "yes" if quote and any(quote in h for h in haystack) else "no"
    if not d.steps:
        d.confidence = "none: the model used no tools, so nothing here was checked on the cluster"
    elif d.evidence and not any(e["verified"] == "yes" for e in d.evidence):
        d.confidence = "low: no quoted evidence appears in what the tools returned"


def parse_diagnosis(text: str) -> Diagnosis:
    """The model's final JSON as a Diagnosis (prose around it is tolerated)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = first_json_object(text)
    if not isinstance(data, dict) or not data.get("root_cause"):
        raise PlanError('the answer has no "root_cause"')
    evidence = [
        {"source": str(e.get("source", "")), "quote": str(e.get("quote", ""))}
        for e in data.get("evidence") or []
        if isinstance(e, dict)
    ]
    d = Diagnosis(str(data["root_cause"]), evidence, confidence=str(data.get("confidence") or ""))
    fix = data.get("fix")
    if isinstance(fix, dict):
        d.fix_explanation = str(fix.get("explanation") or "")
        if fix.get("type") == "patch" and fix.get("kind") and fix.get("name"):
            kind = str(fix["kind"])
            patch_type = "strategic" if kind.lower() in _BUILTIN else "merge"
            d.fix = Command(
                [
                    "patch",
                    kind.lower(),
                    str(fix["name"]),
                    f"--type={patch_type}",
                    "-p",
                    json.dumps(fix.get("patch") or {}, separators=(",", ":")),
                ],
                d.fix_explanation,
            )
        elif isinstance(fix.get("argv"), list) and all(isinstance(a, str) for a in fix["argv"]):
            d.fix = Command(list(fix["argv"]), d.fix_explanation)
    return d


_BUILTIN = {
    "deployment",
    "statefulset",
    "daemonset",
    "replicaset",
    "pod",
    "service",
    "job",
    "cronjob",
    "configmap",
    "horizontalpodautoscaler",
    "poddisruptionbudget",
    "ingress",
    "networkpolicy",
    "serviceaccount",
}


def _opening_messages(
    target: str, investigator: Investigator, persona: str, max_steps: int
) -> list[dict[str, Any]]:
    """The debug prompt for `target`; with an anonymizer, the target and namespace it names are
    the anonymized ones (the model never sees the real names)."""
    anon = investigator.anonymizer
    shown_target = anon.hide(target) if anon else target
    shown_ns = investigator.namespace or "(the context's default)"
    if anon and investigator.namespace:
        shown_ns = anon.learn(investigator.namespace, "namespace")
    return [
        {**m}
        for m in render(
            "debug",
            persona=persona,
            target=shown_target,
            namespace=shown_ns,
            max_steps=str(max_steps),
        )
    ]


def _assistant_turn(completion: Completion) -> dict[str, Any]:
    """The model's turn as a chat message, with the tool calls it asked for."""
    return {
        "role": "assistant",
        "content": completion.text or None,
        "tool_calls": [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in completion.tool_calls
        ],
    }


@dataclass
class _Investigation:
    """One diagnosis conversation in progress: the messages so far, how many of the
    `max_steps` tool calls are used, what the tools returned (to check the evidence against)
    and why the loop ended."""

    investigator: Investigator
    max_steps: int
    progress: Callable[[Step], None] | None
    messages: list[dict[str, Any]]
    used: int = 0
    results: list[str] = field(default_factory=list)
    stopped: str = "the model answered"

    @property
    def budget_spent(self) -> bool:
        return self.used >= self.max_steps

    def ask(self, llm: LLM) -> tuple[Completion, bool]:
        """The model's next turn, and whether its tool calls were written as JSON in its text.

        Once the budget is spent the model may not call tools (and calls in its text are not
        read): its answer is the diagnosis.
        """
        final = self.budget_spent
        completion = llm.complete(
            self.messages, tools=Tools(TOOL_SPECS, "none" if final else "auto")
        )
        from_text = False
        if not completion.tool_calls and not final:
            known = {str(t["name"]) for t in TOOL_SPECS}
            completion.tool_calls = text_tool_calls(completion.text, known)
            from_text = bool(completion.tool_calls)
        return completion, from_text

    def run_calls(self, calls: Sequence[ToolCall], from_text: bool) -> None:
        """Run each call while the budget lasts (a call past it is answered with an error, not
        run), reply with its result, and tell the model to answer once the budget is used."""
        for call in calls:
            if self.budget_spent:
                result = f"error: not run, the budget of {self.max_steps} tool calls is used up"
            else:
                result = self._run(call, from_text)
            self.messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        if self.budget_spent:
            self.messages.append(
                {
                    "role": "user",
                    "content": "The tool budget is used up. Answer now with the JSON object.",
                }
            )
            self.stopped = f"the step budget ({self.max_steps}) was used"

    def _run(self, call: ToolCall, from_text: bool) -> str:
        """Run one call through the investigator, noting a call recovered from the text."""
        self.used += 1
        result = self.investigator.run(call)
        self.results.append(result)
        if from_text:
            step = self.investigator.steps[-1]
            how = "written as JSON in the answer's text"
            step.note = f"{step.note}; {how}" if step.note else how
        if self.progress:
            self.progress(self.investigator.steps[-1])
        return result


def _read_diagnosis(llm: LLM, answer: Completion, investigation: _Investigation) -> Diagnosis:
    """The model's final answer as a Diagnosis, in real names again, with its evidence checked
    against what the tools returned and the run's steps, model usage and stop reason."""
    anon = investigation.investigator.anonymizer
    results = investigation.results
    text = anon.reveal(answer.text) if anon else answer.text
    try:
        d = parse_diagnosis(text)
    except PlanError as e:
        raise ModelError(f"the model's diagnosis could not be read: {e}") from None
    if anon and d.fix:
        d.fix = Command([anon.reveal(a) for a in d.fix.argv], d.fix.purpose)
    d.steps = investigation.investigator.steps
    check_evidence(d, [anon.reveal(r) for r in results] if anon else results)
    d.model_calls, d.prompt_tokens, d.cost_usd = llm.calls, llm.prompt_tokens, llm.cost_usd
    d.stopped_because = investigation.stopped
    return d


def diagnose(
    llm: LLM,
    target: str,
    investigator: Investigator,
    persona: str,
    max_steps: int = 8,
    progress: Callable[[Step], None] | None = None,
) -> Diagnosis:
    """Investigate `target` with at most `max_steps` tool calls; the model's diagnosis.

    Each round the model either calls tools (kai runs them and replies with their output) or
    answers; after the budget is spent it gets one last turn without tools.
    """
    messages = _opening_messages(target, investigator, persona, max_steps)
    investigation = _Investigation(investigator, max_steps, progress, messages)
    completion: Completion | None = None
    for _ in range(max_steps + 1):
        final = investigation.budget_spent
        completion, from_text = investigation.ask(llm)
        if not completion.tool_calls or final:
            if final and completion.tool_calls:
                investigation.stopped = f"the step budget ({max_steps}) ran out"
            break
        messages.append(_assistant_turn(completion))
        investigation.run_calls(completion.tool_calls, from_text)
    assert completion is not None
    return _read_diagnosis(llm, completion, investigation)

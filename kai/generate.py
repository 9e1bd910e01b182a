"""`kai generate`: plan with a model, critique, repair, and hand back manifests that pass.

The Three Roles loop: the model plans (and explains: teacher), takes the person's constraints
and answers (student), and iterates with kai's evaluator (co-worker): plan -> evaluate ->
deterministic fixes -> a repair turn with the remaining findings -> evaluate again, at most
`max_rounds` model turns, stopping early when clean or when a round makes no progress.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kai import constraints
from kai.config import Config
from kai.errors import KaiError, ModelError
from kai.manifests import dump_yaml, load_text
from kai.model.client import LLM, Settings
from kai.model.plan import PLAN_SCHEMA, Plan, PlanError, parse_plan
from kai.model.prompts import render
from kai.model.redact import redact_object
from kai.models import Finding, Manifest, Note, Report, Rule, Severity


@dataclass(slots=True)
class Round:
    number: int
    model_calls: int
    findings_in_draft: int
    fixed_by_kai: int
    remaining: int


@dataclass(slots=True)
class Generated:
    plan: Plan
    yaml: str = ""
    draft_report: Report | None = None
    report: Report | None = None
    rounds: list[Round] = field(default_factory=list)
    failing: list[Finding] = field(default_factory=list)
    stopped_because: str = ""
    model_calls: int = 0  # completed calls; attempts without an answer are `retries`
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    messages: list[dict[str, str]] = field(default_factory=list)  # the conversation, for a reprompt
    # Suppression annotations the model wrote, removed before kai judged the plan.
    stripped_suppressions: list[str] = field(default_factory=list)


def _skill() -> tuple[str, str, str]:
    from kai.resources import data_dir
    from kai.yamlio import load_one

    agent = data_dir("agent")
    persona = (agent / "persona.md").read_text(encoding="utf-8").strip()
    principles = load_one((agent / "principles.yaml").read_text(encoding="utf-8")).get(
        "principles", []
    )
    questions = load_one((agent / "questions.yaml").read_text(encoding="utf-8")).get(
        "questions", []
    )
    p = "\n".join(f"- {x['text']}" for x in principles)
    q = "\n".join(f"- {x['ask']}{_condition(x)}" for x in questions)
    return persona, p, q


def _condition(question: dict[str, Any]) -> str:
    """When a question must be asked, or the default that applies when it is not answered."""
    if question.get("required"):
        return " (required)"
    if question.get("required_when"):
        return f" (required when {question['required_when']})"
    if question.get("default"):
        return f" Default: {question['default']}."
    return ""


def question_keys() -> dict[str, str]:
    """The skill's question keys (agent/questions.yaml) and what each asks."""
    from kai.resources import data_dir
    from kai.yamlio import load_one

    data = load_one((data_dir("agent") / "questions.yaml").read_text(encoding="utf-8"))
    return {str(x["key"]): str(x["ask"]) for x in data.get("questions", []) if x.get("key")}


def persona() -> str:
    """The skill's persona (agent/persona.md), for prompts other than planning."""
    return _skill()[0]


def first_messages(
    request: str, rules: Sequence[Rule], config: Config, answers: dict[str, str]
) -> list[dict[str, str]]:
    persona, principles, questions = _skill()
    bar = "\n".join(
        f"- {r.id} ({r.severity.value}): {r.title}" for r in rules if r.enabled and r.schema is None
    )
    constraints = dict(config.extra)
    if config.namespace:
        constraints["namespace"] = config.namespace
    from kai.yamlio import dump

    return render(
        "plan",
        persona=persona,
        principles=principles,
        rules=bar,
        constraints=dump(constraints).strip() if constraints else "(none)",
        questions=questions,
        request=request.strip(),
        answers=_answer_lines(answers),
    )


def _answer_lines(answers: dict[str, str]) -> str:
    """The person's answers; a --set key the skill knows is shown with its question."""
    asks = question_keys() if answers else {}
    return "\n".join(f"{asks[k]} {v}" if k in asks else f"{k}: {v}" for k, v in answers.items())


class UnreadableAnswer(ModelError):
    """The model answered, but not with a plan kai can read (after its corrective retry)."""


def _cut_off(llm: LLM) -> UnreadableAnswer:
    bound = getattr(getattr(llm, "settings", None), "max_tokens", None)
    return UnreadableAnswer(
        f"the model's answer stopped at the max_tokens bound ({bound} tokens) before it was "
        "complete: raise it with --max-tokens (or KAI_MAX_TOKENS, max_tokens: in .kai.yaml)"
    )


def _ask(llm: LLM, messages: list[dict[str, str]]) -> tuple[Plan, str]:
    """One model turn, with one corrective retry when the answer cannot be read. An answer cut
    off at max_tokens is not retried: a small local model, told its answer was unreadable,
    answered with no objects at all (Qwen2.5-Coder-1.5B, benchmarks/eval_local.py); the bound
    is what to change."""
    completion = llm.complete(messages, PLAN_SCHEMA)
    try:
        return parse_plan(completion.text), completion.text
    except PlanError as first:
        if completion.truncated:
            raise _cut_off(llm) from None
        messages = [
            *messages,
            {"role": "assistant", "content": completion.text},
            *render("retry", error=str(first)),
        ]
        completion = llm.complete(messages, PLAN_SCHEMA)
        try:
            return parse_plan(completion.text), completion.text
        except PlanError as second:
            if completion.truncated:
                raise _cut_off(llm) from None
            raise UnreadableAnswer(
                f"the model's answer could not be read twice: {second}"
            ) from None


def _first_sentence(text: str) -> str:
    """The first sentence of a wrapped paragraph (rule files wrap their remediation text)."""
    flat = " ".join(text.split())
    end = flat.find(". ")
    return flat if end == -1 else flat[: end + 1]


def _finding_lines(findings: Sequence[Finding], rules: dict[str, Rule]) -> str:
    lines = []
    for f in findings:
        rule = rules.get(f.rule)
        fix = f" Fix: {_first_sentence(rule.remediation)}" if rule else ""
        where = f" at {f.path}" if f.path else ""
        lines.append(
            f"- {f.rule} ({f.severity.value}) {f.object.display()}{where}: {f.message}.{fix}"
        )
    return "\n".join(lines)


def strip_suppressions(
    objects: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[str]]:
    """The model's objects without suppression annotations (kai.dev/ignore, its reason,
    ignore.kai.dev/*), and what was removed: the evaluator is never switched off by the model.
    Only the person can add a suppression back, by hand, in the file kai saved."""
    from kai.policy.engine import IGNORE_ANNOTATION, IGNORE_PREFIX, IGNORE_REASON_ANNOTATION

    def is_suppression(key: Any) -> bool:
        return isinstance(key, str) and (
            key in (IGNORE_ANNOTATION, IGNORE_REASON_ANNOTATION) or key.startswith(IGNORE_PREFIX)
        )

    def clean(meta: Any, where: str, removed: list[str]) -> Any:
        ann = meta.get("annotations") if isinstance(meta, dict) else None
        if not isinstance(ann, dict) or not any(is_suppression(k) for k in ann):
            return meta
        removed += [f"{where} {k}: {json.dumps(v)}" for k, v in ann.items() if is_suppression(k)]
        kept = {k: v for k, v in ann.items() if not is_suppression(k)}
        out = {k: v for k, v in meta.items() if k != "annotations"}
        if kept:
            out["annotations"] = kept
        return out

    removed: list[str] = []
    cleaned = []
    for obj in objects:
        name = "/".join(_identity(obj))
        if "metadata" in obj:
            obj = {**obj, "metadata": clean(obj["metadata"], name, removed)}
        spec = obj.get("spec")
        template = spec.get("template") if isinstance(spec, dict) else None
        if (
            isinstance(spec, dict)
            and isinstance(template, dict)
            and isinstance(template.get("metadata"), dict)
        ):
            meta = clean(template["metadata"], f"{name} (pod template)", removed)
            obj["spec"] = {**spec, "template": {**template, "metadata": meta}}
        cleaned.append(obj)
    return cleaned, removed


def _judge(
    objects: Sequence[dict[str, Any]],
    rules: Sequence[Rule],
    defaults: Any,
    namespace: str,
    required: dict[str, str],
    evaluate: Any,
    fix_text: Any,
    schema_validate: Any,
) -> tuple[Report, Any, list[Manifest], Report]:
    """One round's verdict: the draft's findings, kai's fixes, then the evaluator, the schema
    stage and the person's explicit constraints on the fixed plan."""
    from kai.pipeline import SchemaOptions

    draft_yaml = dump_yaml(objects)
    draft_manifests, draft_notes = load_text(draft_yaml, "generated.yaml")
    draft = evaluate(draft_manifests, rules, draft_notes, namespace)
    fixed, fix_note = _fix_or_keep(fix_text, draft_yaml, rules, defaults, namespace)
    manifests, notes = load_text(fixed.fixed, "generated.yaml")
    report = evaluate(manifests, rules, notes, namespace)
    if fix_note:
        report.notes.append(Note("generated.yaml", 1, fix_note))
    schema_findings, schema_notes = schema_validate(manifests, rules, SchemaOptions())
    report.findings += schema_findings
    report.notes += schema_notes
    report.findings += constraints.check(manifests, required)
    return draft, fixed, manifests, report


def _fix_or_keep(
    fix_text: Any, text: str, rules: Sequence[Rule], defaults: Any, namespace: str
) -> tuple[Any, str]:
    """kai's deterministic fixes, or the answer unchanged when the fixer cannot handle it (a
    malformed answer, `ports: 8080` where a list belongs): the evaluator and the schema stage
    still judge it and the repair round sends their findings back, instead of a crash."""
    from kai.policy.fix import FileFix

    try:
        return fix_text(text, "generated.yaml", rules, defaults, namespace), ""
    except Exception as e:  # kai's own stage failing on model output is not a crash
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        return FileFix("generated.yaml", text, text), (
            f"kai's fixer could not process this answer ({type(e).__name__}: {detail}); "
            "no deterministic fixes were applied"
        )


def _identity(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return str(obj.get("kind")), str(name or "")


def repair_messages(
    base: Sequence[dict[str, str]],
    manifests: Sequence[Manifest],
    failing: Sequence[Finding],
    rules: dict[str, Rule],
) -> list[dict[str, str]]:
    """A compact repair turn: the planning instructions and the request (the same prefix as the
    first call, so a server's prompt cache serves it), then the remaining findings and only the
    objects they are about. Earlier answers and the objects that pass are not resent."""
    wanted = {(f.object.kind, f.object.name) for f in failing}
    with_findings = [m.obj for m in manifests if _identity(m.obj) in wanted] or [
        m.obj for m in manifests
    ]
    others = ["/".join(i) for i in (_identity(m.obj) for m in manifests) if i not in wanted]
    system = [m for m in base if m["role"] == "system"]
    request = "\n\n".join(m["content"] for m in base if m["role"] == "user")
    return [
        *system,
        *render(
            "repair",
            request=request,
            findings=_finding_lines(failing, rules),
            manifests=dump_yaml(redact_object(o) for o in with_findings).strip(),
            others=(
                f"Your other objects pass and are kept as they are: {', '.join(others)}.\n"
                if others and len(with_findings) < len(manifests)
                else ""
            ),
        ),
    ]


def merge_objects(
    current: Sequence[dict[str, Any]], answer: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The repaired plan: each object the model sent back replaces the one with the same kind,
    name, a new one is added, and the objects it left out are kept."""
    sent = {_identity(o): o for o in answer}
    merged = [sent.pop(_identity(o), o) for o in current]
    return [*merged, *sent.values()]


def generate(
    request: str,
    settings: Settings,
    rules: Sequence[Rule],
    config: Config,
    answers: dict[str, str] | None = None,
    max_rounds: int = 3,
    fail_on: Severity = Severity.WARNING,
    cache_dir: Path | None = None,
    namespace: str = "default",
    llm: LLM | None = None,
    history: Sequence[dict[str, str]] | None = None,
    feedback: str | None = None,
    previous_yaml: str = "",
    progress: Callable[[str], None] | None = None,
) -> Generated:
    """Run the loop; with `history` and `feedback` it edits the previous plan (a reprompt).

    `progress` hears one line per repair round ("round 2: repairing 3 findings")."""
    from kai.pipeline import evaluate
    from kai.pipeline import validate as schema_validate
    from kai.policy.fix import fix_text

    llm = llm or LLM(settings, cache_dir)
    by_id = {r.id: r for r in rules}
    messages, base = _opening(
        request, rules, config, answers or {}, history, feedback, previous_yaml
    )
    plan, answer = _ask(llm, messages)
    result = Generated(plan=plan)
    previous: int | None = None
    defaults = (
        config.extra.get("defaults") if isinstance(config.extra.get("defaults"), dict) else {}
    )
    required = constraints.gather(answers or {}, config)
    for number in range(1, max_rounds + 1):
        if not plan.objects:
            result.stopped_because = _empty_plan_reason(plan)
            break
        calls_so_far = llm.calls
        objects, removed = strip_suppressions(plan.objects)
        result.stripped_suppressions += [
            r for r in removed if r not in result.stripped_suppressions
        ]
        try:
            draft, fixed, manifests, report = _judge(
                objects, rules, defaults, namespace, required, evaluate, fix_text, schema_validate
            )
        except KaiError:
            raise
        except Exception as e:  # kai's own stage failing on a model answer: one line, exit 3
            raise _internal(e) from None
        failing = [f for f in report.active() if f.severity.rank >= fail_on.rank]
        result.rounds.append(
            Round(number, calls_so_far, len(draft.active()), len(fixed.changes), len(failing))
        )
        result.yaml, result.report, result.failing = fixed.fixed, report, failing
        if result.draft_report is None:
            result.draft_report = draft
        result.stopped_because = _stop_reason(len(failing), previous, number, max_rounds)
        if result.stopped_because:
            break
        previous = len(failing)
        if progress is not None:
            n = len(failing)
            progress(f"round {number + 1}: repairing {n} finding{'s' if n != 1 else ''}")
        messages = repair_messages(base, manifests, failing, by_id)
        kept = [m.obj for m in manifests]
        try:
            plan, answer = _ask(llm, messages)
        except UnreadableAnswer as e:
            # the last judged result stands, with its findings (the verdict stays a FAIL)
            result.stopped_because = f"round {number + 1}'s repair answer was unusable: {e.message}"
            break
        result.plan = plan = _repaired(result.plan, kept, plan)
    result.messages = [*base, {"role": "assistant", "content": answer}]
    return _with_usage(result, llm)


def _empty_plan_reason(plan: Plan) -> str:
    if plan.questions:
        return "the model asked questions instead of planning"
    return "the model returned no objects"


def _with_usage(result: Generated, llm: LLM) -> Generated:
    """`result` with the model calls, retries, tokens and cost the loop spent."""
    result.model_calls = llm.calls
    result.retries = getattr(llm, "retries", 0)
    result.prompt_tokens = llm.prompt_tokens
    result.completion_tokens = llm.completion_tokens
    result.cost_usd = llm.cost_usd
    return result


def _stop_reason(failing: int, previous: int | None, number: int, max_rounds: int) -> str:
    """Why the loop stops after round `number` with `failing` findings left; "" to go on."""
    if not failing:
        return "clean"
    if previous is not None and failing >= previous:
        return f"round {number} made no progress"
    if number == max_rounds:
        return f"--max-rounds {max_rounds} reached"
    return ""


def _repaired(current: Plan, kept: list[dict[str, Any]], answer: Plan) -> Plan:
    """The plan after a repair turn: the answer's objects merged into the kept ones, and the
    answer's rationale, explanations and assumptions where it gave any."""
    return Plan(
        objects=merge_objects(kept, answer.objects),
        rationale=answer.rationale or current.rationale,
        explanations=answer.explanations or current.explanations,
        assumptions=answer.assumptions or current.assumptions,
        questions=answer.questions,
    )


def _opening(
    request: str,
    rules: Sequence[Rule],
    config: Config,
    answers: dict[str, str],
    history: Sequence[dict[str, str]] | None,
    feedback: str | None,
    previous_yaml: str,
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The first turn's messages, and the base (system + request) every repair turn starts from:
    the planning prompt, or with `history` and `feedback` the previous conversation asked for a
    change to the previous plan (a reprompt)."""
    if history is not None and feedback:
        previous_objects = [m.obj for m in load_text(previous_yaml, "previous.yaml")[0]]
        current = dump_yaml(redact_object(o) for o in previous_objects)
        messages = [
            *history,
            *render("reprompt", feedback=feedback.strip(), manifests=current.strip()),
        ]
        base = [dict(m) for m in history[:2]]
        if len(base) == 2:
            base[1]["content"] += f"\n\nThen the person asked for a change: {feedback.strip()}"
        return messages, base
    messages = first_messages(request, rules, config, answers)
    return messages, messages[:2]


def _internal(e: Exception) -> ModelError:
    """kai's own stage failing on a model answer, as one line (exit 3)."""
    detail = str(e).splitlines()[0] if str(e) else ""
    return ModelError(
        f"kai could not judge the model's answer (internal error {type(e).__name__}"
        f"{': ' + detail if detail else ''}); rerun, or report it with the answer"
    )


def parse_answers(pairs: Sequence[str]) -> dict[str, Any]:
    """--set key=value answers to the model's questions."""
    from kai.errors import InputError

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {pair!r}: expected key=value")
        out[key.strip()] = value.strip()
    return out


@dataclass(slots=True)
class Job:
    """One generate request with everything the loop needs: `kai generate` and the MCP `generate`
    tool both start it with `start` and run it with `run`."""

    request: str
    settings: Settings
    rules: Sequence[Rule]
    config: Config
    answers: dict[str, Any]
    max_rounds: int
    fail_on: Severity
    cluster_namespace: str | None  # the flag, else .kai.yaml's; None: the context's default
    cache_dir: Path | None

    @classmethod
    def start(
        cls,
        request: str,
        settings: Settings,
        rules: Sequence[Rule],
        config: Config,
        answers: dict[str, Any],
        max_rounds: int,
        fail_on: Severity,
        namespace: str | None,
    ) -> Job:
        from kai.policy.catalog import cache_dir

        cache = cache_dir()
        return cls(
            request,
            settings,
            rules,
            config,
            answers,
            max_rounds,
            fail_on,
            namespace or config.namespace,
            cache / "llm" if cache else None,
        )

    @property
    def namespace(self) -> str:
        """The namespace the plan is judged in."""
        return self.cluster_namespace or "default"

    def run(self, progress: Callable[[str], None] | None = None, **more: Any) -> Generated:
        """The loop once; `more` is generate's reprompt arguments (history, feedback, previous_yaml)."""
        return generate(
            self.request,
            self.settings,
            self.rules,
            self.config,
            self.answers,
            self.max_rounds,
            self.fail_on,
            self.cache_dir,
            self.namespace,
            progress=progress,
            **more,
        )

    def planned(
        self,
        run: Callable[[], Generated],
        answer: Callable[[list[str]], dict[str, str]],
    ) -> Generated:
        """Run until the model plans: each time it only asks questions, `answer` gives the
        answers (or raises to stop) and the loop starts again with them."""
        while True:
            result = run()
            if not result.plan.questions or result.plan.objects:
                return result
            self.answers.update(answer(result.plan.questions))

    def to_cluster(
        self,
        result: Generated,
        console: Any,
        confirm: Callable[[str], bool],
        kubeconfig: str | None,
        context: str | None,
        confirmed: bool,
    ) -> int:
        """`kai apply`'s flow on the generated YAML (dry run, diff, confirm, apply, watch): an
        exit code; ClusterError when no cluster can be reached."""
        from kai.cluster.flow import apply_flow

        manifests, notes = load_text(result.yaml, "generated.yaml")
        return apply_flow(
            console,
            confirm,
            manifests,
            notes,
            list(self.rules),
            self.fail_on,
            kubeconfig,
            context,
            self.cluster_namespace,
            confirmed,
            False,
            False,
            300.0,
            False,
            False,
        )

"""The evaluator: run every enabled rule over a set of manifests and produce a Report."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kai.models import Finding, Manifest, Note, Report, Rule
from kai.policy.compile import CompiledRule, compile_rule, error_text, unevaluable
from kai.policy.context import CheckFn, Context, Hit

__all__ = ["CheckFn", "Context", "Engine", "Hit", "error_text", "suppressions", "unevaluable"]

IGNORE_ANNOTATION = "kai.dev/ignore"
IGNORE_REASON_ANNOTATION = "kai.dev/ignore-reason"
# Per-rule form with its own reason, as kube-linter does: ignore.kai.dev/KAI-SEC-001: "reason"
IGNORE_PREFIX = "ignore.kai.dev/"

# Built-in kinds: anything else is a custom resource and gets a note when no rule applies.
BUILTIN_KINDS = frozenset(
    {
        "Pod",
        "PodTemplate",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
        "CronJob",
        "Service",
        "Endpoints",
        "EndpointSlice",
        "Ingress",
        "IngressClass",
        "NetworkPolicy",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "Namespace",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "StorageClass",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "LimitRange",
        "ResourceQuota",
        "PriorityClass",
        "CustomResourceDefinition",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "APIService",
        "RuntimeClass",
        "CSIDriver",
        "VolumeAttachment",
        "Lease",
        "Event",
        "Node",
    }
)


def _batchable(c: CompiledRule) -> bool:
    cel = c.rule.cel
    return cel is not None and not cel.variables and "cel.bind(" not in cel.expression


@dataclass(slots=True)
class _Plan:
    """What runs on one kind of object: the rules, and one batched program for the CEL ones."""

    rules: list[CompiledRule]
    cel_rules: list[CompiledRule]
    specific: bool  # some rule looks at this kind in particular (not only any object's metadata)
    batch: Any = None  # kai.policy.cel.Program over "[rule1, rule2, ...]"
    # each rule with its place in the batch's result list (-1: not batched)
    steps: list[tuple[CompiledRule, int]] = field(default_factory=list)


def _hits_for(
    c: CompiledRule, m: Manifest, ctx: Context, results: list[Any] | None, index: int
) -> list[Hit]:
    if results is not None and index >= 0 and c.interpret is not None:
        result = results[index]
        if c.passes(result, m, ctx):  # the common case, without interpret's generator
            return []
        return list(c.interpret(result, m, ctx))
    return list(c.run(m, ctx))


def suppressions(obj: dict[str, Any]) -> dict[str, str | None]:
    """Rule ids an object opts out of (kai.dev/ignore annotations), with the reason given.

    "*" (every rule) counts only with a reason: a bare `kai.dev/ignore: "*"` switches nothing
    off (wildcard_without_reason says so)."""
    meta = obj.get("metadata")
    ann = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(ann, dict):
        return {}
    out: dict[str, str | None] = {}
    reason = ann.get(IGNORE_REASON_ANNOTATION)
    listed = ann.get(IGNORE_ANNOTATION)
    if isinstance(listed, str):
        for part in listed.split(","):
            rule_id = part.strip()
            if rule_id:
                out[rule_id.upper()] = str(reason) if reason else None
    for key, value in ann.items():
        if isinstance(key, str) and key.startswith(IGNORE_PREFIX):
            out[key[len(IGNORE_PREFIX) :].upper()] = str(value) if value else None
    if "*" in out and not (out["*"] or "").strip():
        del out["*"]
    return out


def wildcard_without_reason(obj: dict[str, Any]) -> bool:
    """A `kai.dev/ignore: "*"` (or ignore.kai.dev/*) with no reason, which kai does not honour."""
    meta = obj.get("metadata")
    ann = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(ann, dict):
        return False
    listed = ann.get(IGNORE_ANNOTATION)
    star = isinstance(listed, str) and "*" in [p.strip() for p in listed.split(",")]
    star = star or f"{IGNORE_PREFIX}*" in ann
    return star and "*" not in suppressions(obj)


def _rule_error_note(rule: Rule, m: Manifest, err: Exception) -> Note:
    return Note(
        file=m.source.file,
        line=m.source.line,
        object=m.ref,
        message=f"rule {rule.id} could not evaluate {m.ref.display()}: {error_text(err)}",
    )


def _decoded(manifests: Sequence[Manifest]) -> list[Manifest]:
    from kai.policy.normalize import decoded

    out = []
    for m in manifests:
        obj = decoded(m.obj)
        out.append(m if obj is m.obj else Manifest(ref=m.ref, source=m.source, obj=obj))
    return out


class Engine:
    """Compiled rules, ready to evaluate any number of manifests."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        # Schema rules are reported by the validate stage, not evaluated here.
        self.compiled = [
            compile_rule(r) for r in rules if r.enabled and r.schema is None and r.server is None
        ]
        self._plans: dict[tuple[str, bool], _Plan] = {}

    def restricted(self, keep: Callable[[Rule], bool]) -> Engine:
        """An engine of some of these rules, sharing their compiled form (nothing recompiled)."""
        out = Engine(())
        out.compiled = [c for c in self.compiled if keep(c.rule)]
        return out

    def _plan(self, kind: str, has_pod: bool) -> _Plan:
        key = (kind, has_pod)
        plan = self._plans.get(key)
        if plan is None:
            applicable = [
                c
                for c in self.compiled
                if (not c.kinds or kind in c.kinds)
                and kind not in c.rule.match.exclude_kinds
                and (has_pod or not c.needs_pod)
            ]
            # Rules that bind names of their own (`variables`, cel.bind) run on their own: the
            # CEL runtime mixes up their slots with sibling expressions' comprehensions in one
            # batched program (measured: KAI-RES-001 written with cel.bind, batched with
            # KAI-RES-002 or KAI-PRB-001, got a wrong verdict). The built-in rules bind with a
            # one-element comprehension (`[expr].all(x, ...)`) instead, which batches correctly;
            # tests/test_semantics.py compares both ways on every fixture.
            cel_rules = [c for c in applicable if c.cel_source is not None and _batchable(c)]
            specific = any(c.kinds or c.needs_pod for c in applicable)
            index = {id(c): i for i, c in enumerate(cel_rules)}
            plan = _Plan(
                rules=applicable,
                cel_rules=cel_rules,
                specific=specific,
                steps=[(c, index.get(id(c), -1)) for c in applicable],
            )
            if len(cel_rules) > 1:
                from kai.policy import cel

                plan.batch = cel.Program(
                    "[" + ",\n".join(c.cel_source or "" for c in cel_rules) + "]"
                )
            self._plans[key] = plan
        return plan

    def evaluate(
        self,
        manifests: Sequence[Manifest],
        notes: Sequence[Note] = (),
        default_namespace: str = "default",
        existing: Sequence[Manifest] = (),
    ) -> Report:
        """Evaluate `manifests`; `existing` objects (already in the cluster) inform cross-object
        checks, such as a NetworkPolicy that already protects a workload, but are not judged.

        Rules see each object as the API server decodes it (null values unset)."""
        manifests = _decoded(manifests)
        existing = _decoded(existing)
        ctx = Context([*manifests, *existing], default_namespace)
        findings: list[Finding] = []
        out_notes = list(notes)
        shared: dict[str, str] = {}  # this report's finding messages and paths, one copy each
        for m in manifests:
            plan = self._plan(m.ref.kind, ctx.pod(m) is not None)
            if not plan.specific and m.ref.kind not in BUILTIN_KINDS:
                what = (
                    "only generic checks (API version, metadata) apply"
                    if plan.rules
                    else "no rule applies"
                )
                out_notes.append(
                    Note(
                        file=m.source.file,
                        line=m.source.line,
                        object=m.ref,
                        message=f"{m.ref.apiVersion} {m.ref.kind} is not a built-in kind (a custom resource?): {what}",
                    )
                )
            findings += self._evaluate_one(m, ctx, plan, out_notes, shared)
        findings.sort(key=lambda f: (f.file, f.line, -f.severity.rank, f.rule, f.path or ""))
        return Report(
            findings=findings,
            notes=out_notes,
            objects=[m.ref for m in manifests],
            rules=[c.rule.id for c in self.compiled],
        )

    def _evaluate_one(
        self, m: Manifest, ctx: Context, plan: _Plan, notes: list[Note], shared: dict[str, str]
    ) -> list[Finding]:
        results: list[Any] | None = None
        if plan.batch is not None:
            try:
                results = plan.batch.evaluate(ctx.cel_activation(m))
            except Exception:
                results = None  # one rule failed on this object: run them one by one to say which
        ignored = suppressions(m.obj)
        if wildcard_without_reason(m.obj):
            notes.append(
                Note(
                    file=m.source.file,
                    line=m.source.line,
                    object=m.ref,
                    message=f'{m.ref.display()}: kai.dev/ignore: "*" has no kai.dev/ignore-reason, '
                    "so it is not honoured (every rule still applies); give the reason, or list "
                    "the rule ids",
                )
            )
        out: list[Finding] = []
        for c, index in plan.steps:
            try:
                hits = _hits_for(c, m, ctx, results, index)
            except Exception as err:  # a rule must never take the whole review down, nor pass
                notes.append(_rule_error_note(c.rule, m, err))
                try:
                    hits = c.fail_closed(m, ctx, err) if c.fail_closed else []
                except Exception:
                    hits = []
                hits = hits or [unevaluable(c.rule, m, err)]
            if not hits:
                continue
            suppressed = c.rule.id in ignored or "*" in ignored
            reason = (ignored.get(c.rule.id) or ignored.get("*")) if suppressed else None
            for h in hits:
                # many objects get the same message and path: one string each, not one per
                # finding (50,000 objects: 162,500 findings, 55,013 distinct messages)
                message = shared.setdefault(h.message, h.message)
                path = shared.setdefault(h.path, h.path) if h.path is not None else None
                out.append(
                    Finding(
                        rule=c.rule.id,
                        severity=c.rule.severity,
                        message=message,
                        object=m.ref,
                        file=m.source.file,
                        line=m.source.line,
                        path=path,
                        suppressed=suppressed,
                        suppression_reason=reason,
                    )
                )
        return out

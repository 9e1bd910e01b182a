"""The evaluator: run every enabled rule over a set of manifests and produce a Report."""

from __future__ import annotations

import re
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


_OBJECT_NAME = re.compile(r"\bobject\b")


def _pod_only(c: CompiledRule) -> bool:
    """A pod or container rule whose expression never names `object`: its value is a function
    of the PodSpec alone (anywhere in the text counts, string literals too: "not sure" is "no")."""
    assert c.rule.cel is not None
    return c.scope in ("pod", "container") and not _OBJECT_NAME.search(c.rule.cel.expression)


# Pod-only results are kept per PodSpec for one evaluation (many workloads share one: 60,000
# Deployments of a JSON List had 20), up to this many distinct PodSpecs (a review of 50,000
# objects with distinct PodSpecs held 4 MB of keys at 10,000: 1,000 keeps it under 0.5 MB).
MAX_MEMO_PODS = 1_000


def _pod_key(pod: dict[str, Any]) -> str | None:
    """The PodSpec's exact value as text (repr tells 1, 1.0, True and "1" apart, keys and
    order included), or None when it cannot serve as a key (a cycle or too deep)."""
    try:
        key = repr(pod)
    except RecursionError:
        return None
    return None if "{...}" in key or "[...]" in key else key


@dataclass(slots=True)
class _Plan:
    """What runs on one kind of object: the rules, and one batched program for the CEL ones."""

    rules: list[CompiledRule]
    cel_rules: list[CompiledRule]
    specific: bool  # some rule looks at this kind in particular (not only any object's metadata)
    # kai.policy.cel.Programs over "[rule1, rule2, ...]": the rules that read the object, and
    # the pod-only ones (evaluated once per distinct PodSpec); cel_rules lists them in this order
    batch: Any = None
    pod_batch: Any = None
    # each rule with its place in the batch's result list (-1: not batched) and, for a batched
    # container rule, its container fields (None otherwise)
    steps: list[tuple[CompiledRule, int, tuple[str, ...] | None]] = field(default_factory=list)
    # places in `steps` of the unbatched rules, the object batch's and the pod batch's
    unbatched: list[int] = field(default_factory=list)
    object_steps: list[int] = field(default_factory=list)
    pod_steps: list[int] = field(default_factory=list)


def _batch_program(rules: list[CompiledRule]) -> Any:
    from kai.policy import cel

    checks = []
    for c in rules:
        assert c.rule.cel is not None and c.scope is not None  # (_batchable)
        checks.append((c.rule.cel.expression, c.scope, c.fields))
    return cel.Program(cel.batch(checks))


# Pod-only results by (plan, PodSpec): the values and the places in plan.steps that fail
_PodMemo = dict[tuple[int, str], tuple[list[Any], list[int]]]


def _batch_results(
    plan: _Plan, m: Manifest, ctx: Context, pods: _PodMemo
) -> tuple[list[Any] | None, Sequence[int]]:
    """The batched rules' results for `m` (in plan.cel_rules order) and the places in
    plan.steps still to look at: every unbatched rule and each batched one whose result is not
    a plain pass. (None, every place) when a batch fails on `m`: its rules then run one by one,
    to say which failed. The pod-only rules' results, and which of them fail, are kept in `pods`
    by PodSpec: an equal PodSpec gives equal values."""
    if plan.batch is None and plan.pod_batch is None:
        return None, range(len(plan.steps))
    sizes: dict[Any, int] = {}
    try:
        results = plan.batch.evaluate(ctx.cel_activation(m)) if plan.batch is not None else []
        look = [*plan.unbatched]
        for place in plan.object_steps:
            _, index, fields = plan.steps[place]
            if not _passes(results[index], fields, m, ctx, sizes):
                look.append(place)
        if plan.pod_batch is not None:
            found = ctx.pod(m)
            assert found is not None  # (pod rules are only planned for objects with a PodSpec)
            text = _pod_key(found[0])
            key = (id(plan), text) if text is not None else None
            memo = pods.get(key) if key is not None else None
            if memo is None:
                from kai.policy import cel

                # `object` is only the way to the PodSpec here: these rules read nothing else
                values = plan.pod_batch.evaluate(cel.activation({"kind": "Pod", "spec": found[0]}))
                failing = []
                for place in plan.pod_steps:
                    _, index, fields = plan.steps[place]
                    if not _passes(values[index - len(results)], fields, m, ctx, sizes):
                        failing.append(place)
                memo = (values, failing)
                if key is not None and len(pods) < MAX_MEMO_PODS:
                    pods[key] = memo
            results = [*results, *memo[0]]
            look += memo[1]
        return results, sorted(look)
    except Exception:
        return None, range(len(plan.steps))


def _passes(
    result: Any, fields: tuple[str, ...] | None, m: Manifest, ctx: Context, sizes: dict[Any, int]
) -> bool:
    """True when a batched rule's result is sure to mean no hit (most objects pass most rules);
    False means only "ask interpret".
    `sizes` holds the object's container count per field tuple (-1: no PodSpec)."""
    if fields is None:
        return result is True
    n = sizes.get(fields)
    if n is None:
        found = ctx.containers(m, fields)
        n = sizes[fields] = -1 if found is None else len(found)
    return n < 0 or (type(result) is list and len(result) == n and all(ok is True for ok in result))


def _hits_for(
    c: CompiledRule, m: Manifest, ctx: Context, results: list[Any] | None, index: int
) -> list[Hit]:
    if results is not None and index >= 0 and c.interpret is not None:
        return list(c.interpret(results[index], m, ctx))
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
            batched = [c for c in applicable if c.cel_source is not None and _batchable(c)]
            pod_rules = [c for c in batched if has_pod and _pod_only(c)]
            cel_rules = [c for c in batched if c not in pod_rules] + pod_rules
            specific = any(c.kinds or c.needs_pod for c in applicable)
            index = {id(c): i for i, c in enumerate(cel_rules)}
            plan = _Plan(
                rules=applicable,
                cel_rules=cel_rules,
                specific=specific,
                steps=[
                    (
                        c,
                        index.get(id(c), -1),
                        c.fields if c.scope == "container" and id(c) in index else None,
                    )
                    for c in applicable
                ],
            )
            if len(cel_rules) > 1:
                first_pod = len(cel_rules) - len(pod_rules)
                plan.batch = _batch_program(cel_rules[:first_pod]) if first_pod else None
                plan.pod_batch = _batch_program(pod_rules) if pod_rules else None
                for place, (_, i, _) in enumerate(plan.steps):
                    group = (
                        plan.unbatched
                        if i < 0
                        else plan.object_steps
                        if i < first_pod
                        else plan.pod_steps
                    )
                    group.append(place)
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
        pods: _PodMemo = {}
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
            findings += self._evaluate_one(m, ctx, plan, out_notes, shared, pods)
        findings.sort(key=lambda f: (f.file, f.line, -f.severity.rank, f.rule, f.path or ""))
        return Report(
            findings=findings,
            notes=out_notes,
            objects=[m.ref for m in manifests],
            rules=[c.rule.id for c in self.compiled],
        )

    def _evaluate_one(
        self,
        m: Manifest,
        ctx: Context,
        plan: _Plan,
        notes: list[Note],
        shared: dict[str, str],
        pods: _PodMemo,
    ) -> list[Finding]:
        results, places = _batch_results(plan, m, ctx, pods)
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
        for place in places:
            c, index, _ = plan.steps[place]
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

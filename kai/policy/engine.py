"""The evaluator: run every enabled rule over a set of manifests and produce a Report."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kai.models import Finding, Manifest, Note, Report, Rule
from kai.policy import workload

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


@dataclass(frozen=True, slots=True)
class Hit:
    """A check's raw result: what is wrong and where in the object."""

    message: str
    path: str | None = None


class Context:
    """Everything a cross-object check may look at: all objects under review."""

    def __init__(self, manifests: Sequence[Manifest], default_namespace: str = "default") -> None:
        self.manifests = manifests
        self.default_namespace = default_namespace
        self._by_kind: dict[str, list[Manifest]] = defaultdict(list)
        self._by_kind_ns: dict[tuple[str, str], list[Manifest]] = defaultdict(list)
        self._workloads: dict[str, list[Manifest]] | None = None
        for m in manifests:
            self._by_kind[m.ref.kind].append(m)
            self._by_kind_ns[(m.ref.kind, m.ref.namespace or default_namespace)].append(m)
        self._activation: tuple[int, Any] | None = None
        self._pods: dict[int, tuple[dict[str, Any], str] | None] = {}
        self._labels: dict[int, dict[str, str]] = {}
        self._by_label: dict[tuple[str, str, str], list[Manifest]] | None = None

    def pod(self, m: Manifest) -> tuple[dict[str, Any], str] | None:
        """The object's PodSpec and its path (memoized: many rules ask)."""
        key = id(m)
        if key not in self._pods:
            self._pods[key] = workload.pod_spec(m.obj)
        return self._pods[key]

    def labels(self, m: Manifest) -> dict[str, str]:
        """The labels the object's pods carry (memoized)."""
        key = id(m)
        found = self._labels.get(key)
        if found is None:
            found = self._labels[key] = workload.pod_labels(m.obj)
        return found

    def cel_activation(self, m: Manifest) -> Any:
        """The object converted to CEL values, shared by every CEL rule (one object at a time)."""
        if self._activation is None or self._activation[0] != id(m):
            from kai.policy import cel

            self._activation = (id(m), cel.activation(m.obj))
        return self._activation[1]

    def namespace(self, m: Manifest) -> str:
        return m.ref.namespace or self.default_namespace

    def of_kind(self, *kinds: str, namespace: str | None = None) -> list[Manifest]:
        out: list[Manifest] = []
        for k in kinds:
            out += (
                self._by_kind.get(k, ())
                if namespace is None
                else self._by_kind_ns.get((k, namespace), ())
            )
        return out

    def selected_by(self, namespace: str, selector: dict[str, str]) -> list[Manifest]:
        """Workloads in `namespace` whose pod labels include every pair of a plain map selector."""
        if self._by_label is None:
            self._by_label = defaultdict(list)
            for ns, items in (
                (ns, self.workloads(ns)) for ns in {self.namespace(m) for m in self.manifests}
            ):
                for w in items:
                    for pair in self.labels(w).items():
                        self._by_label[(ns, *pair)].append(w)
        if not selector:
            return []
        pairs = [(str(k), str(v)) for k, v in selector.items()]
        candidates = min((self._by_label.get((namespace, *p), []) for p in pairs), key=len)
        return [w for w in candidates if all(self.labels(w).get(k) == v for k, v in pairs)]

    def workloads(self, namespace: str) -> list[Manifest]:
        """Objects that carry a pod template (built-in workloads and custom resources alike)."""
        if self._workloads is None:
            self._workloads = defaultdict(list)
            for m in self.manifests:
                if self.pod(m):
                    self._workloads[self.namespace(m)].append(m)
        return self._workloads.get(namespace, [])

    # Lookups for kai.policy.references (built on first use, so __init__ stays as it is).
    _named: dict[tuple[str, str | None, str], Manifest] | None = None

    def named(self, kind: str, namespace: str | None, name: str) -> Manifest | None:
        """The object of `kind` called `name` in `namespace` (None: a cluster-scoped kind, or
        any namespace); a reviewed object wins over a live one of the same identity."""
        if self._named is None:
            self._named = {}
            for m in self.manifests:
                self._named.setdefault((m.ref.kind, self.namespace(m), m.ref.name), m)
                self._named.setdefault((m.ref.kind, None, m.ref.name), m)
        return self._named.get((kind, namespace, name))

    def selected_by_label_selector(self, namespace: str, selector: Any) -> list[Manifest]:
        """Workloads in `namespace` whose pod labels a metav1.LabelSelector selects (`{}`: all).

        Candidates come from the label index (matchLabels, or an `In` expression's values), so
        a selector is checked against the few workloads that can match, not every one."""
        from kai.policy.selectors import label_selector_matches

        if not isinstance(selector, dict):
            return []
        match_labels = selector.get("matchLabels")
        candidates: list[Manifest] | None = None
        if isinstance(match_labels, dict) and match_labels:
            candidates = self.selected_by(namespace, match_labels)
        else:
            for e in selector.get("matchExpressions") or []:
                values = e.get("values") if isinstance(e, dict) else None
                if isinstance(e, dict) and e.get("operator") == "In" and isinstance(values, list):
                    seen: dict[int, Manifest] = {}
                    for v in values:
                        for w in self.selected_by(namespace, {str(e.get("key")): str(v)}):
                            seen[id(w)] = w
                    candidates = list(seen.values())
                    break
        if candidates is None:
            candidates = self.workloads(namespace)
        return [w for w in candidates if label_selector_matches(selector, self.labels(w))]


CheckFn = Callable[[Manifest, Context], Iterable[Hit]]
InterpretFn = Callable[[Any, Manifest, Context], Iterator[Hit]]
# What a rule reports when it cannot evaluate an object: kai fails closed, never a silent pass.
FailFn = Callable[[Manifest, Context, Exception], list[Hit]]


@dataclass(slots=True)
class CompiledRule:
    rule: Rule
    run: CheckFn
    kinds: frozenset[str]
    needs_pod: bool
    # CEL rules also expose their full expression and how to read its result, so the engine can
    # evaluate every CEL rule that applies to an object in one call.
    cel_source: str | None = None
    interpret: InterpretFn | None = None
    fail_closed: FailFn | None = None


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


def _hits_for(
    c: CompiledRule, m: Manifest, ctx: Context, results: list[Any] | None, index: int
) -> list[Hit]:
    if results is not None and c.interpret is not None:
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


def error_text(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def _rule_error_note(rule: Rule, m: Manifest, err: Exception) -> Note:
    return Note(
        file=m.source.file,
        line=m.source.line,
        object=m.ref,
        message=f"rule {rule.id} could not evaluate {m.ref.display()}: {error_text(err)}",
    )


def unevaluable(rule: Rule, m: Manifest, err: Exception, what: str | None = None) -> Hit:
    """The finding for an object (or one container of it) a rule cannot evaluate."""
    return Hit(
        f"{what or m.ref.display()} could not be checked ({error_text(err)}): "
        "treated as failing; the API server would reject or default this value",
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
        from kai.policy.compile import compile_rule

        # Schema rules are reported by the validate stage, not evaluated here.
        self.compiled = [
            compile_rule(r) for r in rules if r.enabled and r.schema is None and r.server is None
        ]
        self._plans: dict[tuple[str, bool], _Plan] = {}

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
            # batched program (measured: KAI-RES-001 batched with KAI-RES-002, or with KAI-PRB-001,
            # gave KAI-RES-001 a wrong verdict). tests/test_semantics.py compares both ways.
            cel_rules = [c for c in applicable if c.cel_source is not None and _batchable(c)]
            specific = any(c.kinds or c.needs_pod for c in applicable)
            plan = _Plan(rules=applicable, cel_rules=cel_rules, specific=specific)
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
            findings += self._evaluate_one(m, ctx, plan, out_notes)
        findings.sort(key=lambda f: (f.file, f.line, -f.severity.rank, f.rule, f.path or ""))
        return Report(
            findings=findings,
            notes=out_notes,
            objects=[m.ref for m in manifests],
            rules=[c.rule.id for c in self.compiled],
        )

    def _evaluate_one(
        self, m: Manifest, ctx: Context, plan: _Plan, notes: list[Note]
    ) -> list[Finding]:
        results: list[Any] | None = None
        if plan.batch is not None:
            try:
                results = plan.batch.evaluate(ctx.cel_activation(m))
            except Exception:
                results = None  # one rule failed on this object: run them one by one to say which
        cel_index = {id(c): i for i, c in enumerate(plan.cel_rules)} if results is not None else {}
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
        for c in plan.rules:
            try:
                hits = _hits_for(
                    c, m, ctx, results if id(c) in cel_index else None, cel_index.get(id(c), 0)
                )
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
                out.append(
                    Finding(
                        rule=c.rule.id,
                        severity=c.rule.severity,
                        message=h.message,
                        object=m.ref,
                        file=m.source.file,
                        line=m.source.line,
                        path=h.path,
                        suppressed=suppressed,
                        suppression_reason=reason,
                    )
                )
        return out

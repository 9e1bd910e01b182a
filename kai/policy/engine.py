"""The evaluator: run every enabled rule over a set of manifests and produce a Report."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kai.models import Finding, Manifest, Note, Report, Rule, Severity
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

    def workloads(self, namespace: str) -> list[Manifest]:
        """Objects that carry a pod template (built-in workloads and custom resources alike)."""
        if self._workloads is None:
            self._workloads = defaultdict(list)
            for m in self.manifests:
                if workload.pod_spec(m.obj):
                    self._workloads[self.namespace(m)].append(m)
        return self._workloads.get(namespace, [])


CheckFn = Callable[[Manifest, Context], Iterable[Hit]]


@dataclass(slots=True)
class CompiledRule:
    rule: Rule
    run: CheckFn
    kinds: frozenset[str]
    needs_pod: bool


def _suppressions(obj: dict[str, Any]) -> dict[str, str | None]:
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
    return out


def _rule_error_note(rule: Rule, m: Manifest, err: Exception) -> Note:
    return Note(
        file=m.source.file,
        line=m.source.line,
        object=m.ref,
        message=f"rule {rule.id} could not evaluate {m.ref.display()}: {str(err).splitlines()[0] if str(err) else type(err).__name__}",
    )


class Engine:
    """Compiled rules, ready to evaluate any number of manifests."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        from kai.policy.compile import compile_rule

        self.compiled = [compile_rule(r) for r in rules if r.enabled]
        if any(c.rule.cel is not None for c in self.compiled):
            from kai.policy import cel

            cel.save_cache()
        self._for_kind: dict[str, list[CompiledRule]] = {}

    @property
    def rules(self) -> list[Rule]:
        return [c.rule for c in self.compiled]

    def _applicable(self, kind: str, has_pod: bool) -> list[CompiledRule]:
        key = f"{kind}\0{has_pod}"
        cached = self._for_kind.get(key)
        if cached is None:
            cached = [
                c
                for c in self.compiled
                if (not c.kinds or kind in c.kinds)
                and kind not in c.rule.match.exclude_kinds
                and (has_pod or not c.needs_pod)
            ]
            self._for_kind[key] = cached
        return cached

    def evaluate(
        self,
        manifests: Sequence[Manifest],
        notes: Sequence[Note] = (),
        default_namespace: str = "default",
    ) -> Report:
        ctx = Context(manifests, default_namespace)
        findings: list[Finding] = []
        out_notes = list(notes)
        for m in manifests:
            has_pod = workload.pod_spec(m.obj) is not None
            applicable = self._applicable(m.ref.kind, has_pod)
            if not applicable and m.ref.kind not in BUILTIN_KINDS:
                out_notes.append(
                    Note(
                        file=m.source.file,
                        line=m.source.line,
                        object=m.ref,
                        message=f"no rule applies to {m.ref.apiVersion} {m.ref.kind} (a custom resource?): passed over",
                    )
                )
                continue
            ignored = _suppressions(m.obj)
            for c in applicable:
                try:
                    hits = list(c.run(m, ctx))
                except Exception as err:  # a rule must never take the whole review down
                    out_notes.append(_rule_error_note(c.rule, m, err))
                    continue
                suppressed = c.rule.id in ignored or "*" in ignored
                reason = ignored.get(c.rule.id) or ignored.get("*")
                for h in hits:
                    findings.append(
                        Finding(
                            rule=c.rule.id,
                            severity=c.rule.severity,
                            message=h.message,
                            object=m.ref,
                            file=m.source.file,
                            line=m.source.line,
                            path=h.path,
                            suppressed=suppressed,
                            suppression_reason=reason if suppressed else None,
                        )
                    )
        findings.sort(key=lambda f: (f.file, f.line, -f.severity.rank, f.rule, f.path or ""))
        return Report(
            findings=findings,
            notes=out_notes,
            objects=[m.ref for m in manifests],
            rules=[c.rule.id for c in self.compiled],
        )


def worst(findings: Iterable[Finding]) -> Severity | None:
    ranked = [f.severity for f in findings if not f.suppressed]
    return max(ranked, key=lambda s: s.rank) if ranked else None

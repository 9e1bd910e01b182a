"""The cluster stages of `kai apply`: permission preflight, server-side dry run, diff, ordered apply.

Each stage is a function over typed values; `kai/cli.py` renders them and asks for confirmation.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kai.cluster import Cluster, ServerResult
from kai.errors import ClusterError
from kai.models import Manifest

# Apply order: what others depend on first; NetworkPolicies before the workloads they protect,
# so no pod ever runs unprotected; what refers to workloads after them.
KIND_ORDER = {
    kind: rank
    for rank, kinds in enumerate(
        [
            ("Namespace",),
            ("CustomResourceDefinition",),
            ("ServiceAccount",),
            ("ClusterRole", "Role"),
            ("ClusterRoleBinding", "RoleBinding"),
            ("ConfigMap", "Secret"),
            ("StorageClass", "PersistentVolume", "PersistentVolumeClaim"),
            ("NetworkPolicy",),
            ("Service",),
            ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"),
            ("HorizontalPodAutoscaler",),
            ("PodDisruptionBudget",),
            ("Ingress",),
        ]
    )
    for kind in kinds
}
NOISE_METADATA = (
    "managedFields",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "selfLink",
)


def ordered(manifests: Sequence[Manifest]) -> list[Manifest]:
    """Dependency order (stable within a rank; unknown kinds, such as custom resources, last)."""
    return sorted(manifests, key=lambda m: KIND_ORDER.get(m.ref.kind, len(KIND_ORDER)))


@dataclass(slots=True)
class Change:
    manifest: Manifest
    action: str  # create | update | unchanged | error
    diff: str = ""
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    conflict: bool = False


@dataclass(slots=True)
class DryRun:
    changes: list[Change]
    missing_permissions: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "unchanged": 0, "error": 0}
        for c in self.changes:
            out[c.action] += 1
        return out

    @property
    def ok(self) -> bool:
        return not self.missing_permissions and all(c.action != "error" for c in self.changes)


@dataclass(slots=True)
class Applied:
    applied: list[str] = field(default_factory=list)
    failed: str | None = None
    error: str | None = None
    not_attempted: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def clean(obj: dict[str, Any] | None) -> dict[str, Any]:
    """An object without what the server manages (the noise `kubectl diff` hides)."""
    if not obj:
        return {}
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = dict(out.get("metadata") or {})
    for key in NOISE_METADATA:
        meta.pop(key, None)
    annotations = dict(meta.get("annotations") or {})
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    annotations.pop("deployment.kubernetes.io/revision", None)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    out["metadata"] = meta
    return out


def diff(live: dict[str, Any] | None, after: dict[str, Any] | None, name: str) -> str:
    from kai.yamlio import dump

    before_text = dump(clean(live)) if live else ""
    after_text = dump(clean(after)) if after else ""
    return "".join(
        difflib.unified_diff(
            before_text.splitlines(keepends=True),
            after_text.splitlines(keepends=True),
            f"live/{name}",
            f"kai/{name}",
        )
    )


def preflight(cluster: Cluster, manifests: Sequence[Manifest]) -> list[str]:
    """What the current identity may not do, all listed together (server-side apply is a patch)."""
    missing = []
    seen: set[tuple[str, str, str | None]] = set()
    for m in manifests:
        ns = (m.ref.namespace or cluster.namespace) if cluster.namespaced(m.obj) else None
        key = (m.ref.apiVersion, m.ref.kind, ns)
        if key in seen:
            continue
        seen.add(key)
        for verb in ("get", "patch"):
            if not cluster.can_i(verb, m.ref.apiVersion, m.ref.kind, ns):
                where = f" in namespace {ns}" if ns else " (cluster-wide)"
                missing.append(f"{verb} {m.ref.kind} ({m.ref.apiVersion}){where}")
    return missing


def dry_run(cluster: Cluster, manifests: Sequence[Manifest], force: bool = False) -> DryRun:
    """Server-side apply with dryRun=All for every object, and the diff against what is live."""
    result = DryRun(changes=[], missing_permissions=preflight(cluster, manifests))
    if result.missing_permissions:
        return result  # all of them listed together, before anything is sent
    for m in ordered(manifests):
        try:
            live = cluster.get(m.obj)
            server: ServerResult = cluster.apply(m.obj, dry_run=True, force=force)
        except ClusterError as e:
            result.changes.append(Change(m, "error", error=e.message))
            continue
        if server.error:
            result.changes.append(
                Change(
                    m,
                    "error",
                    warnings=server.warnings,
                    error=server.error,
                    conflict=server.conflict,
                )
            )
            continue
        text = diff(live, server.obj, m.ref.display())
        action = "create" if live is None else ("update" if text else "unchanged")
        result.changes.append(Change(m, action, text, server.warnings))
    return result


def apply(cluster: Cluster, plan: DryRun, force: bool = False) -> Applied:
    """Apply for real, in the order the dry run used; stop at the first failure and say what was done."""
    out = Applied()
    todo = [c for c in plan.changes if c.action in ("create", "update")]
    for i, change in enumerate(todo):
        try:
            server = cluster.apply(change.manifest.obj, dry_run=False, force=force)
        except ClusterError as e:
            server = ServerResult(0, error=e.message)
        out.warnings += server.warnings
        if server.error:
            out.failed = change.manifest.ref.display()
            out.error = server.error
            out.not_attempted = [c.manifest.ref.display() for c in todo[i + 1 :]]
            return out
        out.applied.append(change.manifest.ref.display())
    return out

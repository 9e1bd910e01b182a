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
    from kai.redact import mask_secrets
    from kai.yamlio import dump

    live, after = mask_secrets(clean(live) if live else None, clean(after) if after else None)
    before_text = dump(live) if live else ""
    after_text = dump(after) if after else ""
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


# ---------- watch ----------

ROLLOUT_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


@dataclass(slots=True)
class Rollout:
    name: str
    done: bool
    ready: int = 0
    desired: int = 0
    message: str = ""
    pod_problems: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    rolled_back: bool = False


def progress(obj: dict[str, Any]) -> tuple[bool, bool, int, int, str]:
    """(finished, failed, ready, desired, message) of a workload from its status, as kubectl rollout status reads it."""
    kind = obj.get("kind")
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    meta = obj.get("metadata") or {}
    observed = st.get("observedGeneration", 0) >= meta.get("generation", 0)
    if kind == "Deployment":
        desired = int(spec.get("replicas", 1))
        for cond in st.get("conditions") or []:
            if (
                cond.get("type") == "Progressing"
                and cond.get("reason") == "ProgressDeadlineExceeded"
            ):
                return (
                    True,
                    True,
                    int(st.get("availableReplicas", 0)),
                    desired,
                    str(cond.get("message", "progress deadline exceeded")),
                )
        ready = int(st.get("availableReplicas", 0))
        finished = (
            observed
            and int(st.get("updatedReplicas", 0)) == desired
            and ready == desired
            and not st.get("unavailableReplicas")
        )
        return finished, False, ready, desired, ""
    if kind == "StatefulSet":
        desired = int(spec.get("replicas", 1))
        ready = int(st.get("readyReplicas", 0))
        finished = observed and int(st.get("updatedReplicas", 0)) == desired and ready == desired
        return finished, False, ready, desired, ""
    if kind == "DaemonSet":
        desired = int(st.get("desiredNumberScheduled", 0))
        ready = int(st.get("numberAvailable", 0))
        return (
            observed and int(st.get("updatedNumberScheduled", 0)) == desired and ready == desired,
            False,
            ready,
            desired,
            "",
        )
    desired = int(spec.get("completions", 1))
    for cond in st.get("conditions") or []:
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return (
                True,
                True,
                int(st.get("succeeded", 0)),
                desired,
                str(cond.get("message") or cond.get("reason")),
            )
    return int(st.get("succeeded", 0)) >= desired, False, int(st.get("succeeded", 0)), desired, ""


def _selector(obj: dict[str, Any]) -> str:
    labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if obj.get("kind") == "Job" and not labels:
        labels = {"job-name": (obj.get("metadata") or {}).get("name", "")}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def diagnose(cluster: Cluster, obj: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Why pods are not ready (waiting reasons, scheduling messages) and the latest events about them."""
    ns = (obj.get("metadata") or {}).get("namespace") or cluster.namespace
    pods = cluster.call("GET", f"/api/v1/namespaces/{ns}/pods", {"labelSelector": _selector(obj)})
    problems, names = [], []
    for pod in (pods.data or {}).get("items", []) if isinstance(pods.data, dict) else []:
        name = pod["metadata"]["name"]
        names.append(name)
        st = pod.get("status") or {}
        for cs in st.get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting")
            if waiting and waiting.get("reason") not in (None, "ContainerCreating"):
                last = (cs.get("lastState") or {}).get("terminated") or {}
                extra = f" (last exit {last.get('exitCode')}: {last.get('reason')})" if last else ""
                problems.append(
                    f"pod {name}: container {cs.get('name')} {waiting['reason']}: {waiting.get('message', '')}{extra}".rstrip(
                        ": "
                    )
                )
        if st.get("phase") == "Pending":
            for cond in st.get("conditions") or []:
                if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                    problems.append(
                        f"pod {name}: Pending: {cond.get('message', cond.get('reason', ''))}"
                    )
    events = cluster.call("GET", f"/api/v1/namespaces/{ns}/events")
    latest = []
    for ev in (events.data or {}).get("items", []) if isinstance(events.data, dict) else []:
        involved = (ev.get("involvedObject") or {}).get("name")
        if involved in names and ev.get("type") == "Warning":
            latest.append(f"{ev.get('reason')}: {ev.get('message')}")
    return problems, latest[-5:]


def rollback(cluster: Cluster, obj: dict[str, Any]) -> bool:
    """Restore a Deployment's previous revision, as `kubectl rollout undo` does."""
    if obj.get("kind") != "Deployment":
        return False
    ns = (obj.get("metadata") or {}).get("namespace") or cluster.namespace
    rss = cluster.call(
        "GET", f"/apis/apps/v1/namespaces/{ns}/replicasets", {"labelSelector": _selector(obj)}
    )
    owned = [
        rs
        for rs in (rss.data or {}).get("items", [])
        if isinstance(rss.data, dict)
        and any(
            o.get("kind") == "Deployment" and o.get("name") == obj["metadata"]["name"]
            for o in rs["metadata"].get("ownerReferences", [])
        )
    ]
    revisions = sorted(
        owned,
        key=lambda rs: int(
            rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", "0")
        ),
    )
    if len(revisions) < 2:
        return False
    template = revisions[-2]["spec"]["template"]
    labels = {
        k: v
        for k, v in (template.get("metadata", {}).get("labels") or {}).items()
        if k != "pod-template-hash"
    }
    previous = {
        **obj,
        "spec": {
            **obj["spec"],
            "template": {
                **template,
                "metadata": {**template.get("metadata", {}), "labels": labels},
            },
        },
    }
    return cluster.apply(previous, dry_run=False, force=True).error is None


def watch(
    cluster: Cluster,
    manifests: Sequence[Manifest],
    timeout: float,
    on_progress: Any = None,
    interval: float = 2.0,
    roll_back: bool = False,
    sleep: Any = None,
    clock: Any = None,
) -> list[Rollout]:
    """Follow each workload's rollout until ready, failed or `timeout` seconds have passed."""
    import time

    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    results = []
    for m in manifests:
        if m.ref.kind not in ROLLOUT_KINDS:
            continue
        deadline = clock() + timeout
        polls = (
            int(timeout / interval) + 2 if interval > 0 else 1
        )  # bounded even if the clock stalls
        while True:
            polls -= 1
            live = cluster.get(m.obj) or {}
            finished, failed, ready, desired, message = progress(live)
            if on_progress:
                on_progress(m.ref.display(), ready, desired)
            if finished and not failed:
                results.append(Rollout(m.ref.display(), True, ready, desired))
                break
            if failed or clock() >= deadline or polls <= 0:
                problems, events = diagnose(cluster, live or m.obj)
                why = message or f"not ready after {timeout:g} s ({ready}/{desired} ready)"
                undone = roll_back and rollback(cluster, live)
                results.append(
                    Rollout(m.ref.display(), False, ready, desired, why, problems, events, undone)
                )
                break
            sleep(interval)
    return results

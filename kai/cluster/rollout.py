"""The watch stage of `kai apply`: follow each workload's rollout, say why one fails, roll back.

Polling lives here; kai/render.py only draws what this returns. Progress is read the way
`kubectl rollout status` reads it: a Deployment counts the pods of its new revision (the
ReplicaSet of its current template), never old pods that are still serving.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kai.cluster.client import Cluster
from kai.errors import ClusterError
from kai.models import Manifest

ROLLOUT_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
REVISION = "deployment.kubernetes.io/revision"


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
    rollback: str = ""  # what the rollback did or why it could not (empty: none asked)
    updated: int = 0


@dataclass(slots=True)
class Progress:
    finished: bool
    failed: bool
    ready: int  # ready (available) pods of the new revision
    desired: int
    message: str = ""
    updated: int = 0


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def progress(obj: dict[str, Any], new_available: int | None = None) -> Progress:
    """A workload's rollout state from its status, as `kubectl rollout status` reads it.

    `new_available`: available pods of a Deployment's new ReplicaSet, when known; otherwise
    the Deployment's own counters bound it (never more than the updated replicas).
    """
    kind = obj.get("kind")
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    meta = obj.get("metadata") or {}
    observed = _int(st.get("observedGeneration")) >= _int(meta.get("generation"))
    if kind == "Deployment":
        desired = _int(spec.get("replicas", 1)) if "replicas" in spec else 1
        updated = _int(st.get("updatedReplicas"))
        available = _int(st.get("availableReplicas"))
        ready = new_available if new_available is not None else min(updated, available)
        ready = min(ready, updated)
        cond = _condition(obj, "Progressing")
        if cond and cond.get("reason") == "ProgressDeadlineExceeded":
            return Progress(
                True,
                True,
                ready,
                desired,
                str(cond.get("message") or "progress deadline exceeded"),
                updated,
            )
        failure = _condition(obj, "ReplicaFailure")
        if failure and failure.get("status") == "True":
            why = f"ReplicaFailure: {failure.get('reason', '')}: {failure.get('message', '')}"
            return Progress(True, True, ready, desired, why.strip(": "), updated)
        if not observed:
            return Progress(
                False, False, ready, desired, "waiting for the new spec to be observed", updated
            )
        if updated < desired:
            msg = f"{updated} out of {desired} new replicas have been updated"
        elif _int(st.get("replicas")) > updated:
            msg = f"{_int(st.get('replicas')) - updated} old replicas are pending termination"
        elif available < updated or ready < updated:
            msg = f"{ready} of {updated} updated replicas are available"
        else:
            return Progress(True, False, ready, desired, "", updated)
        return Progress(False, False, ready, desired, msg, updated)
    if kind == "StatefulSet":
        desired = _int(spec.get("replicas", 1)) if "replicas" in spec else 1
        updated = _int(st.get("updatedReplicas"))
        ready = min(_int(st.get("readyReplicas")), updated) if updated else 0
        finished = observed and updated == desired and _int(st.get("readyReplicas")) == desired
        return Progress(finished, False, ready, desired, "", updated)
    if kind == "DaemonSet":
        desired = _int(st.get("desiredNumberScheduled"))
        updated = _int(st.get("updatedNumberScheduled"))
        ready = min(_int(st.get("numberAvailable")), updated)
        finished = observed and updated == desired and _int(st.get("numberAvailable")) == desired
        return Progress(finished, False, ready, desired, "", updated)
    desired = _int(spec.get("completions", 1)) if "completions" in spec else 1
    succeeded = _int(st.get("succeeded"))
    failed = _condition(obj, "Failed")
    if failed and failed.get("status") == "True":
        return Progress(
            True, True, succeeded, desired, str(failed.get("message") or failed.get("reason"))
        )
    return Progress(succeeded >= desired, False, succeeded, desired, "", succeeded)


def _selector(obj: dict[str, Any]) -> str:
    labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if obj.get("kind") == "Job" and not labels:
        labels = {"job-name": (obj.get("metadata") or {}).get("name", "")}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _namespace(cluster: Cluster, obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or cluster.namespace)


def replica_sets(cluster: Cluster, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    """The ReplicaSets a Deployment owns (by owner uid when known), oldest revision first."""
    meta = deployment.get("metadata") or {}
    r = cluster.call(
        "GET",
        f"/apis/apps/v1/namespaces/{_namespace(cluster, deployment)}/replicasets",
        {"labelSelector": _selector(deployment)},
    )
    items = (r.data or {}).get("items", []) if r.status < 300 and isinstance(r.data, dict) else []

    def ours(o: dict[str, Any]) -> bool:
        if o.get("kind") != "Deployment":
            return False
        if o.get("uid") and meta.get("uid"):
            return bool(o.get("uid") == meta.get("uid"))
        return bool(o.get("name") == meta.get("name"))

    owned = [
        rs
        for rs in items
        if any(ours(o) for o in (rs.get("metadata") or {}).get("ownerReferences") or [])
    ]
    return sorted(owned, key=lambda rs: int(_revision(rs) or 0))


def _revision(obj: dict[str, Any]) -> str | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION)
    return str(value) if value is not None and str(value).isdigit() else None


def new_replica_set(cluster: Cluster, deployment: dict[str, Any]) -> dict[str, Any] | None:
    """The ReplicaSet of the Deployment's current revision (None before the controller made it)."""
    revision = _revision(deployment)
    if revision is None:
        return None
    return next((rs for rs in replica_sets(cluster, deployment) if _revision(rs) == revision), None)


def diagnose(cluster: Cluster, obj: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Why pods are not ready or not even created: waiting reasons, scheduling messages,
    a Deployment's ReplicaFailure condition, and the latest Warning events about its pods and
    ReplicaSets (FailedCreate: Pod Security, quota)."""
    ns = _namespace(cluster, obj)
    pods = cluster.call("GET", f"/api/v1/namespaces/{ns}/pods", {"labelSelector": _selector(obj)})
    problems: list[str] = []
    names: set[tuple[str, str]] = set()
    if obj.get("kind") == "Deployment":
        failure = _condition(obj, "ReplicaFailure")
        if failure and failure.get("status") == "True":
            problems.append(
                f"{obj.get('kind')} {obj['metadata']['name']}: ReplicaFailure {failure.get('reason', '')}: {failure.get('message', '')}".rstrip(
                    ": "
                )
            )
        for rs in replica_sets(cluster, obj):
            names.add(("ReplicaSet", rs["metadata"]["name"]))
    for pod in (pods.data or {}).get("items", []) if isinstance(pods.data, dict) else []:
        name = pod["metadata"]["name"]
        names.add(("Pod", name))
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
    if obj.get("kind") == "Job":
        names.add(("Job", obj["metadata"]["name"]))
    events = cluster.call("GET", f"/api/v1/namespaces/{ns}/events")
    items = (events.data or {}).get("items", []) if isinstance(events.data, dict) else []
    items.sort(key=lambda ev: str(ev.get("lastTimestamp") or ev.get("eventTime") or ""))
    latest = []
    for ev in items:
        involved = ev.get("involvedObject") or {}
        if (involved.get("kind"), involved.get("name")) in names and ev.get("type") == "Warning":
            line = f"{ev.get('reason')}: {' '.join(str(ev.get('message', '')).split())}"
            if line not in latest:
                latest.append(line)
    return problems, latest[-5:]


def rollback(cluster: Cluster, applied: dict[str, Any], live: dict[str, Any]) -> tuple[bool, str]:
    """Restore a Deployment's previous revision, as `kubectl rollout undo` does: the template of
    the ReplicaSet before the current one (without its pod-template-hash label) goes back into
    the Deployment. Sent as kai's own server-side apply of what it applied, with that template,
    so kai keeps owning the same fields and the next `kai apply` needs no --force-conflicts."""
    if live.get("kind") != "Deployment":
        return False, f"{live.get('kind')} has no revisions to roll back to"
    owned = replica_sets(cluster, live)
    # the Deployment's revision annotation names the current one; without it, the newest
    current = int(_revision(live) or (_revision(owned[-1]) if owned else None) or 0)
    older = [rs for rs in owned if int(_revision(rs) or 0) < current]
    if not older:
        return False, "nothing to roll back to: this is the Deployment's first revision"
    previous = older[-1]
    template = copy.deepcopy((previous.get("spec") or {}).get("template") or {})
    tmeta = template.setdefault("metadata", {})
    tmeta.pop("creationTimestamp", None)
    labels = {k: v for k, v in (tmeta.get("labels") or {}).items() if k != "pod-template-hash"}
    tmeta["labels"] = labels
    meta = applied.get("metadata") or {}
    body = {
        **applied,
        "metadata": {**meta, "namespace": _namespace(cluster, live)},
        "spec": {**(applied.get("spec") or {}), "template": template},
    }
    try:
        result = cluster.apply(body, dry_run=False, force=True)
    except ClusterError as e:
        return False, f"rollback failed: {e.message}"
    if result.error:
        return False, f"rollback failed: {result.error}"
    return True, f"rolled back to revision {_revision(previous)}"


def watch(
    cluster: Cluster,
    manifests: Sequence[Manifest],
    timeout: float,
    on_progress: Callable[[str, int, int], None] | None = None,
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
            new_available = None
            if m.ref.kind == "Deployment" and live:
                rs = new_replica_set(cluster, live)
                if (
                    rs is not None
                ):  # before the controller made it, the Deployment's counters bound it
                    new_available = _int((rs.get("status") or {}).get("availableReplicas"))
            p = progress(live, new_available)
            if on_progress:
                on_progress(m.ref.display(), p.ready, p.desired)
            if p.finished and not p.failed:
                results.append(
                    Rollout(m.ref.display(), True, p.ready, p.desired, updated=p.updated)
                )
                break
            if p.failed or clock() >= deadline or polls <= 0:
                problems, events = diagnose(cluster, live or m.obj)
                why = (
                    p.message
                    if p.failed
                    else (
                        f"not ready after {timeout:g} s ({p.ready}/{p.desired} ready"
                        + (f"; {p.message}" if p.message else "")
                        + ")"
                    )
                )
                undone, said = rollback(cluster, m.obj, live) if roll_back and live else (False, "")
                results.append(
                    Rollout(
                        m.ref.display(),
                        False,
                        p.ready,
                        p.desired,
                        why,
                        problems,
                        events,
                        undone,
                        said,
                        p.updated,
                    )
                )
                break
            sleep(interval)
    return results

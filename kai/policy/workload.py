"""Where the pod lives inside each kind of object, and what its containers are.

Shared by CEL rules (which see `podSpec` and `container`) and Python rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

CONTAINER_FIELDS = ("containers", "initContainers", "ephemeralContainers")
# Kinds whose pods run to completion: probes and PDBs make no sense for them.
# Built-in kinds that carry pods, in the order policies list them (PodTemplate only holds one).
POD_KINDS = (
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
)


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def pod_template(obj: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """The pod template (metadata + spec) of a workload and its path, or None.

    Works for any kind with `spec.template.spec.containers`, so custom resources
    that embed a pod template (Argo Rollouts, Knative, ...) are checked too.
    """
    kind = obj.get("kind")
    spec = _dict(obj.get("spec"))
    if kind == "Pod":
        return (obj, "") if spec is not None else None
    if kind == "PodTemplate":
        tpl = _dict(obj.get("template"))
        return (tpl, "template") if tpl is not None and _dict(tpl.get("spec")) is not None else None
    if spec is None:
        return None
    if kind == "CronJob":
        job = _dict(spec.get("jobTemplate"))
        job_spec = _dict(job.get("spec")) if job else None
        tpl = _dict(job_spec.get("template")) if job_spec else None
        path = "spec.jobTemplate.spec.template"
    else:
        tpl = _dict(spec.get("template"))
        path = "spec.template"
    if tpl is None:
        return None
    pod_spec = _dict(tpl.get("spec"))
    if pod_spec is None or not isinstance(pod_spec.get("containers"), list):
        return None
    return tpl, path


def pod_spec(obj: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """The PodSpec of a workload and its dotted path (`spec.template.spec`), or None."""
    found = pod_template(obj)
    if found is None:
        return None
    tpl, path = found
    spec = tpl.get("spec")
    assert isinstance(spec, dict)
    return spec, f"{path}.spec" if path else "spec"


def iter_containers(
    spec: dict[str, Any], fields: tuple[str, ...] | list[str] = CONTAINER_FIELDS
) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """Yield (field, index, container) for each container dict in the pod spec."""
    for field in fields:
        items = spec.get(field)
        if not isinstance(items, list):
            continue
        for i, c in enumerate(items):
            if isinstance(c, dict):
                yield field, i, c


def pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    """Labels the workload's pods carry (the template's labels; a Pod's own)."""
    found = pod_template(obj)
    if found is None:
        return {}
    meta = _dict(found[0].get("metadata")) or {}
    labels = _dict(meta.get("labels")) or {}
    return {str(k): str(v) for k, v in labels.items()}


def replicas(obj: dict[str, Any]) -> int | None:
    """Declared replicas (Deployment/StatefulSet/ReplicaSet default to 1); None for other kinds."""
    if obj.get("kind") not in ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"):
        return None
    spec = _dict(obj.get("spec")) or {}
    value = spec.get("replicas", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1

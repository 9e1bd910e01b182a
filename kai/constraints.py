"""What the person said explicitly must hold in the final plan.

`--set image=… port=… health=… replicas=… namespace=…` (the skill's question keys), the same keys
under `constraints:` in .kai.yaml, and the namespace a team pins there are checked against the plan; each one the plan breaks is a KAI-REQ-* error finding,
which the repair round sends back like any other ("request said health at /, plan probes
/healthz"). Free-text answers (exposure, data, secrets) are the model's to interpret and are
not checked here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kai.models import Finding, Manifest, Severity

RULES = {
    "image": "KAI-REQ-001",
    "port": "KAI-REQ-002",
    "health": "KAI-REQ-003",
    "replicas": "KAI-REQ-004",
    "namespace": "KAI-REQ-005",
}
_PATH = re.compile(r"(?<![\w.])(/[\w./-]*)")
_WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod", "Job", "CronJob")
# Kinds that live outside namespaces: a namespace constraint does not apply to them.
_CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "IngressClass",
    "PriorityClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}


def gather(answers: Mapping[str, Any], config: Any = None) -> dict[str, str]:
    """The explicit constraints: .kai.yaml first, then --set answers over them."""
    out: dict[str, str] = {}
    if config is not None:
        extra = getattr(config, "extra", {}) or {}
        team = extra.get("constraints")
        for key in RULES:
            if isinstance(team, dict) and team.get(key) not in (None, ""):
                out[key] = str(team[key])
        if getattr(config, "namespace", None):
            out["namespace"] = str(config.namespace)
    for key, value in answers.items():
        if key in RULES and str(value).strip():
            out[key] = str(value).strip()
    return out


def _containers(m: Manifest) -> Iterator[dict[str, Any]]:
    from kai.policy.workload import iter_containers, pod_spec

    found = pod_spec(m.obj)
    if found:
        for _, _, c in iter_containers(found[0], ("containers",)):
            yield c


def _finding(key: str, message: str, m: Manifest, path: str | None = None) -> Finding:
    return Finding(RULES[key], Severity.ERROR, message, m.ref, m.source.file, m.source.line, path)


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: str) -> int | None:
    m = re.search(r"\d+", value)
    return int(m.group()) if m else None


@dataclass(frozen=True)
class _Plan:
    """The parts of a plan the constraint checks look at.

    `workloads` are the objects that run pods (every object, if the plan has none), `where` is
    the first of them (the object a plan-wide finding is reported on), and `containers` pairs
    each workload with each of its containers.
    """

    manifests: Sequence[Manifest]
    workloads: list[Manifest]
    where: Manifest
    containers: list[tuple[Manifest, dict[str, Any]]]

    @classmethod
    def of(cls, manifests: Sequence[Manifest]) -> _Plan:
        workloads = [m for m in manifests if m.obj.get("kind") in _WORKLOADS] or list(manifests)
        containers = [(m, c) for m in workloads for c in _containers(m)]
        return cls(manifests, workloads, workloads[0], containers)


def _check_image(plan: _Plan, said: str) -> list[Finding]:
    """KAI-REQ-001: some container runs exactly the image the request named."""
    if not said:
        return []
    images = [str(c.get("image")) for _, c in plan.containers]
    if said in images:
        return []
    message = f"request said image {said}, plan runs {images or 'no image'}"
    return [_finding("image", message, plan.where)]


def _check_port(plan: _Plan, said: str) -> list[Finding]:
    """KAI-REQ-002: some container declares the port the request named (its first number)."""
    port = _int(said)
    if port is None:
        return []
    declared = [
        p.get("containerPort")
        for _, c in plan.containers
        for p in _items(c.get("ports"))
        if isinstance(p, dict)
    ]
    if port in declared:
        return []
    message = f"request said port {port}, plan declares {declared or 'no container port'}"
    return [_finding("port", message, plan.where)]


def _probed_paths(plan: _Plan) -> list[str]:
    """The HTTP path of every liveness, readiness and startup probe (an unset path is `/`)."""
    probed = []
    for _, c in plan.containers:
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            probe = c.get(kind)
            get = probe.get("httpGet") if isinstance(probe, dict) else None
            if isinstance(get, dict):
                probed.append(str(get.get("path") or "/"))
    return probed


def _check_health(plan: _Plan, said: str) -> list[Finding]:
    """KAI-REQ-003: the HTTP probes use only the path(s) the request named, and use one of them.

    The paths are the `/…` words in the answer ("health at /", "/live and /ready"); an answer
    without a path is not checked.
    """
    wanted = _PATH.findall(said)
    if not wanted:
        return []
    probed = _probed_paths(plan)
    wrong = sorted({p for p in probed if p not in wanted})
    if probed and not wrong and set(wanted) & set(probed):
        return []
    got = ", ".join(wrong or sorted(set(probed))) or "no HTTP path"
    message = f"request said health at {' and '.join(wanted)}, plan probes {got}"
    return [_finding("health", message, plan.where)]


def _check_replicas(plan: _Plan, said: str) -> list[Finding]:
    """KAI-REQ-004: a Deployment or StatefulSet runs the replicas the request named.

    An HPA's minReplicas counts as the number run, and a request for 1 is met by a workload
    that leaves `replicas` unset (the API defaults it to 1). A plan without such a workload is
    not checked.
    """
    replicas = _int(said)
    if replicas is None:
        return []
    manifests = plan.manifests
    scaled = [m for m in manifests if m.obj.get("kind") in ("Deployment", "StatefulSet")]
    counts = [
        (m.obj.get("spec") or {}).get("replicas") if isinstance(m.obj.get("spec"), dict) else None
        for m in scaled
    ]
    hpa_min = [
        m.obj["spec"].get("minReplicas")
        for m in manifests
        if m.obj.get("kind") == "HorizontalPodAutoscaler" and isinstance(m.obj.get("spec"), dict)
    ]
    defaulted = replicas == 1 and None in counts
    if not scaled or replicas in counts + hpa_min or defaulted:
        return []
    message = f"request said {replicas} replicas, plan runs {counts + hpa_min}"
    return [_finding("replicas", message, scaled[0])]


def _check_namespace(plan: _Plan, said: str) -> list[Finding]:
    """KAI-REQ-005: one finding per namespaced object placed in another namespace.

    An object without `metadata.namespace` is not flagged (it lands where it is applied).
    """
    if not said:
        return []
    out = []
    for m in plan.manifests:
        meta = m.obj.get("metadata")
        ns = meta.get("namespace") if isinstance(meta, dict) else None
        if ns and ns != said and m.obj.get("kind") not in _CLUSTER_SCOPED:
            message = f"request said namespace {said}, plan puts {m.ref.display()} in {ns}"
            out.append(_finding("namespace", message, m, "metadata.namespace"))
    return out


# One check per constraint key, in the order their findings are reported (the order of RULES).
# Each is given the constraint's value ("" when unset) and returns [] when it has nothing to check.
_CHECKS: dict[str, Callable[[_Plan, str], list[Finding]]] = {
    "image": _check_image,
    "port": _check_port,
    "health": _check_health,
    "replicas": _check_replicas,
    "namespace": _check_namespace,
}


def check(manifests: Sequence[Manifest], constraints: Mapping[str, str]) -> list[Finding]:
    """One KAI-REQ finding for each explicit constraint the plan breaks (a namespace one for
    each object it breaks), in the order of RULES."""
    if not constraints or not manifests:
        return []
    plan = _Plan.of(manifests)
    out: list[Finding] = []
    for key, check_one in _CHECKS.items():
        out += check_one(plan, constraints.get(key) or "")
    return out

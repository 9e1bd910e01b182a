"""What the person said explicitly must hold in the final plan.

`--set image=… port=… health=… replicas=… namespace=…` (the skill's question keys), the same keys
under `constraints:` in .kai.yaml, and the namespace a team pins there are checked against the plan; each one the plan breaks is a KAI-REQ-* error finding,
which the repair round sends back like any other ("request said health at /, plan probes
/healthz"). Free-text answers (exposure, data, secrets) are the model's to interpret and are
not checked here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
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


def check(manifests: Sequence[Manifest], constraints: Mapping[str, str]) -> list[Finding]:
    """One KAI-REQ finding for each explicit constraint the plan breaks."""
    if not constraints or not manifests:
        return []
    workloads = [m for m in manifests if m.obj.get("kind") in _WORKLOADS] or list(manifests)
    where = workloads[0]
    containers = [(m, c) for m in workloads for c in _containers(m)]
    out: list[Finding] = []

    image = constraints.get("image")
    if image:
        images = [str(c.get("image")) for _, c in containers]
        if image not in images:
            out.append(
                _finding(
                    "image", f"request said image {image}, plan runs {images or 'no image'}", where
                )
            )
    port = _int(constraints.get("port", ""))
    if port is not None:
        declared = [
            p.get("containerPort")
            for _, c in containers
            for p in _items(c.get("ports"))
            if isinstance(p, dict)
        ]
        if port not in declared:
            out.append(
                _finding(
                    "port",
                    f"request said port {port}, plan declares {declared or 'no container port'}",
                    where,
                )
            )
    wanted = _PATH.findall(constraints.get("health", ""))
    if wanted:
        probed = []
        for _, c in containers:
            for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
                probe = c.get(kind)
                get = probe.get("httpGet") if isinstance(probe, dict) else None
                if isinstance(get, dict):
                    probed.append(str(get.get("path") or "/"))
        wrong = sorted({p for p in probed if p not in wanted})
        if not probed or wrong or not set(wanted) & set(probed):
            said = " and ".join(wanted)
            got = ", ".join(wrong or sorted(set(probed))) or "no HTTP path"
            out.append(
                _finding("health", f"request said health at {said}, plan probes {got}", where)
            )
    replicas = _int(constraints.get("replicas", ""))
    if replicas is not None:
        scaled = [m for m in manifests if m.obj.get("kind") in ("Deployment", "StatefulSet")]
        counts = [
            (m.obj.get("spec") or {}).get("replicas")
            if isinstance(m.obj.get("spec"), dict)
            else None
            for m in scaled
        ]
        hpa_min = [
            m.obj["spec"].get("minReplicas")
            for m in manifests
            if m.obj.get("kind") == "HorizontalPodAutoscaler"
            and isinstance(m.obj.get("spec"), dict)
        ]
        defaulted = replicas == 1 and None in counts
        if scaled and replicas not in counts + hpa_min and not defaulted:
            out.append(
                _finding(
                    "replicas",
                    f"request said {replicas} replicas, plan runs {counts + hpa_min}",
                    scaled[0],
                )
            )
    namespace = constraints.get("namespace")
    if namespace:
        for m in manifests:
            meta = m.obj.get("metadata")
            ns = meta.get("namespace") if isinstance(meta, dict) else None
            if ns and ns != namespace and m.obj.get("kind") not in _CLUSTER_SCOPED:
                out.append(
                    _finding(
                        "namespace",
                        f"request said namespace {namespace}, plan puts {m.ref.display()} in {ns}",
                        m,
                        "metadata.namespace",
                    )
                )
    return out

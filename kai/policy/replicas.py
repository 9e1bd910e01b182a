"""Cross-object checks about replica counts, registered with kai.policy.crossobject.

Kept in their own module; kai.policy.checks imports it so the rule compiler sees them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kai.models import Manifest
from kai.policy.context import Context, Hit
from kai.policy.crossobject import READS, check


def _autoscaled(m: Manifest, ctx: Context) -> bool:
    """An HPA in the object's namespace (reviewed, or already in the cluster) scales it."""
    ns = ctx.namespace(m)

    def targets() -> set[tuple[Any, Any]]:
        found = set()
        for hpa in ctx.of_kind("HorizontalPodAutoscaler", namespace=ns):
            spec = hpa.obj.get("spec")
            ref = spec.get("scaleTargetRef") if isinstance(spec, dict) else None
            if isinstance(ref, dict) and isinstance(ref.get("kind"), str):
                found.add((ref.get("kind"), ref.get("name")))
        return found

    scaled: set[tuple[Any, Any]] = ctx.memo(("hpa-targets", ns), targets)
    return (m.ref.kind, m.ref.name) in scaled


def _declared(obj: dict[str, Any]) -> Any:
    spec = obj.get("spec")
    return spec.get("replicas", 1) if isinstance(spec, dict) else 1


@check("single-replica", kinds=("Deployment", "StatefulSet"), pod=True)
def single_replica(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """A Deployment or StatefulSet runs one replica (spec.replicas 1, or unset: the API default)
    and no HorizontalPodAutoscaler scales it. replicas: 0 (scaled down on purpose) passes."""
    value = _declared(m.obj)
    if isinstance(value, bool) or not isinstance(value, int):
        yield Hit(
            f"spec.replicas is not an integer: the API server rejects it; {m.ref.kind} "
            f"{m.ref.name} is treated as running one replica",
            "spec.replicas",
        )
        return
    if value != 1 or _autoscaled(m, ctx):
        return
    spec = m.obj.get("spec")
    declared = isinstance(spec, dict) and "replicas" in spec
    how = "spec.replicas: 1" if declared else "no spec.replicas, and the default is 1"
    yield Hit(
        f"{m.ref.kind} {m.ref.name} runs a single replica ({how}): every node drain, eviction "
        "or crash takes it offline until a new pod is ready",
        "spec.replicas" if declared else None,
    )


READS["single-replica"] = frozenset({"HorizontalPodAutoscaler"})

"""Cross-object checks stay linear in a crowded namespace (issue 17, item 1).

Counts work, not time: how many label selectors are evaluated and how many objects' pod labels
are read while the cross-object rules review N Deployments, Services, NetworkPolicies, HPAs and
PDBs in one namespace. Before the Context's indexes, both grew as N squared (every workload
scanned every NetworkPolicy, PDB and HPA of its namespace, every PDB every workload).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from kai.manifests import object_ref
from kai.models import Manifest, Source
from kai.policy import context as context_module
from kai.policy import selectors
from kai.policy.catalog import load_rules
from kai.policy.engine import Engine


def _labels(i: int) -> dict[str, str]:
    return {"app.kubernetes.io/name": f"app{i}", "tier": "web"}


def crowded(per_kind: int) -> list[Manifest]:
    """per_kind each of Deployment, Service, NetworkPolicy, HPA and PDB in namespace `crowded`,
    each app's objects pointing at each other (as benchmarks/scale.py generates them), plus a
    few selectors of every shape: matchExpressions-only, empty, purely negative."""
    objs: list[dict[str, Any]] = []
    for i in range(per_kind):
        meta = {"name": f"app{i}", "namespace": "crowded"}
        sel = {"matchLabels": _labels(i)}
        container = {
            "name": "app",
            "image": "x:1",
            "ports": [{"name": "http", "containerPort": 80}],
        }
        objs += [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": meta,
                "spec": {
                    "replicas": 2,
                    "selector": sel,
                    "template": {
                        "metadata": {"labels": _labels(i)},
                        "spec": {"containers": [container]},
                    },
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta,
                "spec": {"selector": _labels(i), "ports": [{"port": 80, "targetPort": "http"}]},
            },
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": meta,
                "spec": {"podSelector": sel, "policyTypes": ["Ingress"]},
            },
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": meta,
                "spec": {
                    "scaleTargetRef": {"kind": "Deployment", "name": f"app{i}"},
                    "minReplicas": 2,
                    "maxReplicas": 4,
                },
            },
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": meta,
                "spec": {
                    "minAvailable": 1,
                    "selector": {
                        "matchExpressions": [
                            {
                                "key": "app.kubernetes.io/name",
                                "operator": "In",
                                "values": [f"app{i}"],
                            }
                        ]
                    },
                },
            },
        ]
    # Selectors every workload is a candidate for, which select none of them: checked once per
    # workload (and, for the PDB, once against every workload): a constant number of them.
    absent = [{"key": "tier", "operator": "DoesNotExist"}]
    not_web = [{"key": "tier", "operator": "NotIn", "values": ["web"]}]
    objs += [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "untiered", "namespace": "crowded"},
            "spec": {"podSelector": {"matchExpressions": absent}},
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "not-web", "namespace": "crowded"},
            "spec": {"minAvailable": 1, "selector": {"matchExpressions": not_web}},
        },
    ]
    return [Manifest(object_ref(o), Source("crowded.yaml", i + 1), o) for i, o in enumerate(objs)]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine([r for r in load_rules() if r.python])


def _work(
    engine: Engine, per_kind: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, int, int, int]:
    """(selector evaluations, pod-label reads, the Context's own count of the candidates it
    evaluated, findings) of one review of the crowded case."""
    counts = {"selectors": 0, "labels": 0}
    contexts: list[context_module.Context] = []
    real_init = context_module.Context.__init__

    def recording(self: context_module.Context, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        contexts.append(self)

    monkeypatch.setattr(context_module.Context, "__init__", recording)
    real_matches = selectors.label_selector_matches

    def counting_matches(selector: Any, labels: dict[str, str]) -> bool:
        counts["selectors"] += 1
        return real_matches(selector, labels)

    # Every kai.policy module that bound the function by name (crossobject, context, references...).
    for name, mod in list(sys.modules.items()):
        if (
            name.startswith("kai.policy")
            and getattr(mod, "label_selector_matches", None) is real_matches
        ):
            monkeypatch.setattr(mod, "label_selector_matches", counting_matches)
    real_labels = context_module.Context.labels

    def counting_labels(self: context_module.Context, m: Manifest) -> dict[str, str]:
        counts["labels"] += 1
        return real_labels(self, m)

    monkeypatch.setattr(context_module.Context, "labels", counting_labels)
    report = engine.evaluate(crowded(per_kind))
    monkeypatch.undo()
    (ctx,) = contexts
    # KAI-NET-012 reports the one policy (tier DoesNotExist) that selects no app, at every size.
    per_app = [f for f in report.findings if f.rule != "KAI-NET-012"]
    return counts["selectors"], counts["labels"], ctx.evaluations, len(per_app)


def test_crowded_namespace_cross_object_work_grows_linearly(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = _work(engine, 1000, monkeypatch)
    large = _work(engine, 2000, monkeypatch)
    # The same four verdicts per app at both sizes (HPA-002: no CPU request for the default CPU
    # target; HPA-003: replicas pinned under an HPA; AVL-002: no spread; SEC-008: token mounted).
    assert large[3] == 2 * small[3] > 0
    objects_small = 5 * 1000
    for done_small, done_large in zip(small[:3], large[:3], strict=True):
        assert done_small > 0
        # Twice the objects, at most a little over twice the work (quadratic would be 4x) ...
        assert done_large <= 2.1 * done_small, (small, large)
        # ... and a handful of evaluations per object, not one per pair of objects.
        assert done_small <= 10 * objects_small, small

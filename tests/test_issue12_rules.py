"""Issue 12, item 3: the per-object rules added for the checks users of the peers expect, and the
RES/PRB rules rewritten so that the API server accepts their exported policy and they batch."""

from __future__ import annotations

from dataclasses import replace

from kai.manifests import load_text
from kai.policy.catalog import load_rules
from kai.policy.engine import Engine
from kai.policy.export import export_vap, exportable

RULES = load_rules()
BY_ID = {r.id: r for r in RULES}
REWRITTEN = ("KAI-RES-001", "KAI-RES-002", "KAI-RES-003", "KAI-PRB-003")


def test_no_builtin_rule_binds_names_with_cel_bind() -> None:
    """kube-apiserver rejects cel.bind inside a comprehension (tests/cluster/test_vap.py); the
    built-in rules bind with one-element comprehensions instead."""
    assert [r.id for r in RULES if r.cel and "cel.bind(" in r.cel.expression] == []


def test_rewritten_resource_and_probe_rules_are_exported() -> None:
    for rid in REWRITTEN:
        assert exportable(replace(BY_ID[rid], enabled=True)), rid
    objects, skipped = export_vap(RULES)
    names = {o["metadata"]["name"] for o in objects}
    assert {"kai-res-001", "kai-res-002", "kai-prb-003"} <= names
    assert not {r.id for r in skipped} & set(REWRITTEN)


def test_rewritten_rules_run_in_the_batched_program() -> None:
    engine = Engine([replace(r, enabled=True) if r.id in REWRITTEN else r for r in RULES])
    plan = engine._plan("Deployment", True)
    batched = {c.rule.id for c in plan.cel_rules}
    assert set(REWRITTEN) <= batched
    text = """\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - name: ok
      image: ghcr.io/acme/app:1.0
      resources: {limits: {cpu: 500m, memory: 256Mi}}
    - name: bad
      image: ghcr.io/acme/app:1.0
      resources: {requests: {cpu: "0", memory: 64Mi}, limits: {memory: 128Mi}}
"""
    manifests, _ = load_text(text, "p.yaml")
    hits = {
        (f.rule, f.path)
        for f in engine.evaluate(manifests).findings
        if f.rule in ("KAI-RES-001", "KAI-RES-002", "KAI-RES-003")
    }
    assert hits == {
        ("KAI-RES-001", "spec.containers[1]"),
        ("KAI-RES-002", "spec.containers[1]"),
        ("KAI-RES-003", "spec.containers[1]"),
    }

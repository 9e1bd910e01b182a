"""Issue 12, item 3: the per-object rules added for the checks users of the peers expect, and the
RES/PRB rules rewritten so that the API server accepts their exported policy and they batch."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from kai.manifests import load_text
from kai.policy.catalog import builtin_dir, load_rules
from kai.policy.engine import Engine
from kai.policy.export import export_vap, exportable
from kai.policy.fixtures import fixed_fixtures_for, run_fixed_fixture

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


# ---------- fixed fixtures: kai fix turns fixed*.yaml into exactly fixed*.out.yaml ----------

FIXED = [(r, p, e) for r in RULES for p, e in fixed_fixtures_for(r, builtin_dir())]


@pytest.mark.parametrize(
    ("rule", "path", "expected"), FIXED, ids=[f"{r.id}/{p.name}" for r, p, _ in FIXED]
)
def test_fixed_fixture(rule, path: Path, expected: Path) -> None:
    result = run_fixed_fixture(rule, path, expected)
    assert result.ok, result.messages


def test_every_fixable_new_rule_has_a_fixed_fixture() -> None:
    with_fixed = {r.id for r, _, _ in FIXED}
    assert {"KAI-AVL-007", "KAI-WRK-003", "KAI-JOB-003"} <= with_fixed


def test_a_fixed_fixture_fails_when_the_expected_text_differs(tmp_path: Path) -> None:
    rule = BY_ID["KAI-AVL-007"]
    src = builtin_dir() / "tests" / "KAI-AVL-007" / "fixed.yaml"
    (tmp_path / "fixed.yaml").write_text(src.read_text())
    (tmp_path / "fixed.out.yaml").write_text(src.read_text())  # the unfixed text
    result = run_fixed_fixture(rule, tmp_path / "fixed.yaml", tmp_path / "fixed.out.yaml")
    assert not result.ok and "differs" in result.messages[0]

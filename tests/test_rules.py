"""The built-in catalog: every rule's fixtures, and the metadata learners and scripts rely on."""

from __future__ import annotations

from pathlib import Path

import pytest

from kai.policy.catalog import builtin_dir, load_rules
from kai.policy.fixtures import fixtures_for, run_directory, run_fixture

RULES = load_rules()
PEER_TOOLS = {"kube-linter", "kube-score", "polaris", "checkov", "pss"}
CASES = [(r, outcome, path) for r in RULES for outcome, path in fixtures_for(r, builtin_dir())]


@pytest.mark.parametrize(
    ("rule", "outcome", "path"), CASES, ids=[f"{r.id}/{p.name}" for r, _, p in CASES]
)
def test_fixture(rule, outcome: str, path: Path) -> None:
    result = run_fixture(rule, outcome, path)
    assert result.ok, (
        f"expected {result.expected} finding(s), found {result.found}: {result.messages}"
    )


def test_every_rule_has_a_passing_and_a_failing_fixture() -> None:
    _, missing = run_directory(builtin_dir())
    assert missing == []


def test_catalog_size_and_core_rules() -> None:
    ids = {r.id for r in RULES}
    assert len(ids) >= 40
    assert {"KAI-RES-001", "KAI-PRB-001", "KAI-SEC-001", "KAI-NET-001"} <= ids


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_metadata_teaches(rule) -> None:
    assert len(rule.rationale.split()) >= 20, (
        "rationale must explain why, in words a learner understands"
    )
    assert rule.remediation.strip()
    assert rule.example, "a concrete YAML snippet of the fix"
    assert rule.references.docs and rule.references.docs.startswith("https://kubernetes.io/docs/")
    assert rule.concept
    assert set(rule.equivalents) <= PEER_TOOLS
    assert all(
        ids and all(isinstance(i, str) and i for i in ids) for ids in rule.equivalents.values()
    )


def test_most_rules_map_to_peer_tools() -> None:
    # Equivalents name only peer checks that decide the same thing, and some of kai's checks
    # have none (ConfigMap and Secret references, peer selectors, wildcard bindings).
    mapped = [r for r in RULES if r.equivalents]
    assert len(mapped) >= 0.7 * len(RULES)

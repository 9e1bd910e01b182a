"""Reference checks (kai.policy.references): the RBAC matching agrees with KAI-RBAC-005's CEL,
Secrets are unknown against a cluster, and every check stays linear in the number of objects."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from kai.cluster.stages import mark_unknown
from kai.manifests import load_text
from kai.policy import selectors
from kai.policy.catalog import builtin_dir, load_rules
from kai.policy.engine import Engine
from kai.policy.fixtures import fixtures_for
from kai.policy.references import exec_grants, rule_allows

RULES = {r.id: r for r in load_rules()}


def _roles_of_rbac_005() -> list[dict[str, Any]]:
    roles = []
    for _, path in fixtures_for(RULES["KAI-RBAC-005"], builtin_dir()):
        manifests, _ = load_text(path.read_text(), str(path))
        roles += [m.obj for m in manifests if m.ref.kind in ("Role", "ClusterRole")]
    # and the authorizer's corner cases, each one rule
    for resources, groups, verbs in [
        (["pods/*"], [""], ["create"]),  # a literal: matches nothing
        (["*/exec"], [""], ["create"]),
        (["*/attach"], ["*"], ["get"]),
        (["pods/exec"], ["apps"], ["create"]),  # wrong group
        (["pods/exec"], [""], ["list", "watch"]),
        (["*"], [""], ["*"]),
        (["pods", "pods/log"], [""], ["*"]),
    ]:
        rule = {"apiGroups": groups, "resources": resources, "verbs": verbs}
        roles.append({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                      "metadata": {"name": "r"}, "rules": [rule]})  # fmt: skip
    return roles


@pytest.mark.parametrize("role", _roles_of_rbac_005())
def test_binding_exec_matching_agrees_with_kai_rbac_005(role: dict[str, Any]) -> None:
    """KAI-RBAC-006 judges the bound role with Python, KAI-RBAC-005 the role with CEL: they must
    decide every role alike, so the binding rule inherits RBAC-005's authorizer semantics."""
    import yaml

    text = yaml.safe_dump(role)
    manifests, _ = load_text(text, "role.yaml")
    engine = Engine([replace(RULES["KAI-RBAC-005"], enabled=True)])
    cel_says_exec = bool(engine.evaluate(manifests).findings)
    assert bool(exec_grants(role.get("rules") or [])) == cel_says_exec, role


def test_rule_allows_is_the_authorizers_match() -> None:
    rule = {"apiGroups": [""], "resources": ["*/exec"], "verbs": ["create"]}
    assert rule_allows(rule, "create", "", "pods", "exec")
    assert not rule_allows(rule, "create", "", "pods", "attach")
    assert not rule_allows(rule, "create", "", "pods")  # "*/exec" is no match for pods itself
    assert not rule_allows({**rule, "resources": ["pods/*"]}, "create", "", "pods", "exec")
    assert not rule_allows({**rule, "apiGroups": ["apps"]}, "create", "", "pods", "exec")


DEPLOYMENT_WITH_REFS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: ghcr.io/acme/web:1.0
          envFrom:
            - configMapRef: {name: web-config}
            - secretRef: {name: web-secret}
"""


def test_secret_references_are_unknown_against_a_cluster_configmaps_are_not() -> None:
    manifests, _ = load_text(DEPLOYMENT_WITH_REFS, "web.yaml")
    rules = [RULES["KAI-REF-001"], RULES["KAI-REF-002"]]
    report = Engine(rules).evaluate(manifests)
    assert {f.rule for f in report.findings} == {"KAI-REF-001", "KAI-REF-002"}
    assert not any(f.unknown for f in report.findings)  # files alone: warnings, as they are
    marked = mark_unknown(report, rules, {}, "default")  # every kind readable, Secrets never read
    unknown = {f.rule: f.unknown for f in marked.findings}
    assert unknown == {"KAI-REF-001": False, "KAI-REF-002": True}
    assert "kai never reads Secret" in next(
        f.message for f in marked.findings if f.rule == "KAI-REF-002"
    )
    # a ConfigMap the identity may not list makes KAI-REF-001 unknown too
    blind = mark_unknown(
        Engine(rules).evaluate(manifests), rules, {"shop": {"ConfigMap": "forbidden"}}, "default"
    )
    assert all(f.unknown for f in blind.findings)


def _many(n: int) -> str:
    docs = []
    for i in range(n):
        docs.append(
            f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: w{i}}}
spec:
  selector: {{matchLabels: {{app: w{i}}}}}
  template:
    metadata: {{labels: {{app: w{i}, tier: t{i % 7}}}}}
    spec:
      serviceAccountName: sa{i}
      containers:
        - name: c
          image: ghcr.io/acme/w:1.0
          envFrom: [{{configMapRef: {{name: cm{i}}}}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: cm{i}}}
data: {{k: v}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: np{i}}}
spec:
  podSelector: {{matchLabels: {{app: w{i}}}}}
  ingress:
    - from:
        - podSelector:
            matchExpressions: [{{key: app, operator: In, values: [w{(i + 1) % n}]}}]
"""
        )
    return "---\n".join(docs)


def test_reference_checks_do_not_compare_every_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    """N NetworkPolicies over N workloads: each selector is matched against the few workloads
    the label index offers, not all N (a pairwise loop would be N * N = 90,000 matches here)."""
    n = 300
    manifests, _ = load_text(_many(n), "many.yaml")
    calls = 0
    real = selectors.label_selector_matches

    def counting(selector: object, labels: dict[str, str]) -> bool:
        nonlocal calls
        calls += 1
        return real(selector, labels)

    import kai.policy.context as context_module

    monkeypatch.setattr(selectors, "label_selector_matches", counting)
    monkeypatch.setattr(context_module, "label_selector_matches", counting)  # the Context's copy
    ids = ["KAI-REF-001", "KAI-REF-004", "KAI-NET-012", "KAI-NET-013"]
    report = Engine([RULES[i] for i in ids]).evaluate(manifests)
    by_rule = {i: sum(f.rule == i for f in report.findings) for i in ids}
    assert by_rule == {"KAI-REF-001": 0, "KAI-REF-004": n, "KAI-NET-012": 0, "KAI-NET-013": 0}
    assert 0 < calls <= 3 * n, calls

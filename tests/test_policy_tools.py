"""kai policies new / test / export: team rules without Python, enforced in-cluster as VAPs."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from cel_expr_python import cel
from cel_expr_python.ext import ext_bindings, ext_optional, ext_strings

from kai.manifests import load_text
from kai.policy.catalog import builtin_dir, load_rules
from kai.policy.engine import Engine
from kai.policy.export import RESOURCES, export_vap, exportable
from kai.policy.fixtures import fixtures_for
from kai.policy.validate import available_versions, validate

RULES = load_rules()


def test_new_then_test_passes_and_catches_a_broken_fixture(kai, tmp_path: Path) -> None:
    d = tmp_path / "team"
    r = kai("policies", "new", "team-001", "--dir", str(d))
    assert r.code == 0 and (d / "TEAM-001.yaml").is_file()
    r = kai("policies", "test", str(d))
    assert r.code == 0 and "2 passed, 0 failed, 0 missing" in r.out
    # A rule that passes (does not fire) on its fail fixture is caught.
    rule = d / "TEAM-001.yaml"
    rule.write_text(rule.read_text().replace("registry.example.com/'", "'"))
    r = kai("policies", "test", str(d))
    assert r.code == 1 and "FAIL" in r.out and "expected 1, found 0" in r.out
    assert kai("policies", "new", "team-001", "--dir", str(d)).code == 2  # never overwrites


def test_user_rule_directory_with_firing_and_passing_cel_rules(kai, tmp_path: Path) -> None:
    d = tmp_path / "team"
    kai("policies", "new", "TEAM-001", "--dir", str(d))
    (d / "TEAM-002.yaml").write_text(
        """\
id: TEAM-002
title: Deployments declare an owner
severity: warning
category: metadata
rationale: On-call needs to know which team to page when a Deployment misbehaves at night.
remediation: Add an owner label with your team's name.
match:
  kinds: [Deployment]
cel:
  expression: "has(object.metadata.labels) && 'owner' in object.metadata.labels"
  message: "{kind} {name} has no owner label"
"""
    )
    manifest = tmp_path / "app.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app, labels: {owner: payments}}\n"
        "spec:\n  selector: {matchLabels: {app: a}}\n  template:\n    metadata: {labels: {app: a}}\n"
        "    spec: {containers: [{name: app, image: 'docker.io/library/nginx:1.27'}]}\n"
    )
    data = kai("review", str(manifest), "--policies", str(d), "-o", "json").json()
    rules = {f["rule"] for f in data["findings"]}
    assert "TEAM-001" in rules and "TEAM-002" not in rules


def test_export_validates_against_the_vap_schema(kai, tmp_path: Path) -> None:
    out = tmp_path / "vap.yaml"
    r = kai("policies", "export", "--format", "vap", "--action", "deny", "--out", str(out))
    assert r.code == 0 and "not exported" in r.err and "KAI-NET-001" in r.err
    manifests, _ = load_text(out.read_text(), str(out))
    kinds = {m.ref.kind for m in manifests}
    assert kinds == {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    exported = {
        m.obj["metadata"]["annotations"]["kai.dev/rule"]
        for m in manifests
        if m.ref.kind == "ValidatingAdmissionPolicy"
    }
    assert exported == {r.id for r in RULES if exportable(r)}
    assert all(
        m.obj["spec"]["validationActions"] == ["Deny"]
        for m in manifests
        if m.ref.kind.endswith("Binding")
    )
    for version in ("1.30", available_versions()[-1]):
        result = validate(manifests, kubernetes_version=version, backend="builtin")
        # an object kai cannot validate is a note ("not validated: ..."): none means all were
        assert result.findings == [] and result.notes == [], version


def _env() -> Any:
    return cel.NewEnv(
        variables={"object": cel.Type.DYN, "variables": cel.Type.DYN},
        extensions=[
            ext_strings.ExtStrings(),
            ext_optional.ExtOptional(),
            ext_bindings.ExtBindings(),
        ],
    )


def _admits(vap: dict[str, Any], obj: dict[str, Any]) -> bool:
    """Evaluate a ValidatingAdmissionPolicy the way the API server does: match, variables, conditions, validations."""
    group, resource = RESOURCES[obj["kind"]]
    if not any(
        (group in r["apiGroups"] or "*" in r["apiGroups"])
        and (resource in r["resources"] or "*" in r["resources"])
        for r in vap["spec"]["matchConstraints"]["resourceRules"]
    ):
        return True  # the policy does not apply to this resource
    env = _env()
    variables: dict[str, Any] = {}
    for v in vap["spec"].get("variables", []):
        variables[v["name"]] = (
            env.compile(v["expression"])
            .eval(data={"object": obj, "variables": variables})
            .plain_value()
        )
    for c in vap["spec"]["matchConditions"]:
        if (
            env.compile(c["expression"])
            .eval(data={"object": obj, "variables": variables})
            .plain_value()
            is not True
        ):
            return True  # not matched: admitted
    return all(
        env.compile(v["expression"])
        .eval(data={"object": obj, "variables": variables})
        .plain_value()
        is True
        for v in vap["spec"]["validations"]
    )


KINDS = {
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "Service",
    "Ingress",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
}
CASES = [
    (r, path)
    for r in RULES
    if exportable(replace(r, enabled=True))
    for _, path in fixtures_for(r, builtin_dir())
]


@pytest.mark.parametrize(("rule", "path"), CASES, ids=[f"{r.id}/{p.name}" for r, p in CASES])
def test_exported_policy_agrees_with_kai_on_every_fixture(rule, path: Path) -> None:
    rule = replace(rule, enabled=True)  # opt-in rules too
    vap = export_vap([rule])[0][0]
    manifests, _ = load_text(path.read_text(), str(path))
    engine = Engine([rule])
    for m in manifests:
        if m.ref.kind not in KINDS:
            continue
        kai_ok = not [f for f in engine.evaluate([m]).findings if not f.suppressed]
        assert _admits(vap, m.obj) == kai_ok, f"{m.ref.display()} in {path.name}"


def test_exported_policy_honours_the_ignore_annotation() -> None:
    rule = next(r for r in RULES if r.id == "KAI-SEC-002")
    vap = export_vap([rule])[0][0]
    pod = yaml.safe_load(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
        "spec: {containers: [{name: c, image: x, securityContext: {privileged: true}}]}\n"
    )
    assert _admits(vap, pod) is False
    pod["metadata"]["annotations"] = {"kai.dev/ignore": "KAI-RES-001, KAI-SEC-002"}
    assert _admits(vap, pod) is True


def test_export_cannot_take_a_cluster_down_by_default(kai, tmp_path: Path) -> None:
    out = tmp_path / "vap.yaml"
    r = kai("policies", "export", "--out", str(out))
    assert r.code == 0
    assert "validationActions Warn, Audit" in r.err and "--action deny enforces" in r.err
    assert "excluded namespaces: kube-system, kube-node-lease, kube-public" in r.err
    text = out.read_text()
    assert not re.search(r"[&*]id\d", text)  # no YAML anchors or aliases
    manifests, _ = load_text(text, str(out))
    for m in manifests:
        if m.ref.kind == "ValidatingAdmissionPolicy":
            assert m.obj["spec"]["failurePolicy"] == "Ignore"
        else:
            assert m.obj["spec"]["validationActions"] == ["Warn", "Audit"]
            assert m.obj["spec"]["matchResources"]["namespaceSelector"] == {
                "matchExpressions": [
                    {
                        "key": "kubernetes.io/metadata.name",
                        "operator": "NotIn",
                        "values": ["kube-system", "kube-node-lease", "kube-public"],
                    }
                ]
            }


def test_export_deny_says_so_and_takes_its_own_exclusions(kai, tmp_path: Path) -> None:
    out = tmp_path / "vap.yaml"
    r = kai(
        "policies",
        "export",
        "--action",
        "deny",
        "--exclude-namespace",
        "infra",
        "--exclude-namespace",
        "kube-system",
        "--failure-policy",
        "fail",
        "--out",
        str(out),
    )
    assert r.code == 0 and "Deny rejects every violating request" in r.err
    assert "excluded namespaces: infra, kube-system; failurePolicy Fail" in r.err
    manifests, _ = load_text(out.read_text(), str(out))
    bindings = [m.obj for m in manifests if m.ref.kind.endswith("Binding")]
    assert all(
        b["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"][0]["values"]
        == ["infra", "kube-system"]
        for b in bindings
    )
    r = kai("policies", "export", "--exclude-namespace", "", "--out", str(out))
    assert "excluded namespaces: none" in r.err
    assert "matchResources" not in out.read_text()
    r = kai("policies", "export", "--exclude-namespace", "Not A Namespace")
    assert r.code == 2 and "not a namespace name" in r.err and r.out == ""

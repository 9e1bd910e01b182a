"""Deterministic fixes: idempotent, comment-preserving, behaviour-preserving, and complete."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, ROOT

from kai.manifests import load_text
from kai.policy.catalog import load_rules
from kai.policy.engine import Engine
from kai.policy.fix import FIXERS, fix_text
from kai.policy.workload import iter_containers, pod_spec

RULES = load_rules()
DRAFT = EXAMPLES / "agent-draft" / "agent.yaml"


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench", ROOT / "benchmarks" / "bench.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = module
    spec.loader.exec_module(module)
    return module


def _fixable_findings(text: str) -> list[tuple[str, str]]:
    manifests, notes = load_text(text, "x.yaml")
    report = Engine(RULES).evaluate(manifests, notes)
    return [
        (f.rule, f.object.display())
        for f in report.findings
        if f.rule in FIXERS and not f.suppressed
    ]


def _behaviour(text: str) -> list[Any]:
    """What a workload does: images, commands, args, ports and replicas, per object."""
    out = []
    for m in load_text(text, "x.yaml")[0]:
        found = pod_spec(m.obj)
        containers = (
            [
                (c.get("name"), c.get("image"), c.get("command"), c.get("args"), c.get("ports"))
                for _, _, c in iter_containers(found[0])
            ]
            if found
            else []
        )
        out.append((m.ref.display(), (m.obj.get("spec") or {}).get("replicas"), containers))
    return out


def _check_fix(text: str) -> None:
    result = fix_text(text, "x.yaml", RULES)
    declined = {(d.rule, d.object) for d in result.declined}
    assert set(_fixable_findings(result.fixed)) <= declined, "a fixable finding survived the fix"
    again = fix_text(result.fixed, "x.yaml", RULES)
    assert again.fixed == result.fixed and again.changes == [], (
        "fixing twice must equal fixing once"
    )
    before, after = _behaviour(text), _behaviour(result.fixed)
    assert after[: len(before)] == before, "fixes must not change what the workload does"


def test_draft_example_is_fixed_completely() -> None:
    text = DRAFT.read_text()
    result = fix_text(text, str(DRAFT), RULES)
    assert result.changed and len(result.changes) >= 12
    assert _fixable_findings(result.fixed) == []
    _check_fix(text)
    kinds = [m.ref.kind for m in load_text(result.fixed, "x")[0]]
    assert kinds.count("NetworkPolicy") == 1 and kinds.count("PodDisruptionBudget") == 1


def test_every_example_file_fixes_cleanly() -> None:
    for f in sorted(EXAMPLES.rglob("*.yaml")):
        _check_fix(f.read_text())


def test_generated_manifests_fix_cleanly() -> None:
    bench = _bench()
    objs = [bench.make_object(n) for n in range(120)]
    _check_fix(yaml.safe_dump_all(objs, sort_keys=False))


def test_comments_key_order_and_quotes_are_preserved() -> None:
    text = """\
# the payments API, owned by team-pay
apiVersion: apps/v1
kind: Deployment
metadata:
  name: pay  # keep short
  annotations:
    note: "quoted stays quoted"
spec:
  replicas: 1
  selector:
    matchLabels: {app: pay}
  template:
    metadata:
      labels: {app: pay}
    spec:
      containers:
      - name: api   # flush-left list style is kept
        image: ghcr.io/acme/pay:2.1.0
"""
    fixed = fix_text(text, "x.yaml", RULES).fixed
    assert fixed.startswith(
        "# the payments API, owned by team-pay\napiVersion: apps/v1\nkind: Deployment\n"
    )
    assert "name: pay  # keep short" in fixed
    assert 'note: "quoted stays quoted"' in fixed
    assert "      - name: api   # flush-left list style is kept" in fixed
    assert fixed.index("replicas: 1") < fixed.index("selector:")


def test_explicit_root_and_privileged_are_declined_not_overridden() -> None:
    text = """\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - name: c
      image: ghcr.io/acme/c:1.0
      securityContext: {runAsUser: 0, privileged: true}
"""
    result = fix_text(text, "x.yaml", RULES)
    reasons = {d.rule: d.description for d in result.declined}
    assert "asks to run as root" in reasons["KAI-SEC-001"]
    assert "privileged" in reasons["KAI-SEC-003"]
    pod = yaml.safe_load(result.fixed)
    sc = pod["spec"]["containers"][0]["securityContext"]
    assert (
        sc["runAsUser"] == 0 and sc["privileged"] is True and "allowPrivilegeEscalation" not in sc
    )


def test_probes_only_when_a_port_exists() -> None:
    text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n  template:\n    spec:\n      containers:\n        - {name: w, image: 'w:1.0'}\n"
    result = fix_text(text, "x.yaml", RULES)
    assert any(d.rule == "KAI-PRB-001" and "no port" in d.description for d in result.declined)


def test_resource_defaults_come_from_config_and_never_undercut_requests() -> None:
    text = """\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - name: c
      image: ghcr.io/acme/c:1.0
      resources: {requests: {memory: 1Gi}}
"""
    defaults = {
        "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}}
    }
    res = yaml.safe_load(fix_text(text, "x.yaml", RULES, defaults).fixed)["spec"]["containers"][0][
        "resources"
    ]
    assert res["requests"] == {"memory": "1Gi", "cpu": "250m"}
    assert res["limits"]["memory"] == "1Gi"  # the 512Mi default would undercut the request


def test_cli_fix_stdout_dry_run_and_in_place(kai, tmp_path: Path) -> None:
    f = tmp_path / "agent.yaml"
    f.write_text(DRAFT.read_text())
    r = kai("fix", str(f))
    # The draft keeps two findings no fixer repairs (a :latest image, config in env): exit 1.
    assert (
        r.code == 1
        and "still failing: 2 findings" in r.err
        and "KAI-IMG-001 Deployment/agent" in r.err
        and "kind: NetworkPolicy" in r.out
        and "+++ b/" in r.err
        and f.read_text() == DRAFT.read_text()
    )
    r = kai("fix", str(f), "--dry-run")
    assert "+++ b/" in r.out and f.read_text() == DRAFT.read_text()
    out = tmp_path / "fixed.yaml"
    assert (
        kai("fix", str(f), "-o", str(out)).code == 1
        and "kind: PodDisruptionBudget" in out.read_text()
    )
    assert (
        kai("fix", str(f), "--in-place").code == 1 and "kind: PodDisruptionBudget" in f.read_text()
    )
    assert "0 fixes" in kai("fix", str(f), "--dry-run").out


def test_cli_review_fix(kai, tmp_path: Path) -> None:
    f = tmp_path / "agent.yaml"
    f.write_text(DRAFT.read_text())
    r = kai("review", str(f), "--fix", "-o", "json")
    rules = {x["rule"] for x in r.json()["findings"]}
    assert not rules & set(FIXERS)
    assert "fixed KAI-SEC-001" in r.err
    assert kai("review", "-", "--fix", stdin="kind: Pod").code == 2


@pytest.mark.parametrize("rule_id", sorted(FIXERS))
def test_every_fixer_belongs_to_a_real_rule(rule_id: str) -> None:
    assert rule_id in {r.id for r in RULES}


ALIASED_LABELS = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: &l {app: web}
spec:
  selector:
    matchLabels: *l
  template:
    metadata:
      labels: *l
    spec:
      containers:
        - name: c
          image: nginx:1.27
"""


def test_a_fix_to_an_aliased_node_does_not_change_the_selector() -> None:
    """`labels: &l` shared with `matchLabels: *l` (benchmarks/hostile.py's anchors shape): the
    recommended labels go on metadata.labels only; the selector (immutable once applied) and the
    pod labels stay as written, and kai says why the aliases were written out."""
    result = fix_text(ALIASED_LABELS, "x.yaml", RULES)
    assert any(c.rule == "KAI-META-001" for c in result.changes)
    fixed = yaml.safe_load_all(result.fixed)
    deployment = next(d for d in fixed if d["kind"] == "Deployment")
    assert deployment["metadata"]["labels"]["app.kubernetes.io/name"] == "web"
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": "web"}
    assert deployment["spec"]["template"]["metadata"]["labels"] == {"app": "web"}
    assert [n for n in result.notes if "Deployment/web" in n and "aliases" in n]
    assert _behaviour(result.fixed)[0] == _behaviour(ALIASED_LABELS)[0]


def test_a_fix_to_a_node_merged_with_a_merge_key_does_not_change_its_source() -> None:
    """ruamel writes `<<: *sc` back as a reference: a key a fix adds to the anchored map would
    reach every map that merges it."""
    text = """\
apiVersion: v1
kind: Pod
metadata: {name: p, labels: {app.kubernetes.io/name: p, app.kubernetes.io/instance: p}}
spec:
  containers:
    - &first
      name: a
      image: nginx:1.27
      securityContext: &sc {runAsNonRoot: true}
    - <<: *first
      name: b
      securityContext:
        <<: *sc
        privileged: true
"""
    result = fix_text(text, "x.yaml", RULES)
    pod = next(d for d in yaml.safe_load_all(result.fixed) if d["kind"] == "Pod")
    a, b = pod["spec"]["containers"]
    assert b["securityContext"]["privileged"] is True
    assert "privileged" not in a["securityContext"]
    assert a["securityContext"]["allowPrivilegeEscalation"] is False
    # the API server rejects privileged with allowPrivilegeEscalation: false; the fix of `a`
    # must not reach `b` through `<<: *sc`
    assert "allowPrivilegeEscalation" not in b["securityContext"]
    assert (a["name"], b["name"]) == ("a", "b")


def test_aliases_are_kept_when_the_fixes_mean_the_same_for_every_place() -> None:
    """Two containers sharing one `resources: &r` block: the fix edits other keys, so the
    anchor survives and nothing is written out."""
    text = """\
apiVersion: v1
kind: Pod
metadata: {name: p, labels: {app.kubernetes.io/name: p, app.kubernetes.io/instance: p}}
spec:
  containers:
    - name: a
      image: nginx:1.27
      resources: &r {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: 200m, memory: 64Mi}}
    - name: b
      image: nginx:1.27
      resources: *r
"""
    result = fix_text(text, "x.yaml", RULES)
    assert result.changes
    assert "resources: *r" in result.fixed and "&r" in result.fixed
    assert not result.notes

from __future__ import annotations

from pathlib import Path

from conftest import EXAMPLES

DRAFT = str(EXAMPLES / "agent-draft")
HARDENED = str(EXAMPLES / "agent-hardened")

POD_AS_ROOT = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations: {}
spec:
  containers:
    - name: c
      image: nginx:1.27
"""


def test_hardened_example_passes(kai) -> None:
    r = kai("review", HARDENED)
    assert r.code == 0, r.out
    assert "PASS 9 objects, 0 findings" in r.out


def test_draft_example_fails_with_the_core_findings(kai) -> None:
    r = kai("review", DRAFT, "-o", "json")
    assert r.code == 1
    rules = {f["rule"] for f in r.json()["findings"]}
    assert {"KAI-RES-001", "KAI-PRB-001", "KAI-SEC-001", "KAI-NET-001"} <= rules


def test_json_finding_shape_is_stable(kai) -> None:
    data = kai("review", DRAFT, "-o", "json").json()
    assert data["version"] == 1
    assert set(data["summary"]) == {
        "objects",
        "findings",
        "suppressed",
        "unknown",
        "by_severity",
        "fail_on",
        "passed",
    }
    f = next(f for f in data["findings"] if f["rule"] == "KAI-SEC-001")
    assert set(f) == {
        "rule",
        "severity",
        "message",
        "object",
        "file",
        "line",
        "path",
        "suppressed",
        "suppression_reason",
        "unknown",
    }
    assert f["object"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "namespace": None,
        "name": "agent",
    }
    assert f["file"].endswith("agent.yaml") and f["line"] == 3
    assert f["path"] == "spec.template.spec.containers[0]"
    assert f["severity"] == "error"


def test_yaml_output_matches_json(kai) -> None:
    import yaml

    as_json = kai("review", DRAFT, "-o", "json").json()
    as_yaml = yaml.safe_load(kai("review", DRAFT, "-o", "yaml").out)
    assert as_yaml == as_json


def test_human_table_groups_by_object_and_summarises(kai) -> None:
    r = kai("review", DRAFT)
    assert r.code == 1
    assert "Deployment/agent" in r.out and "Service/agent" in r.out
    assert "KAI-SEC-001" in r.out
    assert r.out.strip().splitlines()[-1].startswith("FAIL 3 objects")


def test_explain_teaches(kai) -> None:
    r = kai("review", DRAFT, "--explain")
    assert "Why it matters" in r.out and "How to fix" in r.out
    assert "https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/" in r.out
    assert "runAsNonRoot: true" in r.out  # the concrete YAML snippet


def test_fail_on_threshold(kai, tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    # Only an info-level finding remains once the error-level rules are disabled.
    args = ["review", str(f), "--disable", "all", "--enable", "KAI-RES-002"]
    f.write_text(POD_AS_ROOT)
    assert kai(*args).code == 0
    assert kai(*args, "--fail-on", "info").code == 1
    assert kai(*args, "--fail-on", "warning").code == 0


def test_stdin(kai) -> None:
    r = kai("review", "-", "-o", "json", stdin=POD_AS_ROOT)
    data = r.json()
    assert r.code == 1
    assert any(f["rule"] == "KAI-SEC-001" and f["file"] == "-" for f in data["findings"])


def test_suppression_is_reported_not_dropped(kai) -> None:
    text = POD_AS_ROOT.replace(
        "annotations: {}",
        'annotations: {kai.dev/ignore: "KAI-SEC-001, KAI-NET-001", kai.dev/ignore-reason: "legacy image, ticket OPS-12"}',
    )
    data = kai("review", "-", "-o", "json", stdin=text).json()
    sec = [f for f in data["findings"] if f["rule"] == "KAI-SEC-001"]
    assert sec and all(f["suppressed"] for f in sec)
    assert sec[0]["suppression_reason"] == "legacy image, ticket OPS-12"
    assert data["summary"]["suppressed"] >= 2
    human = kai("review", "-", stdin=text).out
    assert "suppressed" in human and "legacy image" in human
    hidden = kai("review", "-", "--hide-suppressed", stdin=text).out
    assert "legacy image" not in hidden


def test_per_rule_ignore_annotation(kai) -> None:
    text = POD_AS_ROOT.replace(
        "annotations: {}", 'annotations: {ignore.kai.dev/KAI-SEC-001: "runs as root by design"}'
    )
    data = kai("review", "-", "-o", "json", stdin=text).json()
    sec = next(f for f in data["findings"] if f["rule"] == "KAI-SEC-001")
    assert sec["suppressed"] and sec["suppression_reason"] == "runs as root by design"


def test_missing_file_is_one_line_exit_2(kai) -> None:
    r = kai("review", "nope.yaml")
    assert r.code == 2
    assert r.err.strip().count("\n") == 0 and "no such file" in r.err
    assert "Traceback" not in r.err


def test_malformed_yaml_exit_2(kai, tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("kind: Pod\nmetadata: {name: [x\n")
    r = kai("review", str(f))
    assert r.code == 2
    assert f"{f}:" in r.err and "invalid YAML" in r.err


def test_unknown_rule_is_a_usage_error(kai) -> None:
    r = kai("review", HARDENED, "--disable", "KAI-NOPE-999")
    assert r.code == 2 and "unknown rule" in r.err


def test_bad_option_value_exit_2(kai) -> None:
    assert kai("review", HARDENED, "--fail-on", "fatal").code == 2


def test_project_config(kai, tmp_path: Path) -> None:
    (tmp_path / ".kai.yaml").write_text("review:\n  disable: [KAI-SEC-001]\n  fail_on: warning\n")
    data = kai("review", "-", "-o", "json", stdin=POD_AS_ROOT).json()
    assert not any(f["rule"] == "KAI-SEC-001" for f in data["findings"])
    assert data["summary"]["fail_on"] == "warning"


def test_bad_project_config(kai, tmp_path: Path) -> None:
    (tmp_path / ".kai.yaml").write_text("review:\n  fail_on: sometimes\n")
    r = kai("review", HARDENED)
    assert r.code == 2 and ".kai.yaml" in r.err and "fail_on" in r.err


def test_user_policies_dir(kai, tmp_path: Path) -> None:
    rules = tmp_path / "team-rules"
    rules.mkdir()
    (rules / "team-001.yaml").write_text(
        """\
id: TEAM-001
title: Images come from the team registry
severity: error
category: images
rationale: Only images from our registry are scanned and signed.
remediation: Push the image to registry.acme.dev and reference it from there.
cel:
  scope: container
  expression: container.image.startsWith('registry.acme.dev/')
  message: "container {container} uses {image}, not from registry.acme.dev"
"""
    )
    data = kai("review", "-", "-o", "json", "--policies", str(rules), stdin=POD_AS_ROOT).json()
    team = [f for f in data["findings"] if f["rule"] == "TEAM-001"]
    assert team and team[0]["message"] == "container c uses nginx:1.27, not from registry.acme.dev"
    listed = kai("policies", "list", "-o", "json", "--policies", str(rules)).json()
    assert any(r["id"] == "TEAM-001" for r in listed["rules"])


def test_broken_user_rule_is_a_clear_error(kai, tmp_path: Path) -> None:
    rules = tmp_path / "r"
    rules.mkdir()
    (rules / "x.yaml").write_text(
        "id: X-1\ntitle: t\nseverity: error\ncategory: c\nrationale: r\nremediation: r\ncel:\n  expression: 'object.('\n"
    )
    r = kai("review", HARDENED, "--policies", str(rules))
    assert r.code == 2 and "CEL does not compile" in r.err and "x.yaml" in r.err


def test_policies_list_json_shape(kai) -> None:
    data = kai("policies", "list", "-o", "json").json()
    assert data["version"] == 1
    rule = next(r for r in data["rules"] if r["id"] == "KAI-RES-001")
    assert {
        "id",
        "title",
        "severity",
        "category",
        "rationale",
        "remediation",
        "references",
        "equivalents",
    } <= set(rule)
    assert rule["equivalents"]["checkov"] == ["CKV_K8S_10", "CKV_K8S_12", "CKV_K8S_13"]
    assert set(rule["equivalents"]) <= {"kube-linter", "kube-score", "polaris", "checkov", "pss"}


def test_policies_list_table_and_show(kai) -> None:
    r = kai("policies", "list")
    assert r.code == 0 and "KAI-NET-001" in r.out and "kube-linter" in r.out
    r = kai("policies", "show", "kai-sec-001")
    assert r.code == 0
    assert "Why it matters" in r.out and "restricted: Running as Non-root" in r.out
    assert kai("policies", "show", "NOPE").code == 2


def test_version_and_help(kai) -> None:
    assert kai("--version").out.startswith("kai ")
    r = kai("--help")
    assert r.code == 0 and "review" in r.out and "policies" in r.out


def _launch(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    import subprocess
    import sys

    from conftest import ROOT

    proc = subprocess.run(
        [sys.executable, "-m", "kai", *args], capture_output=True, text=True, cwd=ROOT, env=env
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_kai_help_from_the_cache_is_the_full_help(tmp_path: Path) -> None:
    import os

    from typer.main import get_command

    from kai.cli import app

    env = {**os.environ, "KAI_CACHE_DIR": str(tmp_path), "COLUMNS": "200"}
    full = _launch("--help", env={**env, "KAI_NO_CACHE": "1"})
    rendered = _launch("-h", env=env)  # renders and stores it
    assert (tmp_path / "help-v1.txt").is_file()
    cached = _launch("--help", env=env)
    assert full == rendered == cached and full[0] == 0
    commands = get_command(app).commands  # type: ignore[attr-defined]
    listed = {c.name for c in commands.values() if not c.hidden}
    assert len(listed) >= 15
    for name in listed:  # every command with the first words of its one-line help
        short = commands[name].get_short_help_str(40).rstrip(".")
        assert f"  {name} " in cached[1] and short.split()[0] in cached[1], name
    narrow = _launch("--help", env={**env, "COLUMNS": "60"})  # another width: rendered again
    assert narrow[0] == 0 and narrow[1] != cached[1]
    assert max(len(line) for line in narrow[1].splitlines()) <= 60


def test_internal_errors_are_one_line_not_tracebacks(kai, monkeypatch) -> None:
    from kai import render

    def boom(*_a: object, **_k: object) -> None:
        raise ZeroDivisionError("bad math")

    monkeypatch.setattr(render, "report_data", boom)
    r = kai("review", HARDENED, "-o", "json")
    assert r.code == 70
    assert "internal error: ZeroDivisionError: bad math" in r.err and "Traceback" not in r.err


def test_kubectl_plugin_entry_point_is_declared() -> None:
    import tomllib

    from conftest import ROOT

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    # the launcher answers a cached `kai --help` and hands everything else to kai.cli.main
    assert scripts["kubectl-kai"] == scripts["kai"] == "kai.__main__:main"

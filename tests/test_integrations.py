"""The hooks and integrations, run as their hosts run them: pre-commit against a scratch repository,
the GitHub Action's shell steps with the runner's environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLES, ROOT

ROOT_POD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: c\n      image: nginx:1.27\n"


def _kai_on_path(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "kai"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m kai "$@"\n')
    wrapper.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of kai (pre-commit installs hooks from a repo)")
    return tmp_path_factory.mktemp("pre-commit-home")


def _try_repo(repo: Path, home: Path, hook: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), hook, "--all-files"],
        cwd=repo,
        env={**os.environ, "PRE_COMMIT_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_pre_commit_hooks_review_and_fix_a_scratch_repository(
    tmp_path: Path, pre_commit_home: Path
) -> None:
    repo = tmp_path / "repo"
    (repo / "deploy").mkdir(parents=True)
    shutil.copytree(EXAMPLES / "agent-hardened", repo / "deploy" / "ok")
    (repo / "ci.yml").write_text("on: push\njobs: {}\n")  # YAML that is not Kubernetes
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "init")

    clean = _try_repo(repo, pre_commit_home, "kai-review")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "kai review" in clean.stdout and "Passed" in clean.stdout

    (repo / "deploy" / "pod.yaml").write_text(ROOT_POD)
    _git(repo, "add", ".")
    failing = _try_repo(repo, pre_commit_home, "kai-review")
    assert failing.returncode == 1
    assert "Failed" in failing.stdout and "KAI-SEC-001" in failing.stdout
    assert "deploy/pod.yaml:1:1: error" in failing.stdout

    fixed = _try_repo(repo, pre_commit_home, "kai-fix")
    assert fixed.returncode == 1  # pre-commit fails a hook that modified files, as it should
    assert "runAsNonRoot: true" in (repo / "deploy" / "pod.yaml").read_text()


def _action_step(name: str) -> dict[str, object]:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    return next(s for s in action["runs"]["steps"] if s.get("name") == name)


def test_action_never_splices_inputs_into_scripts() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    for step in action["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step["name"]


@pytest.mark.parametrize(("pod", "code"), [(ROOT_POD, 1), (None, 0)])
def test_action_review_step_annotates_and_writes_sarif(
    tmp_path: Path, pod: str | None, code: int
) -> None:
    step = _action_step("kai review")
    work = tmp_path / "work"
    shutil.copytree(EXAMPLES / "agent-hardened", work / "deploy")
    if pod:
        (work / "deploy" / "pod with space.yaml").write_text(pod)
    output = tmp_path / "github_output"
    env = {
        **_kai_on_path(tmp_path),
        "GITHUB_OUTPUT": str(output),
        "KAI_PATHS": "deploy",
        "KAI_ARGS": "--disable KAI-IMG-003",
        "KAI_FAIL_ON": "error",
        "KAI_SARIF": "kai.sarif",
    }
    run = subprocess.run(
        ["bash", "-e", "-c", str(step["run"])],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == code, run.stdout + run.stderr
    assert f"exit-code={code}" in output.read_text()
    sarif = json.loads((work / "kai.sarif").read_text())
    results = sarif["runs"][0]["results"]
    annotations = [line for line in run.stdout.splitlines() if line.startswith("::error ")]
    if pod:
        assert annotations and all("file=deploy/pod with space.yaml" in a for a in annotations)
        assert any(r["ruleId"] == "KAI-SEC-001" for r in results)
    else:
        assert annotations == [] and results == []

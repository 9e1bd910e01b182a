"""The built wheel ships policies/, prompts/ and agent/, and an installed kai finds every rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    return next(out.glob("kai-*.whl"))


def _installed(wheel: Path, tmp_path: Path) -> Path:
    """The wheel installed alone into a folder of its own (put it on PYTHONPATH to use it)."""
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return site


def test_wheel_ships_the_knowledge_folders(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    repo_rules = sorted(p.name for p in (ROOT / "policies").glob("*.yaml"))
    shipped = sorted(
        Path(n).name for n in names if n.startswith("kai/_data/policies/") and n.count("/") == 3
    )
    assert shipped == repo_rules
    assert any(n.startswith("kai/_data/policies/tests/") for n in names)
    for folder in ("prompts", "agent"):
        assert any(n.startswith(f"kai/_data/{folder}/") for n in names), folder


def test_installed_kai_finds_every_rule_from_another_directory(wheel: Path, tmp_path: Path) -> None:
    site = _installed(wheel, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    listed = subprocess.run(
        [sys.executable, "-m", "kai", "policies", "list", "-o", "json"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rules = json.loads(listed.stdout)["rules"]
    assert len(rules) == len(list((ROOT / "policies").glob("*.yaml")))
    assert all(r["source"].startswith(str(site)) for r in rules), (
        "rules must come from the installed copy"
    )
    review = subprocess.run(
        [sys.executable, "-m", "kai", "review", str(EXAMPLES / "agent-hardened")],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert review.returncode == 0, review.stdout + review.stderr


def test_wheel_ships_the_eval_tasks(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(Path(n).name for n in names if n.startswith("kai/_data/tasks/"))
    assert shipped == sorted(p.name for p in (EXAMPLES / "tasks").glob("*.yaml"))


def test_installed_kai_eval_finds_its_tasks(wheel: Path, tmp_path: Path) -> None:
    site = _installed(wheel, tmp_path)
    code = (
        "from kai.resources import data_dir; from kai.evaluation import load_tasks; "
        "d = data_dir('tasks'); print(d, len(load_tasks(d)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0].startswith(str(site)) and int(out[1]) == len(
        list((EXAMPLES / "tasks").glob("*.yaml"))
    )


@pytest.mark.parametrize(
    ("args", "module", "extra"),
    [
        (("mcp",), "mcp", "mcp"),
        (("apply", str(EXAMPLES / "agent-hardened"), "--yes"), "kubernetes", "cluster"),
        (("review", "--cluster", "-n", "agents"), "kubernetes", "cluster"),
    ],
)
def test_a_missing_extra_is_named(kai, monkeypatch, args, module: str, extra: str) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def without(name: str, *a: object, **k: object):
        return None if name == module else real(name, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", without)
    r = kai(*args)
    assert r.code == 2, r.err
    assert f"pip install 'kai[{extra}]'" in r.err and len(r.err.strip().splitlines()) == 1

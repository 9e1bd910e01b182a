"""Shared helpers: run kai's CLI in-process and capture what a person would see."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import vcr
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# The suite is a landing gate, so its property tests draw the same examples on every machine and
# every run (a clean clone has no example database to replay). Exploring new draws is a separate,
# deliberate run: `pytest --hypothesis-profile=fuzz tests/test_properties.py ...` (CONTRIBUTING.md);
# what it finds becomes a fixture or an explicit @example, never a flaky gate.
settings.register_profile("gate", derandomize=True, database=None)
settings.register_profile("fuzz", derandomize=False)
settings.load_profile("gate")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def kai(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Run `kai ARGS...` in-process; returns exit code, stdout and stderr.

    Runs from an empty directory with no user config, so no .kai.yaml leaks in.
    """
    from kai.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / ".cache"))
    monkeypatch.setenv("COLUMNS", "200")
    for var in ("KAI_FAIL_ON", "KAI_NAMESPACE", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)

    def run(*args: str, stdin: str | None = None) -> Result:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


BIN = Path(__file__).parent / "bin"


def json_body(r1: Any, r2: Any) -> None:
    """vcrpy matcher: the request bodies are the same JSON (key order and spacing aside), so a
    prompt or wire-format change without rebuilding or re-recording the cassette fails."""
    assert json.loads(r1.body or b"null") == json.loads(r2.body or b"null"), "request bodies differ"


def model_tapes(match_body: bool = True, **options: Any) -> vcr.VCR:
    """Model exchanges: replay only (record mode none), secrets filtered, and the request bodies
    must match what the cassette holds: every model cassette, authored or recorded, holds the
    bodies kai sends today, so a prompt edit without rebuilding (tests/cassettes/build*.py) or
    re-recording (record_model.py) fails. match_body=False exists only for the test that shows
    the difference."""
    v = vcr.VCR(
        cassette_library_dir=str(Path(__file__).parent / "cassettes"),
        record_mode="none",
        match_on=["method", "scheme", "host", "port", "path", *(["json_body"] * match_body)],
        **{"filter_headers": ["authorization", "x-api-key"], **options},
    )
    v.register_matcher("json_body", json_body)
    return v


class FakeKubectl:
    """Writes the scenario the stand-in replays and reads back the argv lists it received."""

    def __init__(self, tmp: Path) -> None:
        self.scenario = tmp / "scenario.json"
        self.log = tmp / "kubectl.log"
        self.responses: list[dict[str, Any]] = []
        self.save()

    def on(self, argv: list[str], stdout: str = "", stderr: str = "", code: int = 0) -> None:
        self.responses.append({"argv": argv, "stdout": stdout, "stderr": stderr, "code": code})
        self.save()

    def save(self) -> None:
        self.scenario.write_text(json.dumps({"responses": self.responses}), encoding="utf-8")

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKubectl:
    fake = FakeKubectl(tmp_path)
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KAI_FAKE_KUBECTL_SCENARIO", str(fake.scenario))
    monkeypatch.setenv("KAI_FAKE_KUBECTL_LOG", str(fake.log))
    monkeypatch.setenv("KUBECONFIG", str(ROOT / "tests" / "data" / "kubeconfig.yaml"))
    monkeypatch.delenv("KAI_KUBECTL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-0000000000")
    return fake


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Make stdin a terminal that answers with the given lines."""

    def answer(text: str) -> None:
        stdin = io.StringIO(text)
        stdin.isatty = lambda: True  # type: ignore[method-assign]
        monkeypatch.setattr(sys, "stdin", stdin)

    return answer


@pytest.fixture
def sent_bodies(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every request body kai sends to a model API in this test, as the API receives it (the
    cassette only holds what was recorded; this is what kai really sent)."""
    import urllib.request

    bodies: list[dict[str, Any]] = []
    real = urllib.request.urlopen

    def spy(request: Any, timeout: float | None = None) -> Any:
        bodies.append(json.loads(request.data))
        return real(request, timeout=timeout)

    monkeypatch.setattr(urllib.request, "urlopen", spy)
    return bodies

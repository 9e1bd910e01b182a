"""`kai eval --repeat K`: answers vary between runs, so K runs give pass@1 and pass^K."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kai.evaluation import TaskResult, repeated

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_pass_at_1_and_pass_hat_k() -> None:
    runs = [
        [TaskResult("a", True), TaskResult("b", True), TaskResult("c", False)],
        [TaskResult("a", True), TaskResult("b", False), TaskResult("c", False)],
        [TaskResult("a", True), TaskResult("b", True), TaskResult("c", False)],
    ]
    s = repeated(runs)
    assert s.repeat == 3 and s.passes == {"a": 3, "b": 2, "c": 0}
    assert s.pass_at_1 == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert s.pass_hat_k == pytest.approx(1 / 3)  # only a passed every time
    one = repeated(runs[:1])
    assert one.pass_at_1 == one.pass_hat_k == pytest.approx(2 / 3)  # K=1: both are the pass rate


def test_eval_repeat_runs_every_task_k_times(kai, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_run_eval(selected: Any, run: Any, context: Any = None) -> list[TaskResult]:
        n = len(calls)
        calls.append([t.id for t in selected])
        # the first task always passes, the second only in the first run
        return [TaskResult(t.id, i == 0 or (i == 1 and n == 0)) for i, t in enumerate(selected)]

    monkeypatch.setattr("kai.evaluation.run_eval", fake_run_eval)
    only = ["--only", "01-agent-ingress", "--only", "02-nginx-internal"]
    args = ["eval", "--tasks", str(EXAMPLES / "tasks"), "-m", "openai/gpt-4.1-mini", *only]
    r = kai(*args, "--repeat", "3", "-o", "json")
    assert len(calls) == 3 and all(c == ["01-agent-ingress", "02-nginx-internal"] for c in calls)
    data = r.json()
    assert r.code == 1  # not every run passed
    assert data["repeat"]["repeat"] == 3
    assert data["repeat"]["passes"] == {"01-agent-ingress": 3, "02-nginx-internal": 1}
    assert data["repeat"]["pass_at_1"] == pytest.approx((1 + 1 / 3) / 2)
    assert data["repeat"]["pass_hat_k"] == pytest.approx(0.5)
    assert [x["run"] for x in data["results"]] == [1, 1, 2, 2, 3, 3]

    calls.clear()
    table = kai(*args, "--repeat", "2")
    assert len(calls) == 2
    assert "2 tasks x 2 runs: pass@1 0.75, pass^2 0.50" in table.out
    assert "02-nginx-internal 1/2" in table.out


def test_repeat_must_be_positive(kai) -> None:
    r = kai("eval", "--tasks", str(EXAMPLES / "tasks"), "-m", "openai/x", "--repeat", "0")
    assert r.code == 2

"""kai eval keeps going: one task's model error or internal error is that task's failure, never a
crashed run (exit 70) that loses the results gathered. The model is a loopback stand-in whose
answers are authored here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llm_stand_in import Server, answer, serving


@pytest.fixture
def server() -> Iterator[Server]:
    yield from serving()


def _deployment(name: str, container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
            **spec,
        },
    }


ANSWERS = {
    # a scalar where a list belongs: kai's fixer raised TypeError here (exit 70)
    "scalar-ports": [_deployment("a", {"name": "a", "image": "ghcr.io/acme/a:1.0", "ports": 8080})],
    "scalar-service-ports": [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b"}, "spec": {"ports": 80}}
    ],
    "scalar-spec": [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "c"}, "spec": "x"}
    ],
    "fine": [_deployment("d", {"name": "d", "image": "ghcr.io/acme/d:1.0"})],
}


def _tasks(tmp_path: Path) -> Path:
    folder = tmp_path / "tasks"
    folder.mkdir()
    for i, task in enumerate(ANSWERS):
        (folder / f"{i:02d}-{task}.yaml").write_text(
            json.dumps({"id": task, "request": f"task {task}", "expect": {"kinds": ["Deployment"]}})
        )
    return folder


def _respond(body: Any) -> tuple[int, Any]:
    text = json.dumps(body["messages"])
    for task, objects in ANSWERS.items():
        if f"task {task}" in text:
            return 200, answer(json.dumps({"objects": objects, "rationale": "r", "questions": []}))
    return 500, {"error": "unknown task"}


def test_scalars_where_lists_belong_fail_their_task_not_the_run(
    kai, server: Server, tmp_path: Path
) -> None:
    server.responder = _respond
    r = kai(
        "eval", "--tasks", str(_tasks(tmp_path)), "--model", "local", "--api-base", server.base,
        "--timeout", "5", "--max-tokens", "900", "-o", "json",
    )  # fmt: skip
    assert r.code == 1, r.err  # some tasks fail; none crashes the run
    results = {x["id"]: x for x in r.json()["results"]}
    assert set(results) == set(ANSWERS)  # every task has its result
    assert not results["scalar-ports"]["passed"] and results["scalar-ports"]["model_calls"] >= 1
    assert not any("internal error" in f for x in results.values() for f in x["failures"])
    assert all(b["max_tokens"] <= 900 for b in server.posts())


def test_an_internal_error_in_one_task_keeps_the_others(
    kai, server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kai import evaluation

    real = evaluation.check

    def broken(task: Any, result: Any) -> list[str]:
        if task.id == "scalar-spec":
            raise RuntimeError("a bug in kai")
        return real(task, result)

    monkeypatch.setattr(evaluation, "check", broken)
    server.responder = _respond
    r = kai(
        "eval",
        "--tasks",
        str(_tasks(tmp_path)),
        "--model",
        "local",
        "--api-base",
        server.base,
        "-o",
        "json",
    )
    assert r.code == 1
    results = {x["id"]: x for x in r.json()["results"]}
    assert results["scalar-spec"]["failures"] == ["internal error: RuntimeError: a bug in kai"]
    assert list(results) == list(ANSWERS)  # the tasks after it still ran


def test_a_model_timeout_is_that_tasks_failure(kai, server: Server, tmp_path: Path) -> None:
    server.responder = lambda body: (
        (503, {"error": {"code": 503, "message": "Loading model"}})
        if "task fine" in json.dumps(body)
        else _respond(body)
    )
    r = kai(
        "eval",
        "--tasks",
        str(_tasks(tmp_path)),
        "--model",
        "local",
        "--api-base",
        server.base,
        "-o",
        "json",
    )
    results = {x["id"]: x for x in r.json()["results"]}
    assert r.code == 1 and set(results) == set(ANSWERS)
    assert "503" in results["fine"]["failures"][0] and results["fine"]["model_calls"] == 0

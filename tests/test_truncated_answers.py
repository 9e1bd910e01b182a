"""Answers a real small model gave (benchmarks/eval_local.py, Qwen2.5-Coder-1.5B): cut off at the
max_tokens bound, and repair answers with no plan in them. The exchanges here are authored (written
by hand to stage each case), not recorded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kai.config import Config
from kai.errors import ModelError
from kai.generate import generate
from kai.model import client as client_module
from kai.model.client import LLM, Completion, Settings, Usage
from kai.policy.catalog import load_rules

RULES = load_rules()
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:latest"}]},
        },
    },
}


class Authored:
    """Stands in for the model: the answers given, in order (text, cut off at max_tokens?)."""

    def __init__(self, *answers: tuple[str, bool]) -> None:
        self.settings = Settings(model="authored", max_tokens=2000)
        self.answers = list(answers)
        self.calls = self.retries = self.prompt_tokens = self.completion_tokens = 0
        self.cost_usd: float | None = 0.0

    def complete(self, messages: Any, schema: Any = None) -> Completion:
        text, truncated = self.answers.pop(0)
        self.calls += 1
        return Completion(text, "authored", Usage(), truncated=truncated)


def _plan(*objects: dict[str, Any]) -> str:
    return json.dumps({"objects": list(objects), "rationale": "r", "questions": []})


def test_an_answer_cut_off_at_max_tokens_says_so_and_is_not_retried() -> None:
    llm = Authored((_plan(DEPLOYMENT)[:300], True))
    with pytest.raises(ModelError, match=r"max_tokens bound \(2000 tokens\).*--max-tokens"):
        generate("deploy web", llm.settings, RULES, Config(), llm=llm)  # type: ignore[arg-type]
    assert llm.calls == 1  # no corrective retry: the bound is what to change


def test_an_unreadable_answer_not_cut_off_still_gets_its_retry() -> None:
    llm = Authored(("I cannot help with that", False), (_plan(DEPLOYMENT), False), (_plan(), False))
    result = generate("deploy web", llm.settings, RULES, Config(), llm=llm, max_rounds=1)  # type: ignore[arg-type]
    assert llm.calls == 2 and "kind: Deployment" in result.yaml


def test_an_unusable_repair_answer_keeps_the_judged_result_and_its_findings() -> None:
    """Round 1's fixed plan and findings stand (a FAIL, saved as it is), rather than exit 3 with
    nothing: the model's first answer was readable and kai judged it."""
    llm = Authored(
        (_plan(DEPLOYMENT), False),
        ('{"objects": []', True),  # the repair answer, cut off
    )
    result = generate("deploy web", llm.settings, RULES, Config(), llm=llm)  # type: ignore[arg-type]
    assert llm.calls == 2
    assert "round 2's repair answer was unusable" in result.stopped_because
    assert "max_tokens" in result.stopped_because
    assert "KAI-IMG-001" in {f.rule for f in result.failing}
    assert "kind: Deployment" in result.yaml and "nginx:latest" in result.yaml
    assert len(result.rounds) == 1


@pytest.mark.parametrize(
    ("payload", "truncated"),
    [
        ({"choices": [{"message": {"content": "{"}, "finish_reason": "length"}]}, True),
        ({"choices": [{"message": {"content": "{}"}, "finish_reason": "stop"}]}, False),
    ],
)
def test_the_openai_wire_reports_an_answer_cut_off(
    monkeypatch: pytest.MonkeyPatch, payload: dict[str, Any], truncated: bool
) -> None:
    monkeypatch.setattr(client_module, "_post", lambda *_a: (200, {}, payload))
    llm = LLM(Settings(model="openai/local", api_base="http://127.0.0.1:9/v1", cache=False))
    monkeypatch.setattr(client_module, "server_context", lambda _base: None)
    assert llm.complete([{"role": "user", "content": "hi"}]).truncated is truncated


@pytest.mark.parametrize(("stop", "truncated"), [("max_tokens", True), ("end_turn", False)])
def test_the_anthropic_wire_reports_an_answer_cut_off(
    monkeypatch: pytest.MonkeyPatch, stop: str, truncated: bool
) -> None:
    payload = {"content": [{"type": "text", "text": "{"}], "stop_reason": stop}
    monkeypatch.setattr(client_module, "_post", lambda *_a: (200, {}, payload))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key-000000")
    llm = LLM(Settings(model="anthropic/claude-sonnet-4-5", cache=False))
    assert llm.complete([{"role": "user", "content": "hi"}]).truncated is truncated


def test_kai_generate_exits_1_and_says_why_when_the_repair_answer_is_unusable(
    kai: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """From the command line: round 1's judged FAIL is reported (exit 1, not 0 and not 3), the
    reason the loop stopped is printed, and the file named by -o holds round 1's plan."""
    answers = [
        {"choices": [{"message": {"content": _plan(DEPLOYMENT)}, "finish_reason": "stop"}]},
        {"choices": [{"message": {"content": '{"objects": ['}, "finish_reason": "length"}]},
    ]
    sent: list[dict[str, Any]] = []

    def post(_url: str, _headers: Any, body: dict[str, Any], _timeout: float) -> Any:
        sent.append(body)
        return 200, {}, answers.pop(0)

    monkeypatch.setattr(client_module, "_post", post)
    monkeypatch.setattr(client_module, "server_context", lambda _base: None)
    r = kai(
        "generate", "deploy web", "--model", "openai/local", "--api-base",
        "http://127.0.0.1:9/v1", "--no-cache", "-o", "web.yaml",
    )  # fmt: skip
    assert r.code == 1, r.out + r.err
    assert len(sent) == 2 and answers == []
    assert "round 2's repair answer was unusable" in r.out + r.err
    assert "KAI-IMG-001" in r.out
    saved = (tmp_path / "web.yaml").read_text()
    assert "kind: Deployment" in saved and "nginx:latest" in saved

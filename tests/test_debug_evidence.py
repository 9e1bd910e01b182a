"""kai debug with small local models (issue 14): a tool call written as JSON in the answer's text
is a tool call, shown in the transcript; every quoted piece of evidence is checked against what
the tools returned; with no tool call the diagnosis says so and claims no confidence. The model
answers here are authored."""

from __future__ import annotations

import json
from typing import Any

from conftest import FakeKubectl

from kai.model.client import Completion, Settings, Usage
from kai.ops.debug import Investigator, diagnose, text_tool_calls
from kai.ops.runner import Kubectl

PODS = "NAME                    READY   STATUS             RESTARTS\nagent-7d9c6-x2x9z   0/1     CrashLoopBackOff   5\n"
KNOWN = {"get", "describe", "logs", "events", "top", "evaluate"}


class Authored:
    def __init__(self, answers: list[str]) -> None:
        self.settings = Settings(model="authored")
        self.answers = answers
        self.sent: list[Any] = []
        self.calls = self.retries = self.prompt_tokens = self.completion_tokens = 0
        self.cost_usd: float | None = 0.0

    def complete(self, messages: Any, schema: Any = None, tools: Any = None) -> Completion:
        self.sent.append(json.loads(json.dumps(messages)))
        self.calls += 1
        return Completion(self.answers[self.calls - 1], "authored", Usage())


def _diagnosis(quotes: list[str], confidence: str = "high") -> str:
    return json.dumps(
        {
            "root_cause": "the pod crash-loops",
            "evidence": [{"source": "kubectl get pods", "quote": q} for q in quotes],
            "confidence": confidence,
        }
    )


def _investigator(kubectl: FakeKubectl) -> Investigator:
    kubectl.on(["get", "pods", "-o", "wide", "-n", "agents"], stdout=PODS)
    return Investigator(Kubectl("kubectl", None, None, "agents", 10.0), "agents", None, [])


def test_fenced_and_bare_json_tool_calls_are_read() -> None:
    fenced = 'I will look.\n```json\n{"name": "get", "arguments": {"resource": "pods"}}\n```'
    bare = (
        '{"name": "logs", "arguments": "{\\"pod\\": \\"p\\"}"} and {"name": "rm", "arguments": {}}'
    )
    assert [(c.name, c.arguments) for c in text_tool_calls(fenced, KNOWN)] == [
        ("get", {"resource": "pods"})
    ]
    assert [(c.name, c.arguments) for c in text_tool_calls(bare, KNOWN)] == [("logs", {"pod": "p"})]
    assert text_tool_calls('{"root_cause": "x"}', KNOWN) == []


def test_a_tool_call_in_the_text_runs_and_is_in_the_transcript(kubectl: FakeKubectl) -> None:
    llm = Authored(
        [
            '```json\n{"name": "get", "arguments": {"kind": "pods"}}\n```',
            _diagnosis(["CrashLoopBackOff", "OOMKilled at 512Mi"]),
        ]
    )
    d = diagnose(llm, "deploy/agent", _investigator(kubectl), "persona")  # type: ignore[arg-type]
    assert ["get", "pods", "-o", "wide", "-n", "agents"] in kubectl.calls()
    assert len(d.steps) == 1 and "JSON in the answer's text" in d.steps[0].note
    second = llm.sent[1]
    assert second[-2]["tool_calls"][0]["function"]["name"] == "get"  # the call, as a call
    assert second[-1]["role"] == "tool" and "CrashLoopBackOff" in second[-1]["content"]
    assert [e["verified"] for e in d.evidence] == ["yes", "no"]  # the OOM quote is made up
    assert d.confidence == "high"


def test_no_tool_call_means_no_confidence_and_unverified_evidence(kubectl: FakeKubectl) -> None:
    llm = Authored([_diagnosis(["CrashLoopBackOff"])])
    d = diagnose(llm, "deploy/agent", _investigator(kubectl), "persona")  # type: ignore[arg-type]
    assert d.steps == [] and d.evidence[0]["verified"] == "no"
    assert "high" not in d.confidence and "used no tools" in d.confidence


def test_cli_marks_unverified_quotes_and_says_no_tools_were_used(
    kai, kubectl: FakeKubectl, monkeypatch: Any
) -> None:
    from kai.model import client as llm_module

    monkeypatch.setattr(
        llm_module.LLM,
        "complete",
        lambda self, messages, schema=None, tools=None: Completion(
            _diagnosis(["the database is down"]), "authored", Usage()
        ),
    )
    r = kai("debug", "deploy/agent", "-n", "agents", "-m", "openai/gpt-4.1-mini")
    assert "unverified" in r.out and "used no tools" in r.out
    assert "Confidence: high" not in r.out

"""`kai debug`: a bounded read-only loop; cluster data is data; the fix goes through the gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import FakeKubectl, model_tapes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kai.model.client import ToolCall
from kai.ops.classify import classify
from kai.ops.debug import Investigator, tool_argv
from kai.ops.grammar import Kind
from kai.ops.runner import Kubectl

recorder = model_tapes()
DATA = Path(__file__).parent / "data" / "ops"
_KAI_FLAGS = {"-o", "--previous", "--for", "-c"} | {f"--tail={n}" for n in range(1, 201)}
POD = "agent-7d9c6b5f4-x2x9z"
MODEL = ["-m", "openai/gpt-4.1-mini"]


def load(k: FakeKubectl, name: str) -> None:
    k.responses = json.loads((DATA / f"{name}.kubectl.json").read_text())["responses"]
    k.save()


def test_diagnosis_quotes_evidence_and_gates_the_fix(
    kai, kubectl: FakeKubectl, sent_bodies
) -> None:
    load(kubectl, "openai_debug_crashloop")
    with recorder.use_cassette("openai_debug_crashloop.yaml") as tape:
        r = kai("debug", "deploy/agent", "-n", "agents", "--yes", *MODEL)
    assert r.code == 0, r.out + r.err
    assert tape.play_count == 3
    assert (
        "Root cause: The agent container exits at startup because OPENAI_API_KEY is not set"
        in r.out
    )
    assert "KeyError: 'OPENAI_API_KEY'" in r.out  # evidence, quoted
    assert tape.play_count == len(sent_bodies) == 3
    calls = kubectl.calls()
    assert calls[:3] == [
        ["get", "pods", "-o", "wide", "-n", "agents"],
        ["logs", POD, "--tail=50", "--previous", "-n", "agents"],
        ["events", "--for", f"pod/{POD}", "-n", "agents"],
    ]
    assert calls[3] == ["auth", "can-i", "patch", "deployment", "-n", "agents"]
    assert "--dry-run=server" in calls[4]
    patch = calls[-1]
    assert patch[:4] == ["patch", "deployment", "agent", "--type=strategic"]
    assert "--dry-run=server" not in patch
    assert json.loads(patch[5])["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"] == (
        "OPENAI_API_KEY"
    )
    # Tool results went back as tool messages (data), one per call, in order.
    last = sent_bodies[-1]["messages"]
    assert [m["role"] for m in last[1:]] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "tool",
    ]
    assert sent_bodies[0]["tool_choice"] == "auto"
    assert {t["function"]["name"] for t in sent_bodies[0]["tools"]} == {
        "get",
        "describe",
        "logs",
        "events",
        "top",
        "evaluate",
    }


def test_without_a_yes_the_fix_is_shown_not_run(kai, kubectl: FakeKubectl) -> None:
    load(kubectl, "openai_debug_crashloop")
    with recorder.use_cassette("openai_debug_crashloop.yaml"):
        r = kai("debug", "deploy/agent", "-n", "agents", *MODEL)
    assert r.code == 2
    assert "kubectl patch deployment agent --type=strategic -p" in r.out
    assert all(c[0] in ("get", "logs", "events") for c in kubectl.calls())


def test_a_log_line_cannot_make_kai_delete_anything(
    kai, kubectl: FakeKubectl, terminal, sent_bodies
) -> None:
    load(kubectl, "openai_debug_injection")
    with recorder.use_cassette("openai_debug_injection.yaml"):
        r = kai("debug", "deploy/agent", "-n", "agents", "--yes", *MODEL)
    assert r.code == 2
    assert not any("delete" in c for c in kubectl.calls())
    # the model's call to a tool that does not exist was answered with an error, not run
    third = sent_bodies[3]["messages"]
    tool_replies = [m["content"] for m in third if m["role"] == "tool"]
    assert any("unknown tool 'kubectl'" in t for t in tool_replies)
    assert "destructive" in r.out and "needs --yes --allow-destructive" in r.out
    # On a terminal, even with --yes, the namespace's name must be typed; a wrong word stops it.
    terminal("yes, delete it\n")
    with recorder.use_cassette("openai_debug_injection.yaml"):
        r = kai("debug", "deploy/agent", "-n", "agents", "--yes", *MODEL)
    assert r.code == 130
    assert ["delete", "namespace", "agents", "-n", "agents"] not in kubectl.calls()
    assert "it would affect 10 objects" in r.out  # the namespace and all 9 objects in it
    assert "  secret/agent-secrets\n" in r.out and "  configmap/kube-root-ca.crt\n" in r.out


def test_anonymize_sends_placeholders_and_shows_real_names(
    kai, kubectl: FakeKubectl, monkeypatch, sent_bodies
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key-000000")
    load(kubectl, "anthropic_debug_anonymized")
    with recorder.use_cassette("anthropic_debug_anonymized.yaml"):
        r = kai(
            "debug",
            "deploy/agent",
            "-n",
            "agents",
            "--anonymize",
            "--yes",
            "-m",
            "anthropic/claude-sonnet-4-5",
        )
    assert r.code == 0, r.out + r.err
    assert len(sent_bodies) == 3
    text = json.dumps(sent_bodies)
    for real in (
        POD,
        "10.244.1.17",
        "node-1",
        "ghcr.io/acme/agent:1.4.0",
        "deploy/agent",
        "ns agents",
    ):
        assert real not in text, real
    assert "obj-2" in text and "ip-1" in text and "img-1" in text
    assert sent_bodies[1]["messages"][2]["content"][0]["type"] == "tool_result"  # Anthropic's shape
    # What the person sees has the real names back, and the fix targets the real object.
    assert "kubectl patch deployment agent" in r.out
    assert "Back-off restarting failed container agent" in r.out
    assert kubectl.calls()[1] == ["logs", POD, "--tail=50", "--previous", "-n", "agents"]
    assert kubectl.calls()[-1][:3] == ["patch", "deployment", "agent"]


def test_the_step_budget_is_enforced(kai, kubectl: FakeKubectl, sent_bodies) -> None:
    load(kubectl, "openai_debug_crashloop")
    # The one replay without body matching: the system prompt names the budget (1 here, 8 in
    # the cassette); the crashloop cassette's bodies are matched by the tests above, and what
    # kai sends under the budget is asserted below from the bodies it really sent.
    with model_tapes(match_body=False).use_cassette("openai_debug_crashloop.yaml"):
        r = kai("debug", "deploy/agent", "-n", "agents", "--max-steps", "1", *MODEL)
    assert len(kubectl.calls()) == 1  # one tool call, then the model had to answer
    assert sent_bodies[1]["tool_choice"] == "none" and len(sent_bodies) == 2
    assert "at most 1 tool calls" in json.dumps(sent_bodies[0])  # the budget the model was told
    assert r.code == 3 and "could not be read" in r.err


def test_a_target_must_be_kind_slash_name(kai) -> None:
    r = kai("debug", "agent")
    assert r.code == 2 and "KIND/NAME" in r.err


def test_secrets_are_never_read() -> None:
    assert (
        tool_argv(ToolCall("1", "get", {"kind": "secret", "name": "db"}))
        == "Secrets are never read"
    )
    assert tool_argv(ToolCall("1", "describe", {"kind": "Secrets", "name": "db"})) == (
        "Secrets are never read"
    )
    kubectl = Kubectl("/nonexistent/kubectl")
    inv = Investigator(kubectl, "agents")
    assert inv.run(ToolCall("1", "evaluate", {"kind": "secret", "name": "db"})).startswith("error")
    assert kubectl.ran == []


# The first st.text() draw builds Hypothesis's Unicode character cache, which takes seconds on a
# loaded machine: that is the strategy warming up, not the code under test, so neither the
# too_slow health check nor the per-example deadline may fail the test for it. The property and
# the number of examples are unchanged.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(
        ["get", "describe", "logs", "events", "top", "evaluate", "exec", "delete"]
    ),
    args=st.dictionaries(
        st.sampled_from(["kind", "name", "pod", "container", "for", "output", "tail", "previous"]),
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(["pods; rm -rf /", "--as=admin", "-A", "--all", "$(id)", "ns", "-f"]),
            st.integers(),
            st.booleans(),
        ),
    ),
)
def test_no_tool_call_becomes_anything_but_a_read(name: str, args: dict[str, Any]) -> None:
    kubectl = Kubectl("/nonexistent/kubectl")
    built = tool_argv(ToolCall("1", name, args))
    if isinstance(built, list):
        assert not any(a.startswith("-") for a in built if a not in _KAI_FLAGS), built
        verdict = classify(built, "agents")
        if verdict.kind is not Kind.read:
            # the investigator refuses it before kubectl is ever run
            assert (
                Investigator(kubectl, "agents").run(ToolCall("1", name, args)).startswith("error")
            )
            assert kubectl.ran == []


def test_evaluate_runs_kais_rules_on_the_live_object(kubectl: FakeKubectl) -> None:
    from kai.policy.catalog import load_rules

    live = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "agent", "namespace": "agents", "resourceVersion": "4711"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {
                    "containers": [
                        {
                            "name": "agent",
                            "image": "ghcr.io/acme/agent:latest",
                            "env": [
                                {"name": "OPENAI_API_KEY", "value": "sk-proj-abcdefghijklmnop1234"}
                            ],
                        }
                    ]
                },
            },
        },
        "status": {"replicas": 1},
    }
    kubectl.on(["get", "deployment", "agent", "-o", "json", "-n", "agents"], json.dumps(live))
    inv = Investigator(Kubectl.find(namespace="agents"), "agents", rules=load_rules())
    result = inv.run(ToolCall("1", "evaluate", {"kind": "deployment", "name": "agent"}))
    assert result.startswith("kai's evaluator found:")
    for rule in ("KAI-RES-001", "KAI-PRB-001", "KAI-SEC-001", "KAI-IMG-001", "KAI-CFG-001"):
        assert rule in result
    assert "sk-proj-abcdefghijklmnop1234" not in result  # the literal key never reaches the model
    assert kubectl.calls() == [["get", "deployment", "agent", "-o", "json", "-n", "agents"]]

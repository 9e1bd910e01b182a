"""kai generate against recorded model exchanges (vcrpy, record mode none): no network, no key."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, model_tapes

from kai.config import Config
from kai.errors import ModelError
from kai.generate import generate
from kai.model.client import LLM, Settings, cost
from kai.model.plan import PlanError, parse_plan
from kai.policy.catalog import load_rules

CASSETTES = Path(__file__).parent / "cassettes"
REQUEST = (
    "deploy ghcr.io/acme/agent:1.4.0 with 2 replicas on port 8000, health at /healthz and /readyz, "
    "reachable at agent.example.com"
)
RULES = load_rules()
recorder = model_tapes()


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-0000000000")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key-000000")


def _run(
    model: str = "openai/gpt-4.1-mini",
    cache_dir: Path | None = None,
    waits: list[float] | None = None,
    **kw,
):
    sleep = waits.append if waits is not None else (lambda _s: None)
    llm = LLM(Settings(model=model, cache=cache_dir is not None), cache_dir, sleep=sleep)
    return generate(REQUEST, llm.settings, RULES, Config(), llm=llm, **kw), llm


def test_clean_first_draft_takes_one_call() -> None:
    with recorder.use_cassette("openai_clean_draft.yaml") as cassette:
        result, llm = _run()
    assert cassette.play_count == 1 and llm.calls == 1
    assert result.failing == [] and result.stopped_because == "clean"
    assert result.prompt_tokens == 3412 and result.completion_tokens == 2187
    assert "kind: NetworkPolicy" in result.yaml and "ghcr.io/acme/agent:1.4.0" in result.yaml
    assert result.cost_usd is None or result.cost_usd > 0


def test_flawed_draft_is_fixed_then_repaired() -> None:
    with recorder.use_cassette("openai_flawed_then_repaired.yaml") as cassette:
        result, llm = _run()
    assert cassette.play_count == 2 and llm.calls == 2
    first, second = result.rounds
    assert first.findings_in_draft > 10 and first.fixed_by_kai >= 10 and first.remaining > 0
    assert second.remaining == 0 and result.failing == []
    assert "authorization" not in {k.lower() for k in cassette.requests[1].headers}  # filtered


def test_repair_prompt_carries_remaining_findings(sent_bodies: list[dict[str, Any]]) -> None:
    bodies = sent_bodies
    with recorder.use_cassette("openai_flawed_then_repaired.yaml"):
        _run()
    repair = bodies[1]["messages"][-1]["content"]
    assert "KAI-IMG-001" in repair and "KAI-CFG-001" in repair and "KAI-NET-006" in repair
    assert "kind: Deployment" in repair and "kind: Ingress" in repair  # the objects with findings
    assert "imagePullPolicy: Always" in repair  # as kai fixed them
    assert "sk-proj-REDACTED-EXAMPLE-KEY" not in json.dumps(
        bodies
    )  # the draft's literal key never goes back


def test_each_repair_round_is_announced(kai) -> None:
    with recorder.use_cassette("openai_flawed_then_repaired.yaml") as cassette:
        r = kai("generate", REQUEST, "--model", "openai/gpt-4.1-mini", "--no-cache")
    assert cassette.play_count == 2, r.err
    rounds = [line for line in r.out.splitlines() if line.startswith("round ")]
    assert len(rounds) == 1 and rounds[0].startswith("round 2: repairing ")
    assert rounds[0].endswith(("finding", "findings"))


def test_repair_rounds_are_compact_not_the_whole_history(sent_bodies: list[dict[str, Any]]) -> None:
    """Round 2 resends the instructions and the request (one cached prefix), the findings and
    the failing objects: not the first answer, and not the objects that already pass."""
    with recorder.use_cassette("openai_flawed_then_repaired.yaml"):
        result, _ = _run()
    first, repair = sent_bodies[0]["messages"], sent_bodies[1]["messages"]
    assert [m["role"] for m in repair] == ["system", "user"]  # no earlier answer resent
    assert repair[0] == first[0] and repair[1]["content"].startswith(first[1]["content"])
    text = repair[1]["content"]
    assert "kind: PodDisruptionBudget" not in text and "kind: NetworkPolicy" not in text
    assert "PodDisruptionBudget/agent" in text and "NetworkPolicy/agent" in text  # named, kept
    # the findings' lines and the failing objects only (they grow a little with the catalog)
    assert len(json.dumps(repair)) < len(json.dumps(first)) + 4000
    assert "PodDisruptionBudget" in result.yaml  # a kept object is still in the plan


def test_a_repair_answer_replaces_only_the_objects_it_sends_back() -> None:
    from kai.generate import merge_objects

    def obj(kind: str, name: str, **spec: object) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}, "spec": spec}

    current = [obj("Deployment", "a", replicas=1), obj("Service", "a"), obj("ConfigMap", "c")]
    answer = [obj("Deployment", "a", replicas=2), obj("Service", "b")]
    merged = merge_objects(current, answer)
    assert [(o["kind"], o["metadata"]["name"]) for o in merged] == [
        ("Deployment", "a"),
        ("Service", "a"),
        ("ConfigMap", "c"),
        ("Service", "b"),
    ]
    assert merged[0]["spec"] == {"replicas": 2}


@pytest.mark.parametrize(
    ("cassette", "model"),
    [
        ("openai_clean_draft.yaml", "openai/gpt-4.1-mini"),
        ("anthropic_prose_wrapped.yaml", "anthropic/claude-sonnet-4-5"),
    ],
)
def test_every_request_carries_a_max_tokens_bound(
    sent_bodies: list[dict[str, Any]], cassette: str, model: str
) -> None:
    with recorder.use_cassette(cassette.replace(".yaml", "_max_tokens_1500.yaml")):
        llm = LLM(Settings(model=model, cache=False, max_tokens=1500))
        generate(REQUEST, llm.settings, RULES, Config(), llm=llm)
    assert sent_bodies and all(b["max_tokens"] == 1500 for b in sent_bodies)


def test_max_tokens_from_flag_env_or_kai_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    from kai.errors import InputError
    from kai.model.client import DEFAULT_MAX_TOKENS, settings_from

    monkeypatch.delenv("KAI_MAX_TOKENS", raising=False)
    team = Config(extra={"max_tokens": 2048})
    assert settings_from("openai/x").max_tokens == DEFAULT_MAX_TOKENS
    assert settings_from("openai/x", team).max_tokens == 2048
    monkeypatch.setenv("KAI_MAX_TOKENS", "1024")
    assert settings_from("openai/x", team).max_tokens == 1024
    assert settings_from("openai/x", team, max_tokens=512).max_tokens == 512
    monkeypatch.setenv("KAI_MAX_TOKENS", "lots")
    with pytest.raises(InputError):
        settings_from("openai/x")


def test_prose_wrapped_answer_in_anthropic_format() -> None:
    with recorder.use_cassette("anthropic_prose_wrapped.yaml") as cassette:
        result, llm = _run(model="anthropic/claude-sonnet-4-5")
    assert cassette.play_count == 1 and llm.calls == 1 and result.failing == []
    assert result.prompt_tokens == 3551 and result.completion_tokens == 2240
    assert "Deployment/agent" in result.plan.explanations


def test_unreadable_answer_gets_one_corrective_retry() -> None:
    with recorder.use_cassette("openai_invalid_then_retry.yaml") as cassette:
        result, llm = _run()
    assert cassette.play_count == 2 and llm.calls == 2 and result.failing == []


def test_questions_instead_of_a_plan() -> None:
    with recorder.use_cassette("openai_questions.yaml"):
        llm = LLM(Settings(model="openai/gpt-4.1-mini", cache=False))
        result = generate("deploy my agent", llm.settings, RULES, Config(), llm=llm)
    assert result.plan.objects == [] and len(result.plan.questions) == 2
    assert result.stopped_because == "the model asked questions instead of planning"


def test_rate_limit_then_success_waits_as_told() -> None:
    waits: list[float] = []
    with recorder.use_cassette("openai_429_then_ok.yaml") as cassette:
        result, llm = _run(waits=waits)
    assert cassette.play_count == 2 and waits == [1.0]  # the Retry-After header
    assert llm.calls == 1 and llm.retries == 1 and result.failing == []  # a 429 is no answer


def test_timeout_is_a_clear_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(*_a, **_k):
        raise TimeoutError("timed out")

    monkeypatch.setattr(urllib.request, "urlopen", slow)
    llm = LLM(
        Settings(model="openai/gpt-4.1-mini", timeout=5, retries=1, cache=False),
        None,
        sleep=lambda _s: None,
    )
    with pytest.raises(
        ModelError,
        match=r"no answer from openai/gpt-4.1-mini: timed out after 5 s \(after 2 attempts\)",
    ):
        llm.complete([{"role": "user", "content": "hi"}])


def test_cache_hit_costs_zero_calls(tmp_path: Path) -> None:
    with recorder.use_cassette("openai_clean_draft.yaml"):
        first, _ = _run(cache_dir=tmp_path)
    with recorder.use_cassette("openai_clean_draft.yaml") as cassette:
        second, llm = _run(cache_dir=tmp_path)
    assert cassette.play_count == 0 and llm.calls == 0 and second.model_calls == 0
    assert second.yaml == first.yaml


def test_fallback_model_after_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with recorder.use_cassette("openai_clean_draft.yaml") as cassette:
        llm = LLM(
            Settings(
                model="anthropic/claude-sonnet-4-5", fallbacks=["openai/gpt-4.1-mini"], cache=False
            )
        )
        result = generate(REQUEST, llm.settings, RULES, Config(), llm=llm)
    assert cassette.play_count == 1 and result.failing == []


def test_no_planted_secret_reaches_any_request(sent_bodies: list[dict[str, Any]]) -> None:
    planted = [
        "sk-proj-PLANTEDsecretVALUE1234567890",
        "ghp_PLANTEDtoken1234567890abcdefghij",
        "AKIAPLANTED00000TEST",
        "hunter2-planted-password",
    ]
    bodies = sent_bodies
    request = (
        f"{REQUEST}. Use OPENAI_API_KEY={planted[0]}, pull with token {planted[1]}, "
        f"AWS key {planted[2]}, and the database password: {planted[3]}"
    )
    config = Config(extra={"registry": f"https://robot:{planted[3]}@registry.example.com"})
    with recorder.use_cassette("openai_planted_secrets.yaml"):
        llm = LLM(Settings(model="openai/gpt-4.1-mini", cache=False))
        generate(request, llm.settings, RULES, config, llm=llm)
    sent = json.dumps(bodies)
    assert len(bodies) == 2
    for secret in planted:
        assert secret not in sent, secret
    assert "<redacted>" in sent


def test_plan_parser_tolerates_fences_and_prose() -> None:
    hardened = (EXAMPLES / "agent-hardened" / "30-deployment.yaml").read_text()
    assert (
        parse_plan(f"Here you go:\n```yaml\n{hardened}```\nEnjoy.").objects[0]["kind"]
        == "Deployment"
    )
    assert (
        parse_plan(
            'noise {"objects": [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}], '
            '"rationale": "r", "questions": []} trailing'
        ).objects[0]["kind"]
        == "Service"
    )
    assert parse_plan(hardened).objects[0]["kind"] == "Deployment"
    for bad in (
        "",
        "I cannot help with that.",
        '{"objects": [{"kind": "Pod"}]}',
        "```yaml\n- 1\n```",
    ):
        with pytest.raises(PlanError):
            parse_plan(bad)


def test_cost_comes_from_litellms_price_table_without_importing_it() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from kai.model.client import cost; v = cost('openai/gpt-4.1-mini', 1_000_000, 0); "
        "print(v, 'litellm' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert float(out[0]) > 0 and out[1] == "False"
    assert cost("ollama/qwen2.5-coder", 1000, 1000) == 0.0


def test_cli_without_a_model_is_exit_3(kai, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAI_MODEL", raising=False)
    r = kai("deploy nginx with two replicas")
    assert r.code == 3 and "no model configured" in r.err and r.err.count("\n") == 1


def test_cli_questions_exit_2_when_not_interactive(
    kai, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with recorder.use_cassette("openai_questions.yaml"):
        r = kai("generate", "deploy my agent", "--model", "openai/gpt-4.1-mini", "--no-cache")
    assert r.code == 2 and "Which port does the agent listen on?" in r.out and "--set" in r.out


def test_no_objects_and_no_questions_is_a_model_error_and_no_file(kai, tmp_path: Path) -> None:
    """Authored answer: {"objects": [], "questions": []}, again after kai's corrective retry."""
    out = tmp_path / "agent.yaml"
    with recorder.use_cassette("openai_empty_plan_authored.yaml") as cassette:
        r = kai("generate", REQUEST, "--model", "openai/gpt-4.1-mini", "--no-cache", "-o", str(out))
    assert cassette.play_count == 2  # one corrective retry
    assert r.code == 3 and "no objects and no questions" in r.err and "PASS" not in r.out
    assert len(r.err.strip().splitlines()) == 1 and not out.exists()


def test_cli_writes_plain_yaml(kai, tmp_path: Path) -> None:
    out = tmp_path / "agent.yaml"
    with recorder.use_cassette("openai_clean_draft.yaml"):
        r = kai(
            "generate",
            REQUEST,
            "--model",
            "openai/gpt-4.1-mini",
            "--no-cache",
            "-o",
            str(out),
            "--explain",
        )
    assert r.code == 0 and "PASS" in r.out and "Why this shape" in r.out
    assert kai("review", str(out)).code == 0


def test_reprompt_edits_the_plan_and_keeps_the_conversation(
    sent_bodies: list[dict[str, Any]],
) -> None:
    bodies = sent_bodies
    with recorder.use_cassette("openai_reprompt.yaml") as cassette:
        first, llm = _run()
        assert "type: LoadBalancer" in first.yaml and "HorizontalPodAutoscaler" not in first.yaml
        feedback = "use a ClusterIP instead and add an HPA from 2 to 10 at 70% CPU"
        second = generate(
            REQUEST,
            llm.settings,
            RULES,
            Config(),
            llm=llm,
            history=first.messages,
            feedback=feedback,
            previous_yaml=first.yaml,
        )
    assert cassette.play_count == 2
    assert "kind: HorizontalPodAutoscaler" in second.yaml and "type: ClusterIP" in second.yaml
    sent = bodies[1]["messages"]
    assert sent[: len(bodies[0]["messages"])] == bodies[0]["messages"]  # the conversation is kept
    assert sent[-2]["role"] == "assistant" and feedback in sent[-1]["content"]
    assert "type: LoadBalancer" in sent[-1]["content"]  # the plan being edited


def test_cli_interactive_reprompt_then_save(
    kai, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import io
    import sys

    stdin = io.StringIO(
        "r\nuse a ClusterIP instead and add an HPA from 2 to 10 at 70% CPU\ns\nout.yaml\nq\n"
    )
    stdin.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stdin", stdin)
    with recorder.use_cassette("openai_reprompt.yaml") as cassette:
        r = kai("generate", REQUEST, "--model", "openai/gpt-4.1-mini", "--no-cache")
    assert cassette.play_count == 2 and r.code == 0
    assert "kind: HorizontalPodAutoscaler" in (tmp_path / "out.yaml").read_text()


def test_eval_suite_against_recorded_answers(kai, monkeypatch: pytest.MonkeyPatch) -> None:
    from kai import evaluation
    from kai.evaluation import load_tasks

    tasks = load_tasks(EXAMPLES / "tasks")
    assert len(tasks) >= 25
    original = evaluation.run_eval

    def with_cassettes(selected, run, context=None):
        return original(selected, run, context=lambda t: recorder.use_cassette(f"eval/{t.id}.yaml"))

    monkeypatch.setattr("kai.evaluation.run_eval", with_cassettes)
    r = kai(
        "eval", "--tasks", str(EXAMPLES / "tasks"), "--model", "openai/gpt-4.1-mini", "-o", "json"
    )
    data = r.json()
    results = {x["id"]: x for x in data["results"]}
    assert r.code == 0, [x for x in data["results"] if not x["passed"]]
    assert all(x["passed"] for x in results.values())
    calls = {k: v["model_calls"] for k, v in results.items()}
    # One call when the first draft passes after kai's deterministic fixes, two when it needs a repair turn.
    assert (
        calls["02-nginx-internal"] == 1 and calls["04-worker"] == 1
    )  # sloppy drafts fixed by kai alone
    assert calls["20-agent-latest-draft"] == 2 and calls["25-chat-backend"] == 2
    assert max(calls.values()) <= 2


def test_eval_checks_catch_a_wrong_answer() -> None:
    from kai.evaluation import Task, check
    from kai.generate import Generated
    from kai.model.plan import Plan

    task = Task(
        "t",
        "deploy x",
        {
            "kinds": ["Deployment", "Service"],
            "image": "x:1.0",
            "ports": [80],
            "exposure": "ClusterIP",
        },
    )
    answer = Generated(
        plan=Plan(),
        yaml="apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers: [{name: x, image: 'x:latest'}]\n",
    )
    failures = check(task, answer)
    assert (
        "no Service" in failures
        and any("image x:1.0" in f for f in failures)
        and "port 80 not declared" in failures
    )


def test_other_providers_go_through_litellm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gemini's generateContent format, reached through litellm (imported only for such a model)."""
    import sys

    monkeypatch.setenv("GEMINI_API_KEY", "AIza-test-not-a-real-key-000000000000000")
    gemini = model_tapes(
        filter_query_parameters=["key"], filter_headers=["authorization", "x-goog-api-key"]
    )
    with gemini.use_cassette("gemini_via_litellm.yaml") as cassette:
        result, llm = _run(model="gemini/gemini-2.0-flash")
    assert "litellm" in sys.modules
    assert cassette.play_count == 1 and llm.calls == 1 and result.failing == []
    assert result.prompt_tokens == 3480 and result.completion_tokens == 2201


def test_max_cost_guard_stops_before_overspending() -> None:
    with recorder.use_cassette("openai_flawed_then_repaired.yaml") as cassette:
        llm = LLM(Settings(model="openai/gpt-4.1-mini", cache=False, max_cost=0.000001))
        with pytest.raises(ModelError, match="--max-cost"):
            generate(REQUEST, llm.settings, RULES, Config(), llm=llm)
    assert cassette.play_count == 1  # the repair turn was never sent


@pytest.mark.parametrize("priced", [True, False])
def test_max_cost_is_refused_for_a_model_whose_price_is_unknown(
    monkeypatch: pytest.MonkeyPatch, priced: bool
) -> None:
    from kai.errors import InputError
    from kai.model import client as llm_module

    if not priced:  # litellm's price table is not installed: gpt-4.1-mini's price is unknown
        monkeypatch.setattr(llm_module, "_prices", lambda: {})
    model = "openai/gpt-4.1-mini" if not priced else "openai/a-local-model-nobody-prices"
    llm = LLM(Settings(model=model, cache=False, max_cost=1.0))
    with pytest.raises(InputError, match=r"price of .* is unknown") as refused:
        llm.complete([{"role": "user", "content": "hi"}])  # no cassette: nothing may be sent
    assert ("kai[litellm]" in str(refused.value)) is not priced
    assert llm.calls == 0


def test_generate_says_it_is_offline_and_apply_without_a_cluster_exits_4(
    kai, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with recorder.use_cassette("openai_clean_draft.yaml"):
        r = kai(
            "generate",
            REQUEST,
            "--model",
            "openai/gpt-4.1-mini",
            "--no-cache",
            "-o",
            str(tmp_path / "a.yaml"),
        )
    assert (
        r.code == 0
        and "offline: validated against the schema only, not dry-run on a server" in r.out
    )
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with recorder.use_cassette("openai_clean_draft.yaml"):
        r = kai(
            "generate",
            REQUEST,
            "--model",
            "openai/gpt-4.1-mini",
            "--no-cache",
            "-o",
            str(tmp_path / "b.yaml"),
            "--apply",
            "--kubeconfig",
            str(tmp_path / "no-kubeconfig"),
        )
    assert (
        r.code == 4
        and "offline: validated against the schema only, not dry-run on a server (no cluster configured"
        in r.out
    )


def test_the_skill_questions_shape_the_prompt() -> None:
    from kai.config import Config
    from kai.generate import first_messages

    system, user = first_messages(
        "deploy my agent", RULES, Config(), {"image": "ghcr.io/acme/agent:1.4.0", "team": "ml"}
    )
    assert (
        "Which port does the application listen on? (required when the workload serves network traffic)"
        in system["content"]
    )
    assert (
        "Which container image (registry/repository:tag) should run? (required)"
        in system["content"]
    )
    # a --set key the skill knows arrives with its question; any other key as given
    assert (
        "Which container image (registry/repository:tag) should run? ghcr.io/acme/agent:1.4.0"
        in user["content"]
    )
    assert "team: ml" in user["content"]


def test_an_output_folder_that_does_not_exist_is_created_when_written(kai, tmp_path: Path) -> None:
    with recorder.use_cassette("openai_clean_draft.yaml"):
        r = kai(
            "generate",
            REQUEST,
            "--model",
            "openai/gpt-4.1-mini",
            "--no-cache",
            "-o",
            "out/new/agent.yaml",
        )
    assert r.code == 0, r.out + r.err
    assert (tmp_path / "out" / "new" / "agent.yaml").read_text().startswith("apiVersion")
    assert "wrote out/new/agent.yaml" in r.out


def test_a_run_that_writes_nothing_creates_no_folder(kai, tmp_path: Path) -> None:
    # the model call fails (no cassette, no network): nothing was written, so no folder either
    r = kai(
        "generate",
        REQUEST,
        "--model",
        "openai/gpt-4.1-mini",
        "--no-cache",
        "-o",
        "a/b/c.yaml",
        "--api-base",
        "http://127.0.0.1:9/v1",
        "--timeout",
        "1",
    )
    assert r.code == 3, r.err
    assert not (tmp_path / "a").exists()


def test_interactive_menu_reasks_on_a_typo_and_confirms_an_overwrite(
    kai, terminal, tmp_path: Path
) -> None:
    (tmp_path / "out.yaml").write_text("keep me\n")
    # a typo, then save onto an existing file: refused once (n), then saved elsewhere
    terminal("x\ns\nout.yaml\nn\ns\nnew.yaml\nq\n")
    with recorder.use_cassette("openai_clean_draft.yaml"):
        r = kai("generate", REQUEST, "--model", "openai/gpt-4.1-mini", "--no-cache")
    assert r.code == 0, r.err
    assert "'x': choose a, r, s or q" in r.out
    assert (tmp_path / "out.yaml").read_text() == "keep me\n"
    assert (tmp_path / "new.yaml").read_text().startswith("apiVersion")
    assert "wrote new.yaml" in r.out


def test_an_output_path_that_is_a_folder_fails_before_any_model_call(kai, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    r = kai("generate", REQUEST, "--model", "openai/gpt-4.1-mini", "-o", "out")
    assert (
        r.code == 2 and "is a directory" in r.err
    )  # no cassette: a model call would fail the test


def test_repair_prompts_carry_whole_first_sentences_of_the_fix() -> None:
    from kai.generate import _finding_lines

    rules = {r.id: r for r in RULES}
    hpa = rules["KAI-HPA-003"]
    assert "\n" in hpa.remediation.strip()  # wrapped in the rule file
    from kai.models import Finding, ObjectRef, Severity

    line = _finding_lines(
        [
            Finding(
                "KAI-HPA-003",
                Severity.WARNING,
                "pinned",
                ObjectRef("apps/v1", "Deployment", "a", "b"),
                "f",
                1,
            )
        ],
        rules,
    )
    fix = line.split(" Fix: ", 1)[1]
    assert fix.endswith(".") and "\n" not in fix and len(fix) > 40


def test_an_edited_prompt_no_longer_matches_its_cassette(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bodies are matched: the clean-draft cassette replays as built, and a plan prompt edited
    without rebuilding the cassette finds no recorded exchange (the test fails loudly)."""
    strict = model_tapes(match_body=True)
    with strict.use_cassette("openai_clean_draft.yaml") as cassette:
        result, _ = _run()
    assert cassette.play_count == 1 and result.failing == []

    from vcr.errors import CannotOverwriteExistingCassetteException

    from kai.model import prompts

    original = prompts.template
    monkeypatch.setattr(prompts, "template", lambda name: original(name) + "\nBe brief.\n")
    with (
        pytest.raises(CannotOverwriteExistingCassetteException),
        strict.use_cassette("openai_clean_draft.yaml") as cassette,
    ):
        _run()
    assert cassette.play_count == 0

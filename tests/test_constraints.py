"""What the person said explicitly holds in the final plan: kai checks it and sends a violated
constraint back as a KAI-REQ finding (issue 14: "health at /" and the plan probed /healthz)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import model_tapes

from kai import constraints
from kai.config import Config
from kai.generate import generate
from kai.manifests import load_text
from kai.model.client import LLM, Settings
from kai.policy.catalog import load_rules

REQUEST = (
    "deploy ghcr.io/acme/agent:1.4.0 with 2 replicas on port 8000, health at /, "
    "reachable at agent.example.com"
)
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: a, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: a}}
  template:
    metadata: {labels: {app: a}}
    spec:
      containers:
      - name: a
        image: ghcr.io/acme/a:2.0
        ports: [{containerPort: 8080}]
        livenessProbe: {httpGet: {path: /healthz, port: 8080}}
        readinessProbe: {httpGet: {path: /readyz, port: 8080}}
"""


def _messages(text: str = DEPLOYMENT, **given: str) -> dict[str, str]:
    found = constraints.check(load_text(text, "p.yaml")[0], given)
    return {f.rule: f.message for f in found}


def test_each_explicit_constraint_is_checked() -> None:
    got = _messages(
        image="ghcr.io/acme/a:1.0", port="80", health="/", replicas="2", namespace="web"
    )
    assert got == {
        "KAI-REQ-001": "request said image ghcr.io/acme/a:1.0, plan runs ['ghcr.io/acme/a:2.0']",
        "KAI-REQ-002": "request said port 80, plan declares [8080]",
        "KAI-REQ-003": "request said health at /, plan probes /healthz, /readyz",
        "KAI-REQ-004": "request said 2 replicas, plan runs [3]",
        "KAI-REQ-005": "request said namespace web, plan puts Deployment/shop/a in shop",
    }


def test_a_plan_that_keeps_the_constraints_has_no_req_finding() -> None:
    assert (
        _messages(
            image="ghcr.io/acme/a:2.0", port="8080", health="/healthz and /readyz", replicas="3"
        )
        == {}
    )
    assert _messages(exposure="public", data="none") == {}  # free text: the model's to read


def test_team_constraints_come_from_kai_yaml_and_set_wins() -> None:
    config = Config(namespace="shop", extra={"constraints": {"port": 8080, "image": "x:1"}})
    got = constraints.gather({"image": "y:2", "health": "/"}, config)
    assert got == {"port": "8080", "image": "y:2", "namespace": "shop", "health": "/"}


def test_a_violated_constraint_goes_back_in_the_repair_round(
    sent_bodies: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Authored answers: /healthz first, then the path the person asked for."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-0000000000")
    with model_tapes().use_cassette("openai_health_constraint_authored.yaml") as tape:
        llm = LLM(Settings(model="openai/gpt-4.1-mini", cache=False))
        result = generate(REQUEST, llm.settings, load_rules(), Config(), {"health": "/"}, llm=llm)
    assert tape.play_count == 2 and result.rounds[0].remaining == 1
    repair = sent_bodies[1]["messages"][-1]["content"]
    assert "KAI-REQ-003" in repair and "request said health at /, plan probes /healthz" in repair
    assert result.failing == [] and "path: /healthz" not in result.yaml
    assert constraints.check(load_text(result.yaml, "r.yaml")[0], {"health": "/"}) == []

"""A built-in kind at a wrong group/version (`apiVersion: v1, kind: Deployment`) is rejected by
the API server; kai says so (KAI-SCH-004) in validate, review and generate, instead of treating
it as a custom resource "not validated" and passing it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kai.config import Config
from kai.generate import generate
from kai.model.client import Completion, Settings, Usage
from kai.policy.catalog import load_rules

WRONG = """\
apiVersion: v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: ghcr.io/acme/web:1.0}]
---
apiVersion: v1
kind: Widget
metadata: {name: w}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: custom}
"""


def _file(tmp_path: Path) -> str:
    path = tmp_path / "wrong.yaml"
    path.write_text(WRONG, encoding="utf-8")
    return str(path)


def test_validate_says_the_api_server_rejects_it(kai, tmp_path: Path) -> None:
    r = kai("validate", _file(tmp_path), "-o", "json")
    assert r.code == 1
    found = {(f["object"]["kind"], f["object"]["name"]): f for f in r.json()["findings"]}
    deployment = found[("Deployment", "web")]
    assert deployment["rule"] == "KAI-SCH-004" and deployment["severity"] == "error"
    assert "apps/v1" in deployment["message"] and "rejects apiVersion v1" in deployment["message"]
    assert found[("Widget", "w")]["rule"] == "KAI-SCH-004"  # no CRD can live in the core group
    assert ("Widget", "custom") not in found  # a dotted group stays a custom resource
    assert "not validated: no schema for example.com/v1/Widget" in r.out


def test_review_fails_on_it(kai, tmp_path: Path) -> None:
    r = kai("review", _file(tmp_path))
    assert r.code == 1 and "KAI-SCH-004" in r.out


class Authored:
    """Stands in for the model: an authored answer with the wrong apiVersion, every time."""

    def __init__(self) -> None:
        self.settings = Settings(model="authored")
        self.calls = self.retries = self.prompt_tokens = self.completion_tokens = 0
        self.cost_usd: float | None = 0.0
        self.sent: list[Any] = []

    def complete(self, messages: Any, schema: Any = None) -> Completion:
        import yaml

        self.sent.append(messages)
        self.calls += 1
        objects = [d for d in yaml.safe_load_all(WRONG) if d][:1]
        return Completion(
            json.dumps({"objects": objects, "rationale": "r", "questions": []}), "x", Usage()
        )


def test_generate_does_not_pass_it_and_sends_it_back() -> None:
    llm = Authored()
    result = generate("deploy web", llm.settings, load_rules(), Config(), llm=llm)  # type: ignore[arg-type]
    assert "KAI-SCH-004" in {f.rule for f in result.failing}
    assert len(llm.sent) == 2 and "KAI-SCH-004" in llm.sent[1][-1]["content"]

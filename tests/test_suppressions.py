"""The evaluator cannot be switched off by the model (issue 14, item 3): suppression annotations
in model output are stripped and listed; a bare `kai.dev/ignore: "*"` needs a reason everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import model_tapes

from kai.generate import strip_suppressions

REQUEST = (
    "deploy ghcr.io/acme/agent:1.4.0 with 2 replicas on port 8000, health at /healthz and /readyz, "
    "reachable at agent.example.com"
)


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-0000000000")


def test_the_draft_with_a_wildcard_ignore_from_the_model_does_not_pass(kai, tmp_path: Path) -> None:
    """Authored answer: examples/agent-draft with kai.dev/ignore: "*" on every object, twice."""
    out = tmp_path / "agent.yaml"
    with model_tapes().use_cassette("openai_ignore_all_authored.yaml"):
        r = kai("generate", REQUEST, "--model", "openai/gpt-4.1-mini", "--no-cache", "-o", str(out))
    assert r.code == 1 and "FAIL" in r.out and "PASS" not in r.out
    assert "removed" in r.out and 'kai.dev/ignore: "*"' in r.out and "Deployment/agent" in r.out
    saved = out.read_text()
    assert "kai.dev/ignore" not in saved  # what kai saved judges as it reads
    assert kai("review", str(out)).code == 1


def test_strip_keeps_other_annotations_and_lists_what_went() -> None:
    objs: list[dict[str, Any]] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "a",
                "annotations": {
                    "kai.dev/ignore": "KAI-SEC-001",
                    "kai.dev/ignore-reason": "the model says so",
                    "ignore.kai.dev/KAI-RES-002": "no limits",
                    "team": "x",
                },
            },
            "spec": {"template": {"metadata": {"annotations": {"kai.dev/ignore": "*"}}}},
        },
        {"apiVersion": "v1", "kind": "ConfigMap"},
    ]
    cleaned, removed = strip_suppressions(objs)
    assert cleaned[0]["metadata"]["annotations"] == {"team": "x"}
    assert "annotations" not in cleaned[0]["spec"]["template"]["metadata"]
    assert cleaned[1] == {"apiVersion": "v1", "kind": "ConfigMap"}
    assert len(removed) == 4 and any("ignore.kai.dev/KAI-RES-002" in r for r in removed)
    assert objs[0]["metadata"]["annotations"]["kai.dev/ignore"] == "KAI-SEC-001"  # not mutated


def _draft_with(annotations: dict[str, str], tmp_path: Path) -> Path:
    draft = Path(__file__).resolve().parent.parent / "examples" / "agent-draft"
    docs = [d for f in sorted(draft.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    for d in docs:
        d.setdefault("metadata", {})["annotations"] = dict(annotations)
    path = tmp_path / "draft.yaml"
    path.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    return path


def test_review_does_not_honour_a_wildcard_without_a_reason(kai, tmp_path: Path) -> None:
    r = kai("review", str(_draft_with({"kai.dev/ignore": "*"}, tmp_path)))
    assert r.code == 1 and "not honoured" in r.out


def test_review_honours_a_wildcard_with_a_reason(kai, tmp_path: Path) -> None:
    path = _draft_with({"kai.dev/ignore": "*", "kai.dev/ignore-reason": "fixture, OPS-1"}, tmp_path)
    r = kai("review", str(path), "--no-validate")
    assert r.code == 0, r.out


def test_validate_does_not_honour_a_wildcard_without_a_reason(tmp_path: Path) -> None:
    from kai.manifests import load_text
    from kai.pipeline import SchemaOptions, validate
    from kai.policy.catalog import load_rules

    text = (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  annotations: {kai.dev/ignore: '*'}\n"
        "spec:\n  ports: 80\n"
    )
    manifests, _ = load_text(text, "s.yaml")
    findings, _ = validate(manifests, load_rules(), SchemaOptions(backend="builtin"))
    assert findings and not any(f.suppressed for f in findings)

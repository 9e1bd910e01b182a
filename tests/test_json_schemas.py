"""Every `-o json` output validates against the JSON Schema published in docs/schemas/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, ROOT
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMAS = ROOT / "docs" / "schemas"
DRAFT = str(EXAMPLES / "agent-draft")
HARDENED = str(EXAMPLES / "agent-hardened")


def _registry() -> Registry:
    resources = []
    for path in SCHEMAS.glob("*.schema.json"):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry())


def _valid(name: str, data: Any) -> None:
    errors = sorted(_validator(name).iter_errors(data), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


SUPPRESSED_CRD = """\
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    kai.dev/ignore: KAI-SEC-001
    kai.dev/ignore-reason: a test
spec:
  containers:
    - name: c
      image: nginx:1.27
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
"""


@pytest.mark.parametrize(
    "args",
    [
        ("review", DRAFT, "-o", "json"),
        ("review", HARDENED, "-o", "json"),
        ("review", "mixed.yaml", "-o", "json"),
        ("review", "-", "-o", "json"),
        ("validate", DRAFT, "-o", "json"),
        ("validate", "mixed.yaml", "-o", "json"),
    ],
)
def test_review_and_validate_json(kai, tmp_path: Path, args: tuple[str, ...]) -> None:
    (tmp_path / "mixed.yaml").write_text(SUPPRESSED_CRD)
    r = kai(*args, stdin=SUPPRESSED_CRD if "-" in args else None)
    assert r.code in (0, 1), r.err
    _valid("review", r.json())


def test_review_json_covers_suppressions_and_notes(kai, tmp_path: Path) -> None:
    (tmp_path / "mixed.yaml").write_text(SUPPRESSED_CRD)
    data = kai("review", "mixed.yaml", "-o", "json").json()
    assert any(f["suppressed"] for f in data["findings"]) and data["notes"]


def test_policies_list_and_show_json(kai) -> None:
    listed = kai("policies", "list", "-o", "json").json()
    _valid("policies", listed)
    assert {r["check"]["type"] for r in listed["rules"]} >= {"cel", "python", "schema", "server"}
    for rule in listed["rules"]:
        _valid("rule", kai("policies", "show", rule["id"], "-o", "json").json())


@pytest.mark.parametrize("path", [f"{DRAFT}/agent.yaml", f"{HARDENED}"])
def test_explain_json(kai, path: str) -> None:
    r = kai("explain", path, "-o", "json")
    assert r.code in (0, 1), r.err
    _valid("explain", r.json())


def test_critique_json(kai, tmp_path: Path) -> None:
    answers = tmp_path / "answers.txt"
    answers.write_text("no resource limits\nruns as root\nruns as root user\nsomething else\n")
    r = kai("critique", f"{DRAFT}/agent.yaml", "--answers", str(answers), "-o", "json")
    data = r.json()
    _valid("critique", data)
    assert data["matched"] and data["unmatched"] and data["missed"]


@pytest.mark.parametrize(
    ("name", "break_it"),
    [
        ("review", lambda d: d["findings"][0].update(severity="fatal")),
        ("review", lambda d: d["summary"].pop("passed")),
        ("review", lambda d: d["findings"][0]["object"].update(extra=1)),
        ("explain", lambda d: d.update(findings=[])),
        ("explain", lambda d: d["objects"][0]["fields"][0].update(fields=[])),
    ],
)
def test_the_schemas_reject_what_the_contract_does_not_allow(kai, name: str, break_it) -> None:
    data = (
        kai("review", DRAFT, "-o", "json").json()
        if name == "review"
        else kai("explain", f"{DRAFT}/agent.yaml", "-o", "json").json()
    )
    _valid(name, data)
    break_it(data)
    assert list(_validator(name).iter_errors(data))

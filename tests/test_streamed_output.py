"""`kai review -o json|sarif` are written as they are made, byte for byte what one string was;
a review forgets the files' text once validation has used it; loaded objects share their keys."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES

from kai import render
from kai.config import load_config
from kai.manifests import source_text
from kai.models import Finding, Note, ObjectRef, Report, Severity
from kai.pipeline import SchemaOptions, review, rules_for


def _files(tmp_path: Path) -> list[str]:
    """Three files: findings in several, a schema finding, a note, a bidi override in a name."""
    a = tmp_path / "a.yaml"
    a.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n"
        "  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n"
        "      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n"
        "        image: nginx\n        bogusField: 1\n"
    )
    b = tmp_path / "b.yaml"
    b.write_text(
        'apiVersion: v1\nkind: Service\nmetadata:\n  name: "svc\\u202e"\nspec:\n'
        "  selector: {app: nothing}\n  ports: [{port: 80}]\n---\n"
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
    )
    return [str(a), str(b), str(EXAMPLES / "agent-draft")]


def _report(tmp_path: Path) -> tuple[Report, list[Any]]:
    rules = rules_for(load_config())
    return review(_files(tmp_path), rules, schema=SchemaOptions()), rules


@pytest.mark.parametrize("pretty", [False, True])
@pytest.mark.parametrize("batch", [1, 2, 1000])
def test_streamed_json_and_sarif_equal_the_one_string(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pretty: bool, batch: int
) -> None:
    monkeypatch.setattr(render, "_BATCH", batch)
    report, rules = _report(tmp_path)
    assert len({f.file for f in report.findings}) >= 3 and report.notes
    assert any(f.rule.startswith("KAI-SCH") for f in report.findings)
    for lazy, eager in (
        (
            render.report_data(report, Severity.ERROR, lazy=True),
            render.report_data(report, Severity.ERROR),
        ),
        (render.sarif(report, rules, lazy=True), render.sarif(report, rules)),
    ):
        out = io.StringIO()
        render.write_json(lazy, out.write, pretty)
        assert out.getvalue() == render.to_json(eager, pretty)
    assert "\\u202e" in out.getvalue() and "\u202e" not in out.getvalue()


@pytest.mark.parametrize("pretty", [False, True])
def test_streamed_json_of_empty_lists_and_nesting(pretty: bool) -> None:
    ref = ObjectRef("v1", "Pod", "ns", "p")
    one = Report(
        findings=[Finding("KAI-X-001", Severity.INFO, "m\nn", ref, "f.yaml", 3, "spec")],
        notes=[Note("f.yaml", 1, "a note", ref)],
        objects=[ref],
    )
    for report in (Report(), one):
        out = io.StringIO()
        render.write_json(render.report_data(report, Severity.ERROR, lazy=True), out.write, pretty)
        assert out.getvalue() == render.to_json(render.report_data(report, Severity.ERROR), pretty)
    data = {"a": [1, {"b": render.Lazy(iter([{"c": []}, 2]))}], "d": {}}
    out = io.StringIO()
    render.write_json(data, out.write, pretty)
    assert out.getvalue() == render.to_json({"a": [1, {"b": [{"c": []}, 2]}], "d": {}}, pretty)


def test_cli_json_and_sarif_are_the_documented_shapes(kai, tmp_path: Path) -> None:
    files = _files(tmp_path)
    report, rules = _report(tmp_path)
    assert kai("review", *files, "-o", "json").out == render.to_json(
        render.report_data(report, Severity.ERROR), pretty=False
    )
    assert kai("review", *files, "-o", "sarif").out == render.to_json(
        render.sarif(report, rules), pretty=False
    )


def test_a_review_forgets_the_files_text_and_keeps_the_lines(tmp_path: Path) -> None:
    report, _ = _report(tmp_path)
    bogus = [f for f in report.findings if f.path and "bogusField" in f.path]
    assert [f.line for f in bogus] == [16]  # resolved from the text before it was released
    for file in {f.file for f in report.findings}:
        assert source_text(file) is None


def test_loaded_objects_share_their_key_strings(tmp_path: Path) -> None:
    from kai.inputs import load_paths

    manifests, _ = load_paths([str(EXAMPLES / "agent-draft"), *_files(tmp_path)[:2]])
    keys = [k for m in manifests for k in m.obj]
    by_value: dict[str, set[int]] = {}
    for k in keys:
        by_value.setdefault(k, set()).add(id(k))
    assert len(manifests) > 2 and all(len(ids) == 1 for ids in by_value.values())

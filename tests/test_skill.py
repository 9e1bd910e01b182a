"""The deployment skill (agent/): `kai skill show|export`, and its principles kept in step with the rules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT

from kai import skill
from kai.config import Config
from kai.errors import KaiError
from kai.generate import first_messages
from kai.policy.catalog import load_rules

AGENT = ROOT / "agent"
RULES = load_rules()
BY_ID = {r.id: r for r in RULES}
QUESTIONS = yaml.safe_load((AGENT / "questions.yaml").read_text())["questions"]
PRINCIPLES_FILE = yaml.safe_load((AGENT / "principles.yaml").read_text())
PRINCIPLES = PRINCIPLES_FILE["principles"]
NOT_PRINCIPLES = PRINCIPLES_FILE.get("not_principles", [])
# The Agent Skills format: 1-64 characters, lowercase letters, digits, single inner hyphens.
SKILL_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def _front_matter(text: str) -> dict[str, Any]:
    match = re.match(r"\A---\n(.*?)\n---\n", text, re.S)
    assert match, "SKILL.md must start with YAML front matter between --- lines"
    data = yaml.safe_load(match.group(1))
    assert isinstance(data, dict)
    return data


# ---------- kai skill show ----------


def test_show_prints_persona_questions_and_principles(kai) -> None:
    r = kai("skill", "show")
    assert r.code == 0, r.err
    assert "senior platform engineer" in r.out  # the persona
    for q in QUESTIONS:
        assert q["key"] in r.out
    assert "Which container image" in r.out and "ask (required)" in r.out
    assert "default: ClusterIP, no Ingress" in r.out
    for p in PRINCIPLES:
        assert p["id"] in r.out
    assert "KAI-RES-001" in r.out and "KAI-SEC-019" in r.out
    assert "no rule:" in r.out  # an unchecked principle says so
    assert "not a default: KAI-RES-002" in r.out
    assert "out of step" not in r.out


def test_show_as_json_carries_rule_titles(kai) -> None:
    r = kai("skill", "show", "-o", "json")
    assert r.code == 0, r.err
    data = r.json()
    assert data["name"] == "kubernetes-deployment"
    assert [q["key"] for q in data["questions"]] == [q["key"] for q in QUESTIONS]
    resources = next(p for p in data["principles"] if p["id"] == "resources")
    assert resources["rule_titles"] == {r: BY_ID[r].title for r in ("KAI-RES-001", "KAI-RES-004")}


# ---------- kai skill export ----------


def test_export_markdown_is_one_document_with_everything(kai, tmp_path: Path) -> None:
    r = kai("skill", "export", "--format", "markdown")
    assert r.code == 0, r.err
    doc = r.out
    for heading in ("## Persona", "## Questions to answer before generating", "## Principles"):
        assert heading in doc
    assert doc.count("\n# ") == 0 and doc.startswith(
        "# "
    )  # one top heading: the persona's is demoted
    for q in QUESTIONS:
        assert q["ask"] in doc
    for p in PRINCIPLES:
        assert f"### {p['id']}" in doc
        for rule_id in p.get("rules", []):
            assert f"`{rule_id}` {BY_ID[rule_id].title}" in doc
    out = tmp_path / "skill.md"
    r = kai("skill", "export", "--format", "markdown", "--out", str(out))
    assert r.code == 0 and out.read_text() == doc


def test_export_agent_skill_folder_has_valid_front_matter_and_references(
    kai, tmp_path: Path
) -> None:
    r = kai("skill", "export", "--format", "agent-skill", "--out", str(tmp_path / "skills"))
    assert r.code == 0, r.err
    folder = tmp_path / "skills" / "kubernetes-deployment"
    assert str(folder) in r.err
    text = (folder / "SKILL.md").read_text()
    meta = _front_matter(text)
    assert set(meta) == {"name", "description"}
    assert SKILL_NAME.match(meta["name"]) and len(meta["name"]) <= 64
    assert meta["name"] == folder.name  # the format requires the folder to carry the name
    assert 0 < len(meta["description"]) <= 1024 and "Use when" in meta["description"]
    # Every relative link in SKILL.md resolves to a file of the folder.
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert {"references/questions.md", "references/principles.md"} <= set(links)
    for link in links:
        assert (folder / link).is_file(), link
    questions = (folder / "references" / "questions.md").read_text()
    assert all(q["ask"] in questions for q in QUESTIONS)
    principles = (folder / "references" / "principles.md").read_text()
    for p in PRINCIPLES:
        assert all(rule_id in principles for rule_id in p.get("rules", []))
    assert "senior platform engineer" in text  # the persona travels with the skill


def test_export_to_an_unwritable_place_is_a_one_line_error(kai, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = kai("skill", "export", "--format", "agent-skill", "--out", str(blocker))
    assert r.code == 2 and "cannot write the skill" in r.err and "Traceback" not in r.err


# ---------- principles <-> rules ----------


def test_every_principle_names_existing_rules_or_says_why_it_cannot() -> None:
    for p in PRINCIPLES:
        rules, unchecked = p.get("rules") or [], p.get("unchecked")
        assert bool(rules) != bool(unchecked), f"{p['id']}: give `rules` or `unchecked`, not both"
        if unchecked:
            assert len(unchecked.strip()) > 20, f"{p['id']}: say why no rule can check it"
            continue
        unknown = [r for r in rules if r not in BY_ID]
        assert not unknown, f"principle {p['id']} names rules that do not exist: {unknown}"
        assert any(BY_ID[r].enabled for r in rules), f"{p['id']} has no enabled rule"


def test_every_resources_probes_security_rule_is_a_principle_or_excused() -> None:
    referenced = {r for p in PRINCIPLES for r in p.get("rules") or []}
    excused = {n["rule"] for n in NOT_PRINCIPLES}
    for n in NOT_PRINCIPLES:
        assert n["rule"] in BY_ID, f"not_principles names unknown rule {n['rule']}"
        assert n["rule"] not in referenced, f"{n['rule']} is both a principle and excused"
        assert n["reason"].strip()
    covered = [r for r in RULES if r.category in ("resources", "probes", "security")]
    assert len(covered) >= 25  # the categories exist and are populated
    missing = [r.id for r in covered if r.id not in referenced | excused]
    assert not missing, f"rules neither named by a principle nor listed as not one: {missing}"


def test_the_loader_agrees_with_the_file() -> None:
    loaded = skill.load()
    assert [p.id for p in loaded.principles] == [p["id"] for p in PRINCIPLES]
    assert [q.key for q in loaded.questions] == [q["key"] for q in QUESTIONS]
    assert skill.consistency(loaded, RULES) == []


def test_consistency_names_each_kind_of_drift() -> None:
    loaded = skill.load()
    drifted = skill.Skill(
        loaded.persona,
        loaded.questions,
        [
            skill.Principle("typo", "x", ["KAI-RES-0001"]),
            skill.Principle("only-disabled", "x", ["KAI-RES-003"]),
            *[p for p in loaded.principles if p.id != "probes"],  # drop the probe rules
        ],
        [skill.NotPrinciple("KAI-NOPE-001", "because")],
    )
    problems = "\n".join(skill.consistency(drifted, RULES))
    assert "principle typo names unknown rules ['KAI-RES-0001']" in problems
    assert "principle only-disabled is checked by no enabled rule" in problems
    assert "not_principles names unknown rule KAI-NOPE-001" in problems
    assert "principle typo is checked" not in problems  # one message per problem
    # The probe rules lost their principle; KAI-RES-002 lost its excuse.
    for rule_id in ("KAI-PRB-001", "KAI-PRB-004", "KAI-RES-002"):
        assert f"{rule_id} (" in problems
    assert "KAI-RES-003 (" not in problems  # still named, by only-disabled


def test_a_principle_without_rules_or_reason_is_refused(tmp_path: Path) -> None:
    for name in ("persona.md", "questions.yaml"):
        (tmp_path / name).write_text((AGENT / name).read_text())
    (tmp_path / "principles.yaml").write_text("principles:\n  - id: vague\n    text: Be good.\n")
    with pytest.raises(KaiError, match="principle vague needs either `rules`"):
        skill.load(tmp_path)


# ---------- the skill reaches kai generate ----------


def test_generate_prompt_carries_questions_and_principles() -> None:
    messages = first_messages("deploy my agent", RULES, Config(), {})
    system = messages[0]["content"]
    assert messages[0]["role"] == "system" and "senior platform engineer" in system
    for q in QUESTIONS:
        assert q["ask"] in system
    assert "Which container image (registry/repository:tag) should run? (required)" in system
    assert "Default: ClusterIP, no Ingress." in system
    for p in PRINCIPLES:
        assert " ".join(p["text"].split()) in " ".join(system.split())

"""The deployment skill in agent/: loading it, checking it against the rules, exporting it.

The skill is persona (who kai acts as), questions (what must be known before generating) and
principles (the defaults always applied, each tied to the rules that check it). `kai generate`
puts it into its prompts; `kai skill export` hands it to other agents, as one Markdown document
or as an Agent Skills folder (SKILL.md with `name` and `description` front matter).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kai.errors import InputError, KaiError
from kai.models import Rule

SKILL_NAME = "kubernetes-deployment"
SKILL_DESCRIPTION = (
    "Deploy a service to Kubernetes safely: ask for the facts that decide a deployment (image, "
    "port, health endpoints, exposure, data, secrets, scale), then write manifests that apply "
    "hardened defaults (requests and limits, probes, non-root, read-only root filesystem, "
    "NetworkPolicy, PodDisruptionBudget, labels), each checked by a kai policy rule. Use when "
    "asked to write, review or harden Kubernetes manifests for an application."
)
# The Agent Skills format: lowercase letters, digits and single hyphens, at most 64 characters.
# Categories whose every rule must be a principle or be listed as deliberately not one.
COVERED_CATEGORIES = ("resources", "probes", "security")


@dataclass(slots=True)
class Question:
    key: str
    ask: str
    why: str = ""
    required: bool = False
    required_when: str | None = None
    default: str | None = None

    def when_unanswered(self) -> str:
        """What happens when the request does not answer it: ask, or the default."""
        if self.required:
            return "ask (required)"
        if self.required_when:
            return f"ask when {self.required_when}"
        return f"default: {self.default}" if self.default else "ask"


@dataclass(slots=True)
class Principle:
    id: str
    text: str
    rules: list[str] = field(default_factory=list)
    unchecked: str | None = None  # why no rule can check it


@dataclass(slots=True)
class NotPrinciple:
    rule: str
    reason: str


@dataclass(slots=True)
class Skill:
    persona: str
    questions: list[Question]
    principles: list[Principle]
    not_principles: list[NotPrinciple]


def _read_yaml(path: Path, key: str) -> list[dict[str, Any]]:
    from kai.yamlio import YAMLError, load_one

    try:
        data = load_one(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError) as e:
        raise KaiError(f"{path}: cannot load the skill: {str(e).splitlines()[0]}") from None
    items = data.get(key, []) if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise KaiError(f"{path}: `{key}` must be a list of mappings")
    return items


def load(directory: Path | None = None) -> Skill:
    """The skill from agent/ (the installed copy, or `directory`), validated field by field."""
    from kai.resources import data_dir

    agent = directory or data_dir("agent")
    try:
        persona = (agent / "persona.md").read_text(encoding="utf-8").strip()
    except OSError as e:
        raise KaiError(f"{agent / 'persona.md'}: cannot load the skill: {e.strerror}") from None
    try:
        questions = [Question(**q) for q in _read_yaml(agent / "questions.yaml", "questions")]
        raw = _read_yaml(agent / "principles.yaml", "principles")
        principles = [Principle(**p) for p in raw]
        not_principles = [
            NotPrinciple(**n) for n in _read_yaml(agent / "principles.yaml", "not_principles")
        ]
    except TypeError as e:
        raise KaiError(f"{agent}: invalid skill file: {e}") from None
    for p in principles:
        if bool(p.rules) == bool(p.unchecked):
            raise KaiError(
                f"{agent / 'principles.yaml'}: principle {p.id} needs either `rules` "
                "(the rules that check it) or `unchecked` (why no rule can), not both"
            )
    return Skill(persona, questions, principles, not_principles)


def consistency(skill: Skill, rules: Sequence[Rule]) -> list[str]:
    """Every way the principles and the rule catalog disagree (empty when they are in step)."""
    by_id = {r.id: r for r in rules}
    problems = []
    referenced: set[str] = set()
    for p in skill.principles:
        referenced.update(p.rules)
        unknown = [r for r in p.rules if r not in by_id]
        if unknown:
            problems.append(f"principle {p.id} names unknown rules {unknown}")
        known = [by_id[r] for r in p.rules if r in by_id]
        if known and not any(r.enabled for r in known):
            problems.append(f"principle {p.id} is checked by no enabled rule")
    for n in skill.not_principles:
        if n.rule not in by_id:
            problems.append(f"not_principles names unknown rule {n.rule}")
        if n.rule in referenced:
            problems.append(f"{n.rule} is listed both by a principle and as not a principle")
        if not n.reason.strip():
            problems.append(f"not_principles: {n.rule} gives no reason")
    excused = {n.rule for n in skill.not_principles}
    for r in rules:
        if r.category in COVERED_CATEGORIES and r.id not in referenced | excused:
            problems.append(
                f"{r.id} ({r.category}) is neither named by a principle nor listed as not a principle"
            )
    return problems


def as_data(skill: Skill, rules: Sequence[Rule]) -> dict[str, Any]:
    """The skill as plain data (for -o json|yaml and the MCP server)."""
    from dataclasses import asdict

    titles = {r.id: r.title for r in rules}
    return {
        "name": SKILL_NAME,
        "description": SKILL_DESCRIPTION,
        "persona": skill.persona,
        "questions": [asdict(q) for q in skill.questions],
        "principles": [
            {**asdict(p), "rule_titles": {r: titles.get(r, "") for r in p.rules}}
            for p in skill.principles
        ],
        "not_principles": [asdict(n) for n in skill.not_principles],
    }


# ---------- Markdown ----------


def _persona_body(skill: Skill) -> str:
    """The persona without its own top heading (the export gives it one)."""
    lines = skill.persona.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip()


def questions_markdown(skill: Skill) -> str:
    out = [
        "Answer these before writing manifests. A question marked *ask* must be answered by the",
        "user (do not guess); the others fall back to the default shown.",
        "",
        "| key | question | when not answered | why it matters |",
        "| --- | --- | --- | --- |",
    ]
    for q in skill.questions:
        cells = [f"`{q.key}`", q.ask, q.when_unanswered(), q.why]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out)


def principles_markdown(skill: Skill, rules: Sequence[Rule]) -> str:
    titles = {r.id: r.title for r in rules}
    out = [
        "Apply every principle by default. When the user insists on an exception, keep it visible:",
        "say which rule it breaks and why. Never write suppression annotations (`kai.dev/ignore`,",
        "`ignore.kai.dev/*`) yourself: kai strips them from model output; only the person adds one.",
        "",
    ]
    for p in skill.principles:
        out.append(f"### {p.id}")
        out.append("")
        out.append(p.text.strip())
        out.append("")
        if p.rules:
            out.append("Checked by:")
            out += [f"- `{r}` {titles.get(r, '')}".rstrip() for r in p.rules]
        else:
            out.append(f"Not checked by a rule: {p.unchecked}")
        out.append("")
    if skill.not_principles:
        out.append("### Rules that are deliberately not defaults")
        out.append("")
        out += [f"- `{n.rule}` {titles.get(n.rule, '')}: {n.reason}" for n in skill.not_principles]
    return "\n".join(out).rstrip()


_CHECKING = """\
Check what you wrote with kai when it is available:

- `kai review PATH` (or `-` for stdin): every finding names the rule, the object and the field;
  `kai policies show RULE-ID` explains a rule.
- `kai fix PATH`: the deterministic repairs (security context, resources, probes,
  NetworkPolicy, PodDisruptionBudget, labels); never changes image, command, ports or replicas.
- `kai validate PATH`: the Kubernetes schema, offline.
- Over MCP (`kai mcp`): the tools review, validate, fix, list_policies, explain_rule and dry_run."""


def to_markdown(skill: Skill, rules: Sequence[Rule]) -> str:
    """The whole skill as one Markdown document."""
    return (
        "\n\n".join(
            [
                "# Kubernetes deployment skill (kai)",
                SKILL_DESCRIPTION,
                "## Persona",
                _persona_body(skill),
                "## Questions to answer before generating",
                questions_markdown(skill),
                "## Principles",
                principles_markdown(skill, rules),
                "## Checking the result",
                _CHECKING,
            ]
        )
        + "\n"
    )


def skill_md(skill: Skill) -> str:
    """SKILL.md of the Agent Skills folder: front matter, persona, workflow, pointers."""
    import json

    # One line per field (a JSON string is a valid YAML scalar): some skill loaders read the
    # front matter line by line.
    front = f"name: {SKILL_NAME}\ndescription: {json.dumps(SKILL_DESCRIPTION)}"
    body = f"""\
# Kubernetes deployment

{_persona_body(skill)}

## Workflow

1. Read [references/questions.md](references/questions.md). Ask the user every question marked
   *ask* that the request does not answer; use the stated default for the rest and list each
   assumption you make.
2. Write the manifests, applying every principle in
   [references/principles.md](references/principles.md). Reference Secrets by name and key;
   never write secret values.
3. Check the result (below) and fix every finding without changing what the workload does.
4. Explain the patterns you chose in plain words, one short paragraph per object.

## Checking the result

{_CHECKING}
"""
    return f"---\n{front}\n---\n\n{body}"


def export_agent_skill(skill: Skill, rules: Sequence[Rule], parent: Path) -> Path:
    """Write the Agent Skills folder `parent/<name>/`; returns the folder."""
    folder = parent / SKILL_NAME
    try:
        (folder / "references").mkdir(parents=True, exist_ok=True)
        (folder / "SKILL.md").write_text(skill_md(skill), encoding="utf-8")
        (folder / "references" / "questions.md").write_text(
            "# Questions to answer before generating\n\n" + questions_markdown(skill) + "\n",
            encoding="utf-8",
        )
        (folder / "references" / "principles.md").write_text(
            "# Principles\n\n" + principles_markdown(skill, rules) + "\n", encoding="utf-8"
        )
    except OSError as e:
        raise InputError(f"{folder}: cannot write the skill: {e.strerror}") from None
    return folder


def print_skill(console: Any, skill: Skill, rules: Sequence[Rule]) -> None:
    """`kai skill show`: persona as Markdown, questions and principles as tables."""
    from rich.markdown import Markdown
    from rich.markup import escape
    from rich.table import Table

    titles = {r.id: r.title for r in rules}
    console.print(f"[bold]Skill {SKILL_NAME}[/]  [dim](agent/: persona, questions, principles)[/]")
    console.print(Markdown(skill.persona))
    questions = Table(title="Questions kai answers or asks before generating", title_justify="left")
    for col in ("key", "question", "when not answered"):
        questions.add_column(col, overflow="fold")
    for q in skill.questions:
        questions.add_row(escape(q.key), escape(q.ask), escape(q.when_unanswered()))
    console.print(questions)
    principles = Table(title="Principles kai always applies", title_justify="left")
    for col in ("principle", "what", "checked by"):
        principles.add_column(col, overflow="fold")
    for p in skill.principles:
        checked = (
            "\n".join(f"{r} {escape(titles.get(r, '(unknown rule)'))}" for r in p.rules)
            if p.rules
            else f"[yellow]no rule:[/] {escape(p.unchecked or '')}"
        )
        principles.add_row(escape(p.id), escape(" ".join(p.text.split())), checked)
    console.print(principles)
    for n in skill.not_principles:
        console.print(
            f"[dim]not a default:[/] {n.rule} {escape(titles.get(n.rule, ''))}: {escape(n.reason)}"
        )
    problems = consistency(skill, rules)
    for problem in problems:
        console.print(f"[bold red]out of step with the rules:[/] {escape(problem)}")

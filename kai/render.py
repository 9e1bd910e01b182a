"""Rendering values for people (rich) and machines (JSON, YAML, SARIF).

The machine shapes are a contract: see docs/json-output.md before changing them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from kai import __version__
from kai.models import Finding, Note, ObjectRef, Report, Rule, Severity, Summary

if TYPE_CHECKING:
    from rich.console import Console

SCHEMA_VERSION = 1
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


# ---------- machine shapes ----------


def report_data(report: Report, fail_on: Severity) -> dict[str, Any]:
    """The documented `kai review -o json|yaml` shape."""
    return {
        "version": SCHEMA_VERSION,
        "summary": _summary_data(report.summary(fail_on)),
        "findings": [_finding_data(f) for f in report.findings],
        "notes": [_note_data(n) for n in report.notes],
    }


def _summary_data(s: Summary) -> dict[str, Any]:
    return {**asdict(s), "fail_on": s.fail_on.value}


def _ref_data(ref: ObjectRef) -> dict[str, Any]:
    return {
        "apiVersion": ref.apiVersion,
        "kind": ref.kind,
        "namespace": ref.namespace,
        "name": ref.name,
    }


def _finding_data(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "severity": f.severity.value,
        "message": f.message,
        "object": _ref_data(f.object),
        "file": f.file,
        "line": f.line,
        "path": f.path,
        "suppressed": f.suppressed,
        "suppression_reason": f.suppression_reason,
        "unknown": f.unknown,
    }


def _note_data(n: Note) -> dict[str, Any]:
    data: dict[str, Any] = {"file": n.file, "line": n.line, "message": n.message}
    if n.object is not None:
        data["object"] = _ref_data(n.object)
    return data


def rule_data(rule: Rule) -> dict[str, Any]:
    """The documented `kai policies list -o json` shape of one rule."""
    from kai.policy.fix import fixable

    check: dict[str, Any]
    if rule.cel is not None:
        check = {"type": "cel", "scope": rule.cel.scope, "expression": rule.cel.expression}
    elif rule.schema is not None:
        check = {"type": "schema", "name": rule.schema}
    elif rule.server is not None:
        check = {"type": "server", "name": rule.server}
    else:
        check = {"type": "python", "name": rule.python}
    return {
        "id": rule.id,
        "title": rule.title,
        "severity": rule.severity.value,
        "category": rule.category,
        "enabled": rule.enabled,
        "concept": rule.concept,
        "rationale": rule.rationale.strip(),
        "remediation": rule.remediation.strip(),
        "example": rule.example,
        "references": asdict(rule.references),
        "equivalents": {tool: list(ids) for tool, ids in rule.equivalents.items()},
        "kinds": rule.match.kinds,
        "check": check,
        "fixable": fixable(rule.id),
        "source": rule.source,
    }


def to_json(data: Any, pretty: bool | None = None) -> str:
    """Indented on a terminal; compact when piped (the C encoder is ~5x faster on big reports)."""
    if pretty is None:
        pretty = sys.stdout.isatty()
    if pretty:
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"


def to_yaml(data: Any) -> str:
    from kai.yamlio import dump

    return dump(data)


def _help_markdown(rule: Rule) -> str:
    parts = [
        f"**{rule.title}**",
        "",
        rule.rationale.strip(),
        "",
        "**How to fix:** " + rule.remediation.strip(),
    ]
    if rule.example:
        parts += ["", "```yaml", rule.example.rstrip(), "```"]
    if rule.references.docs:
        parts += ["", f"[Kubernetes documentation]({rule.references.docs})"]
    return "\n".join(parts)


def sarif(report: Report, rules: Sequence[Rule]) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run; suppressed findings carry an inSource suppression."""
    used = {f.rule for f in report.findings}
    driver_rules = [r for r in rules if r.id in used]
    index = {r.id: i for i, r in enumerate(driver_rules)}
    results = []
    for f in report.findings:
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "level": SARIF_LEVEL[f.severity],
            "message": {"text": f"{f.object.display()}: {f.message}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(f.file)},
                        "region": {"startLine": max(1, f.line)},
                    },
                    "logicalLocations": [
                        {
                            "fullyQualifiedName": f.object.display()
                            + (f" {f.path}" if f.path else ""),
                            "kind": "object",
                        }
                    ],
                }
            ],
            "partialFingerprints": {
                "kaiObject/v1": f"{f.rule}:{f.object.display()}:{f.path or ''}"
            },
        }
        if f.rule in index:
            result["ruleIndex"] = index[f.rule]
        if f.suppressed:
            sup: dict[str, Any] = {"kind": "inSource"}
            if f.suppression_reason:
                sup["justification"] = f.suppression_reason
            result["suppressions"] = [sup]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "kai",
                        "version": __version__,
                        "informationUri": "https://github.com/kai-dev/kai",
                        "rules": [
                            {
                                "id": r.id,
                                "name": r.id.replace("-", ""),
                                "shortDescription": {"text": r.title},
                                "fullDescription": {"text": r.rationale.strip()},
                                "help": {
                                    "text": r.remediation.strip(),
                                    "markdown": _help_markdown(r),
                                },
                                **({"helpUri": r.references.docs} if r.references.docs else {}),
                                "defaultConfiguration": {"level": SARIF_LEVEL[r.severity]},
                                "properties": {
                                    "tags": [r.category, "kubernetes"],
                                    "equivalents": r.equivalents,
                                },
                            }
                            for r in driver_rules
                        ],
                    }
                },
                "results": results,
            }
        ],
    }


def _uri(file: str) -> str:
    """A repository-relative URI where possible (what code scanning expects), else a file:// URI."""
    if file == "-":
        return "stdin"
    path = Path(file)
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            return path.as_uri()
    return quote(path.as_posix().removeprefix("./"))


# ---------- human output ----------


def _sev(severity: Severity) -> str:
    return f"[{SEVERITY_STYLE[severity]}]{severity.value}[/]"


def print_report(
    console: Console,
    report: Report,
    rules: dict[str, Rule],
    fail_on: Severity,
    explain: bool = False,
    show_suppressed: bool = True,
) -> None:
    from rich.markup import escape
    from rich.table import Table

    findings = [f for f in report.findings if show_suppressed or not f.suppressed]
    if findings:
        table = Table(show_header=True, header_style="bold", expand=False, pad_edge=False)
        table.add_column("Severity", no_wrap=True)
        table.add_column("Rule", no_wrap=True)
        table.add_column("Message")
        table.add_column("Line · path", style="dim", overflow="fold")
        groups: dict[tuple[str, str], list[Finding]] = {}
        for f in findings:
            groups.setdefault((f.file, f.object.display()), []).append(f)
        for n, ((file, obj), items) in enumerate(groups.items()):
            if n:
                table.add_section()
            table.add_row("", "", f"[bold]{escape(obj)}[/]  [dim]{escape(file)}[/]", "")
            for f in items:
                sev = (
                    "[dim]suppressed[/]"
                    if f.suppressed
                    else ("[magenta]unknown[/]" if f.unknown else _sev(f.severity))
                )
                msg = escape(f.message)
                if f.suppressed and f.suppression_reason:
                    msg += f" [dim](ignored: {escape(f.suppression_reason)})[/]"
                where = f"{f.line}" + (f" {_short_path(f.path)}" if f.path else "")
                table.add_row(sev, f.rule, msg, escape(where))
        console.print(table)
    for note in report.notes:
        console.print(f"[dim]note:[/] {escape(note.file)}:{note.line}: {escape(note.message)}")
    if explain:
        print_explanations(console, findings, rules)
    print_summary(console, report, fail_on)


_POD_SPEC_PREFIXES = (
    "spec.jobTemplate.spec.template.spec.",
    "spec.template.spec.",
    "template.spec.",
)


def _short_path(path: str | None) -> str:
    """containers[0] rather than spec.template.spec.containers[0]: the kind says where the pod is."""
    if not path:
        return ""
    for prefix in _POD_SPEC_PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


def print_summary(console: Console, report: Report, fail_on: Severity) -> None:
    s = report.summary(fail_on)
    counts = ", ".join(f"{s.by_severity[sev.value]} {sev.value}" for sev in reversed(Severity))
    verdict = "[bold green]PASS[/]" if s.passed else "[bold red]FAIL[/]"
    suppressed = f", {s.suppressed} suppressed" if s.suppressed else ""
    if s.unknown:
        suppressed += f", {s.unknown} unknown (objects they depend on could not be read)"
    console.print(
        f"{verdict} {s.objects} object{'s' if s.objects != 1 else ''}, "
        f"{s.findings} finding{'s' if s.findings != 1 else ''} ({counts}){suppressed}; "
        f"fails on {fail_on.value} and above"
    )


def print_explanations(
    console: Console, findings: Sequence[Finding], rules: dict[str, Rule]
) -> None:
    from rich.console import Group
    from rich.markup import escape
    from rich.panel import Panel
    from rich.syntax import Syntax
    from rich.text import Text

    seen: set[str] = set()
    for f in findings:
        rule = rules.get(f.rule)
        if rule is None or f.rule in seen:
            continue
        seen.add(f.rule)
        parts: list[Any] = [
            Text.from_markup(f"[bold]Why it matters[/]  {escape(rule.rationale.strip())}"),
            Text.from_markup(f"\n[bold]How to fix[/]  {escape(rule.remediation.strip())}"),
        ]
        if rule.example:
            parts.append(
                Syntax(rule.example.rstrip(), "yaml", theme="ansi_dark", background_color="default")
            )
        if rule.concept:
            parts.append(Text.from_markup(f"\n[bold]Concept to study[/]  {escape(rule.concept)}"))
        if rule.references.docs:
            parts.append(
                Text.from_markup(
                    f"[bold]Docs[/]  [link={rule.references.docs}]{escape(rule.references.docs)}[/link]"
                )
            )
        title = f"{_sev(rule.severity)} {rule.id} {escape(rule.title)}"
        console.print(Panel(Group(*parts), title=title, title_align="left", expand=True))


def print_rules(console: Console, rules: Sequence[Rule]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from kai.policy.fix import fixable

    table = Table(show_header=True, header_style="bold")
    table.add_column("ID", no_wrap=True)
    table.add_column("Severity", no_wrap=True)
    table.add_column("Category")
    table.add_column("Title")
    table.add_column("Fix", justify="center")
    table.add_column("Equivalents", style="dim")
    for r in rules:
        eq = "; ".join(f"{tool}: {', '.join(ids)}" for tool, ids in r.equivalents.items() if ids)
        rid = r.id if r.enabled else f"[dim]{r.id} (off)[/]"
        table.add_row(
            rid,
            _sev(r.severity),
            r.category,
            escape(r.title),
            "✓" if fixable(r.id) else "",
            escape(eq),
        )
    console.print(table)
    console.print(
        f"{len(rules)} rules, {sum(r.enabled for r in rules)} enabled, {sum(fixable(r.id) for r in rules)} with a deterministic fix (kai fix)"
    )


def print_rule(console: Console, rule: Rule) -> None:
    from rich.markup import escape
    from rich.syntax import Syntax

    console.print(f"[bold]{rule.id}[/]  {escape(rule.title)}")
    console.print(
        f"severity {_sev(rule.severity)} · category {rule.category}"
        + ("" if rule.enabled else " · [dim]off by default[/]")
    )
    if rule.match.kinds:
        console.print(f"applies to: {', '.join(rule.match.kinds)}")
    console.print(f"\n[bold]Why it matters[/]\n{escape(rule.rationale.strip())}")
    console.print(f"\n[bold]How to fix[/]\n{escape(rule.remediation.strip())}")
    if rule.example:
        console.print(
            Syntax(rule.example.rstrip(), "yaml", theme="ansi_dark", background_color="default")
        )
    if rule.concept:
        console.print(f"\n[bold]Concept to study[/]  {escape(rule.concept)}")
    console.print("\n[bold]References[/]")
    if rule.references.docs:
        console.print(f"  Kubernetes docs: {rule.references.docs}")
    for link in rule.references.links:
        console.print(f"  {link}")
    for tool, ids in rule.equivalents.items():
        console.print(f"  {tool}: {', '.join(ids)}")
    if rule.cel is not None:
        console.print(f"\n[bold]Check[/] (CEL, scope {rule.cel.scope})")
        console.print(
            Syntax(
                rule.cel.expression.strip(),
                "javascript",
                theme="ansi_dark",
                background_color="default",
            )
        )
    elif rule.schema is not None:
        console.print(f"\n[bold]Check[/] (schema validation) {rule.schema}")
    elif rule.server is not None:
        console.print(f"\n[bold]Check[/] (server-side dry run) {rule.server}")
    else:
        console.print(f"\n[bold]Check[/] (Python, cross-object) {rule.python}")


def print_generated(console: Console, result: Any, explain: bool, show_yaml: bool = True) -> None:
    """The outcome of `kai generate`: YAML, rounds, what still fails, tokens and cost."""
    from rich.markup import escape
    from rich.syntax import Syntax
    from rich.table import Table

    if show_yaml and result.yaml:
        console.print(Syntax(result.yaml, "yaml", theme="ansi_dark", background_color="default"))
    if explain:
        if result.plan.rationale:
            console.print(f"[bold]Why this shape[/]  {escape(result.plan.rationale)}")
        for obj, why in result.plan.explanations.items():
            console.print(f"  [bold]{escape(obj)}[/]  {escape(why)}")
        for a in result.plan.assumptions:
            console.print(f"  [dim]assumed:[/] {escape(a)}")
    table = Table(title="Three Roles loop", show_header=True, header_style="bold")
    for col in (
        "round",
        "model calls so far",
        "findings in the model's draft",
        "fixed by kai",
        "still failing",
    ):
        table.add_column(col, justify="right")
    for r in result.rounds:
        table.add_row(
            str(r.number),
            str(r.model_calls),
            str(r.findings_in_draft),
            str(r.fixed_by_kai),
            str(r.remaining),
        )
    console.print(table)
    if result.draft_report is not None:
        counts: dict[str, int] = {}
        for f in result.draft_report.active():
            counts[f.rule] = counts.get(f.rule, 0) + 1
        if counts:
            listed = ", ".join(
                f"{rule}x{n}" if n > 1 else rule for rule, n in sorted(counts.items())
            )
            console.print(f"[dim]findings in the model's first draft:[/] {escape(listed)}")
    after = sorted({f.rule for f in result.report.active()}) if result.report is not None else []
    console.print(f"[dim]findings after repair:[/] {escape(', '.join(after)) if after else 'none'}")
    for f in result.failing:
        console.print(
            f"[bold red]still failing[/] {f.rule} {escape(f.object.display())}: {escape(f.message)}"
        )
    cost = "unknown cost" if result.cost_usd is None else f"{result.cost_usd:.4f} USD"
    console.print(
        f"{'[bold green]PASS[/]' if not result.failing else '[bold red]FAIL[/]'} stopped: {escape(result.stopped_because)}; "
        f"{result.model_calls} model call{'s' if result.model_calls != 1 else ''}, "
        f"{result.prompt_tokens} prompt + {result.completion_tokens} completion tokens, {cost}"
    )


def print_eval(console: Console, results: Sequence[Any]) -> None:
    """One row per task, then pass rate, calls, tokens and cost."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    for col, justify in (
        ("task", "left"),
        ("result", "left"),
        ("calls", "right"),
        ("prompt tok", "right"),
        ("completion tok", "right"),
        ("cost USD", "right"),
        ("s", "right"),
        ("what failed", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in results:
        table.add_row(
            r.id,
            "[green]pass[/]" if r.passed else "[bold red]FAIL[/]",
            str(r.model_calls),
            str(r.prompt_tokens),
            str(r.completion_tokens),
            "?" if r.cost_usd is None else f"{r.cost_usd:.4f}",
            f"{r.seconds:.1f}",
            escape("; ".join(r.failures)),
        )
    console.print(table)
    n = len(results) or 1
    passed = sum(r.passed for r in results)
    costs = [r.cost_usd for r in results]
    total = (
        "unknown"
        if any(c is None for c in costs)
        else f"{sum(c for c in costs if c is not None):.4f} USD"
    )
    console.print(
        f"{passed}/{len(results)} passed ({100 * passed / n:.0f}%); model calls per task "
        f"{sum(r.model_calls for r in results) / n:.2f}; prompt tokens per task "
        f"{sum(r.prompt_tokens for r in results) / n:.0f}; total cost {total}"
    )


def print_dry_run(console: Console, plan: Any) -> None:
    """The server's verdict: permissions, per-object action, diff, warnings, errors, and the totals."""
    from rich.markup import escape
    from rich.syntax import Syntax

    for missing in plan.missing_permissions:
        console.print(f"[bold red]not allowed[/] {escape(missing)}")
    if plan.missing_permissions:
        console.print(
            "the current identity lacks these permissions (kubectl auth can-i): nothing was dry-run"
        )
    for c in plan.changes:
        name = escape(c.manifest.ref.display())
        style = {"create": "green", "update": "yellow", "unchanged": "dim", "error": "bold red"}[
            c.action
        ]
        waits = (
            f" [dim](dry-run on the server once {escape(c.waits_for)} exists, before it is applied)[/]"
            if c.waits_for
            else ""
        )
        console.print(
            f"[{style}]{c.action}[/] {name}" + (f": {escape(c.error)}" if c.error else "") + waits
        )
        if c.diff:
            console.print(Syntax(c.diff, "diff", theme="ansi_dark", background_color="default"))
    n = plan.counts()
    console.print(
        f"create {n['create']}, update {n['update']}, unchanged {n['unchanged']}"
        + (f", errors {n['error']}" if n["error"] else "")
    )


def print_applied(console: Console, done: Any) -> None:
    """What the apply did: each object, the steps between (CRDs established), a failure and what was left."""
    from rich.markup import escape

    for step in done.steps:
        console.print(f"[dim]{escape(step)}[/]")
    for name in done.applied:
        console.print(f"[green]applied[/] {escape(name)}")
    for w in done.warnings:
        console.print(f"[yellow]warning[/] {escape(w)}")
    if done.failed:
        console.print(f"[bold red]failed[/] {escape(done.failed)}: {escape(done.error or '')}")
        for name in done.not_attempted:
            console.print(f"[yellow]not applied[/] {escape(name)}")
        return
    n = len(done.applied)
    console.print(f"[bold green]applied {n} object{'s' if n != 1 else ''}[/]")


@contextmanager
def rollout_progress(console: Console) -> Iterator[Callable[[str, int, int], None]]:
    """Progress bars for the watch stage: yields the callback kai.rollout.watch reports to."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(name: str, ready: int, desired: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(f"rollout {name}", total=max(desired, 1))
            bar.update(tasks[name], completed=ready, total=max(desired, 1))

        yield update


def print_rollouts(console: Console, results: Sequence[Any]) -> None:
    """Each rollout's outcome; for a failed one the reasons, the events and what the rollback did."""
    from rich.markup import escape

    for r in results:
        if r.done:
            console.print(f"[green]rolled out[/] {escape(r.name)} ({r.ready}/{r.desired} ready)")
            continue
        console.print(f"[bold red]rollout failed[/] {escape(r.name)}: {escape(r.message)}")
        for p in r.pod_problems:
            console.print(f"  {escape(p)}")
        for e in r.events:
            console.print(f"  [dim]event[/] {escape(e)}")
        if r.rollback:
            style = "yellow" if r.rolled_back else "bold red"
            console.print(f"  [{style}]{escape(r.rollback)}[/] ({escape(r.name)})")

"""The typer-free half of kai's command line: output choices, console helpers, and the bodies of
`kai review` and `kai validate`.

kai/cli.py declares every command's options with typer; importing typer and building a command's
click object cost about half of a one-file review. kai/direct.py parses a plain `kai review` or
`kai validate` itself and calls these functions without either; kai.cli's commands call them too,
so both ways run the same code. Nothing here imports typer.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from rich.console import Console

    from kai.models import Report, Rule, Severity
    from kai.policy.fix import FileFix


class Output(StrEnum):
    table = "table"
    compact = "compact"
    json = "json"
    yaml = "yaml"
    sarif = "sarif"
    github = "github"
    junit = "junit"


class Validator(StrEnum):
    auto = "auto"
    builtin = "builtin"
    kubeconform = "kubeconform"


class FailOn(StrEnum):
    info = "info"
    warning = "warning"
    error = "error"


def console_for(stderr: bool = False) -> Console:
    from kai.render import console

    # Piped or redirected output is never hard-wrapped: a log line stays one line.
    stream = sys.stderr if stderr else sys.stdout
    return console(stderr=stderr, highlight=False, soft_wrap=stderr or not stream.isatty())


def fail(message: str, code: int) -> NoReturn:
    from rich.markup import escape

    console_for(stderr=True).print(f"[bold red]error:[/] {escape(message)}")
    raise SystemExit(code)


def review(
    paths: list[str] | None,
    output: Output | None,
    explain: bool,
    fail_on: FailOn | None,
    enable: list[str] | None,
    disable: list[str] | None,
    policies: list[str] | None,
    namespace: str | None,
    hide_suppressed: bool,
    no_validate: bool,
    kubernetes_version: str | None,
    strict: bool,
    crd: list[str] | None,
    validator: Validator,
    cluster: bool,
    kubeconfig: str | None,
    context: str | None,
    apply_fixes: bool,
    baseline: Path | None,
    write_baseline: Path | None,
    allow_empty: bool,
) -> NoReturn:
    """`kai review`, its options as typer parsed them (kai.cli.review) or kai.direct did."""
    from kai.config import load_config
    from kai.errors import InputError
    from kai.models import Severity
    from kai.pipeline import SchemaOptions, fix_paths, rules_for
    from kai.pipeline import review as run_review

    config = load_config()
    rules = rules_for(config, enable or [], disable or [], policies or [])
    threshold = Severity(fail_on.value) if fail_on else config.review.fail_on
    if cluster:
        if paths:
            raise InputError("--cluster reviews what runs in a namespace: give no files with it")
        from kai.cluster.flow import review_live

        report = review_live(rules, kubeconfig, context, namespace or config.namespace)
        emit_report(report, rules, threshold, output, explain, not hide_suppressed)
        raise SystemExit(0 if report.summary(threshold).passed else 1)
    if not paths:
        raise InputError("give files, directories or - for stdin (or --cluster -n NAMESPACE)")
    if apply_fixes:
        if "-" in paths:
            raise InputError("--fix rewrites files: for standard input use `kai fix -`")
        fixed = fix_paths(paths, rules, config, namespace or config.namespace or "default")
        from kai.policy.fixfile import write_atomic

        for r in fixed:
            if r.changed:
                write_atomic(r.file, r.fixed)
        report_fixes(fixed, to_stderr=True)
    schema = SchemaOptions(not no_validate, kubernetes_version, strict, crd or [], validator.value)
    if any(p != "-" and Path(p, "Chart.yaml").is_file() for p in paths):
        from kai.helm.runner import renderer_notice  # 25 ms: only when a chart is among the paths

        if notice := renderer_notice(paths):
            console_for(stderr=True).print(notice, markup=False)
    report = run_review(
        paths, rules, namespace=namespace or config.namespace or "default", schema=schema
    )
    if not report.objects and not allow_empty:
        raise InputError(
            f"no Kubernetes objects found in {', '.join(paths)}"
            + (f" ({report.notes[0].message})" if report.notes else "")
        )
    from kai.policy import baseline as baselines

    if write_baseline is not None:
        count = baselines.write(write_baseline, report)
        console_for(stderr=True).print(
            f"wrote {count} finding{'s' if count != 1 else ''} to {write_baseline}", markup=False
        )
        raise SystemExit(0)
    if baseline is not None:
        report = baselines.apply(baselines.read(baseline), report)
    emit_report(report, rules, threshold, output, explain, not hide_suppressed)
    raise SystemExit(0 if report.summary(threshold).passed else 1)


def validate(
    paths: list[str],
    output: Output | None,
    kubernetes_version: str | None,
    strict: bool,
    crd: list[str] | None,
    validator: Validator,
) -> NoReturn:
    """`kai validate`, its options as typer parsed them (kai.cli.validate) or kai.direct did."""
    from kai.inputs import load_paths
    from kai.models import Report, Severity
    from kai.pipeline import SchemaOptions
    from kai.pipeline import validate as run_validate
    from kai.policy.catalog import load_rules

    rules = [r for r in load_rules() if r.schema is not None]
    manifests, notes = load_paths(paths)
    findings, schema_notes = run_validate(
        manifests,
        rules,
        SchemaOptions(True, kubernetes_version, strict, crd or [], validator.value),
    )
    report = Report(
        findings=findings,
        notes=notes + schema_notes,
        objects=[m.ref for m in manifests],
        rules=[r.id for r in rules],
    )
    emit_report(report, rules, Severity.ERROR, output, False, True)
    raise SystemExit(0 if report.summary(Severity.ERROR).passed else 1)


def emit_report(
    report: Report,
    rules: list[Rule],
    threshold: Severity,
    output: Output | None,
    explain: bool,
    show_suppressed: bool,
) -> None:
    """Write the report in the chosen format; a reader that goes away (`| head`) is not an error:
    the command still exits with its verdict."""
    from kai import render

    if output is None:
        output = Output.table if sys.stdout.isatty() else Output.compact
    try:
        if output is Output.table:
            render.print_report(
                console_for(), report, {r.id: r for r in rules}, threshold, explain, show_suppressed
            )
        elif output is Output.compact:
            for line in render.compact_lines(report, threshold, show_suppressed):
                sys.stdout.write(line + "\n")
            if explain:
                render.print_explanations(console_for(), report.active(), {r.id: r for r in rules})
        elif output is Output.github:
            for line in render.github_annotations(report, threshold):
                sys.stdout.write(line + "\n")
        elif output is Output.junit:
            sys.stdout.write(render.junit_xml(report, threshold))
        elif output is Output.json:  # written as it is made: never the whole report as one string
            render.write_json(render.report_data(report, threshold, lazy=True), sys.stdout.write)
        elif output is Output.yaml:
            sys.stdout.write(render.to_yaml(render.report_data(report, threshold)))
        else:
            render.write_json(render.sarif(report, rules, lazy=True), sys.stdout.write)
        sys.stdout.flush()
    except BrokenPipeError:
        discard_stdout()


def discard_stdout() -> None:
    """The reader of stdout went away: send the rest (and the interpreter's final flush) nowhere."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def report_fixes(results: list[FileFix], to_stderr: bool) -> None:
    from rich.markup import escape

    console = console_for(stderr=to_stderr)
    for r in results:
        if r.changed:
            console.print(r.diff(), markup=False, highlight=False, end="")
    applied = [c for r in results for c in r.changes]
    lines = [
        f"[green]fixed[/] {c.rule} {escape(c.object)}: {escape(c.description)}" for c in applied
    ]
    lines += [
        f"[yellow]not fixed[/] {d.rule} {escape(d.object)}: {escape(d.description)}"
        for r in results
        for d in r.declined
    ]
    lines += [f"[dim]note[/] {escape(n)}" for r in results for n in r.notes]
    for i in range(0, len(lines), 500):  # a print per line costs ~90 us; per 500 lines, ~20 us each
        console.print("\n".join(lines[i : i + 500]))
    changed = sum(r.changed for r in results)
    console.print(
        f"{len(applied)} fixes in {changed} of {len(results)} file{'s' if len(results) != 1 else ''}"
    )

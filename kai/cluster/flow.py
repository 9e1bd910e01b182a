"""The cluster flow: the stages of `kai apply` composed, with the person's confirmation between
diff and apply; `kai apply`, `kai generate --apply` and `kai review --cluster` call it. The stages
themselves are kai/cluster/stages.py (each a function of typed values) and kai/cluster/rollout.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kai.cluster.client import Cluster

if TYPE_CHECKING:
    from rich.console import Console

    from kai.cluster.stages import DryRun
    from kai.models import Report, Severity


def apply_flow(
    console: Console,
    confirm: Callable[[str], bool],
    manifests: list[Any],
    notes: list[Any],
    rules: list[Any],
    threshold: Severity,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    yes: bool,
    force_conflicts: bool,
    ignore_findings: bool,
    timeout: float,
    no_watch: bool,
    rollback: bool,
) -> int:
    """Review against the live namespace, dry-run on the server, diff, confirm, apply, watch: an exit code.

    `confirm` asks the person (a yes/no question; False when cancelled). Each stage below either
    lets the flow go on (None) or ends it with an exit code; nothing is written to the cluster
    before the person (or --yes) confirms."""
    cluster = Cluster(kubeconfig, context, namespace)
    stopped = _review_against_live(
        console, cluster, manifests, notes, rules, threshold, ignore_findings
    )
    if stopped is not None:
        return stopped
    plan = _server_dry_run(console, cluster, manifests, force_conflicts)
    stopped = _check_dry_run(console, plan, rules, threshold, ignore_findings)
    if stopped is None:
        stopped = _confirm_changes(console, confirm, plan, yes)
    if stopped is not None:
        return stopped
    return _apply_and_watch(console, cluster, plan, force_conflicts, timeout, no_watch, rollback)


def _review_against_live(
    console: Console,
    cluster: Cluster,
    manifests: list[Any],
    notes: list[Any],
    rules: list[Any],
    threshold: Severity,
    ignore_findings: bool,
) -> int | None:
    """Stage 1: kai's rules (with the live namespace as context) and the schemas, printed when
    anything is found; ExitCode.FINDINGS when they reach `threshold` and are not ignored."""
    from kai import render
    from kai.cluster.stages import live_context, mark_unknown
    from kai.errors import ExitCode
    from kai.pipeline import SchemaOptions, evaluate
    from kai.pipeline import validate as schema_validate

    live = live_context(cluster, manifests)
    report = evaluate(manifests, rules, notes, cluster.namespace, live.existing)
    report = mark_unknown(report, rules, live.unreadable, cluster.namespace)
    report.notes += live.notes()
    schema_findings, schema_notes = schema_validate(manifests, rules, SchemaOptions())
    report.findings += schema_findings
    report.notes += schema_notes
    if report.findings or live.unreadable:
        render.print_report(console, report, {r.id: r for r in rules}, threshold)
    if not report.summary(threshold).passed and not ignore_findings:
        console.print(
            "nothing applied: fix the findings above (kai fix), or pass --ignore-findings"
        )
        return ExitCode.FINDINGS
    return None


def _server_dry_run(
    console: Console, cluster: Cluster, manifests: list[Any], force_conflicts: bool
) -> DryRun:
    """Stage 2: name the context, server and namespaces, then dry-run every object on the
    server (nothing is written) and print the diff."""
    from rich.markup import escape

    from kai import render
    from kai.cluster.stages import dry_run

    console.print(
        f"[dim]context {escape(cluster.context)} · server {escape(cluster.server)} · "
        f"{escape(render.target_namespaces(manifests, cluster.namespace))}[/]"
    )
    with console.status("server-side dry run...", spinner="dots"):
        plan = dry_run(cluster, manifests, force_conflicts)
    render.print_dry_run(console, plan)
    return plan


def _check_dry_run(
    console: Console, plan: DryRun, rules: list[Any], threshold: Severity, ignore_findings: bool
) -> int | None:
    """Stage 3: ExitCode.CLUSTER when the server refused the dry run; the admission warnings it
    returned as findings, and ExitCode.FINDINGS when they reach `threshold` and are not
    ignored."""
    from kai import render
    from kai.cluster.stages import admission_findings
    from kai.errors import ExitCode

    if not plan.ok:
        return ExitCode.CLUSTER
    server = admission_findings(plan, rules)
    if server.findings:
        render.print_report(console, server, {r.id: r for r in rules}, threshold)
        if not server.summary(threshold).passed and not ignore_findings:
            console.print(
                "nothing applied: the server's warnings reach --fail-on; fix them or pass --ignore-findings"
            )
            return ExitCode.FINDINGS
    return None


def _confirm_changes(
    console: Console, confirm: Callable[[str], bool], plan: DryRun, yes: bool
) -> int | None:
    """Stage 4: 0 when there is nothing to create or update; else the person confirms the
    counts (unless --yes). Without a terminal to ask on, ExitCode.USAGE; a no,
    ExitCode.CANCELLED."""
    from kai.errors import ExitCode

    counts = plan.counts()
    if counts["create"] + counts["update"] == 0:
        console.print("nothing to apply: the cluster already matches")
        return 0
    if not yes:
        if not sys.stdin.isatty():
            console.print("nothing applied: no terminal to confirm on; rerun with --yes to apply")
            return ExitCode.USAGE
        if not confirm(f"apply {counts['create']} creations and {counts['update']} updates?"):
            console.print("nothing applied")
            return ExitCode.CANCELLED
    return None


def _apply_and_watch(
    console: Console,
    cluster: Cluster,
    plan: DryRun,
    force_conflicts: bool,
    timeout: float,
    no_watch: bool,
    rollback: bool,
) -> int:
    """Stage 5: apply the dry-run plan, then (unless --no-watch) watch what was applied roll
    out for up to `timeout` seconds, rolling back a failed rollout when asked; ExitCode.CLUSTER
    when an apply or a rollout fails, else 0."""
    from kai import render
    from kai.cluster import rollout
    from kai.cluster.stages import apply as run_apply
    from kai.errors import ExitCode

    done = run_apply(cluster, plan, force_conflicts)
    render.print_applied(console, done)
    if done.failed:
        return ExitCode.CLUSTER
    if no_watch:
        return 0
    applied = [c.manifest for c in plan.changes if c.manifest.ref.display() in set(done.applied)]
    with render.rollout_progress(console) as update:
        rollouts = rollout.watch(cluster, applied, timeout, on_progress=update, roll_back=rollback)
    render.print_rollouts(console, rollouts)
    if any(not r.done for r in rollouts):
        return ExitCode.CLUSTER
    return 0


def review_live(
    rules: list[Any], kubeconfig: str | None, context: str | None, namespace: str | None
) -> Report:
    """The live objects of one namespace, evaluated as they are (read-only; Secrets never read)."""
    from kai.cluster.stages import review_cluster

    return review_cluster(Cluster(kubeconfig, context, namespace), rules)

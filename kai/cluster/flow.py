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

    `confirm` asks the person (a yes/no question; False when cancelled)."""
    from rich.markup import escape

    from kai import render
    from kai.cluster import rollout
    from kai.cluster.stages import admission_findings, dry_run, live_context, mark_unknown
    from kai.cluster.stages import apply as run_apply
    from kai.errors import ExitCode
    from kai.pipeline import SchemaOptions, evaluate
    from kai.pipeline import validate as schema_validate

    cluster = Cluster(kubeconfig, context, namespace)
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
    console.print(
        f"[dim]context {escape(cluster.context)} · server {escape(cluster.server)} · "
        f"{escape(render.target_namespaces(manifests, cluster.namespace))}[/]"
    )
    with console.status("server-side dry run...", spinner="dots"):
        plan = dry_run(cluster, manifests, force_conflicts)
    render.print_dry_run(console, plan)
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

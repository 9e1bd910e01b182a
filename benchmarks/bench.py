"""kai's speed, measured: throughput, cold start and peak memory of `kai review`.

    python benchmarks/bench.py [--sizes 1000 10000] [--repeat 5]

Generates a corpus of mixed kinds (workloads with and without problems, Services,
Ingresses, HPAs, PDBs, NetworkPolicies, RBAC, ConfigMaps), then runs the installed
`kai` as a person would. Prints numbers; asserts nothing (tests do that).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

KINDS = (
    "Deployment",
    "Service",
    "ConfigMap",
    "Ingress",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "StatefulSet",
    "CronJob",
    "Role",
)


def _labels(i: int) -> dict[str, str]:
    return {"app.kubernetes.io/name": f"app{i}", "app.kubernetes.io/instance": f"app{i}"}


def _container(i: int, hardened: bool) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": "app",
        "image": f"ghcr.io/acme/app{i}:1.{i % 7}.0" if hardened else f"app{i}:latest",
        "ports": [{"name": "http", "containerPort": 8080}],
    }
    if hardened:
        c |= {
            "imagePullPolicy": "IfNotPresent",
            "resources": {
                "requests": {"cpu": "100m", "memory": "128Mi"},
                "limits": {"cpu": "500m", "memory": "256Mi"},
            },
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}},
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
        }
    return c


def _pod_spec(i: int, hardened: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [_container(i, hardened)]}
    if hardened:
        spec |= {
            "serviceAccountName": f"app{i}",
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
        }
    return spec


def make_object(n: int) -> dict[str, Any]:
    """The n-th object of the corpus; every other workload is a careless first draft."""
    kind = KINDS[n % len(KINDS)]
    i = n // len(KINDS)
    hardened = i % 2 == 0
    meta = {"name": f"app{i}", "namespace": f"team{i % 20}", "labels": _labels(i)}
    template = {"metadata": {"labels": _labels(i)}, "spec": _pod_spec(i, hardened)}
    selector = {"matchLabels": _labels(i)}
    if kind == "Deployment":
        return {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": meta,
            "spec": {"replicas": 2, "selector": selector, "template": template},
        }
    if kind == "StatefulSet":
        return {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": {**meta, "name": f"db{i}"},
            "spec": {"serviceName": f"app{i}", "selector": selector, "template": template},
        }
    if kind == "CronJob":
        job = {"template": {**template, "spec": {**template["spec"], "restartPolicy": "OnFailure"}}}
        return {
            "apiVersion": "batch/v1",
            "kind": kind,
            "metadata": meta,
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": job}},
        }
    if kind == "Service":
        return {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": meta,
            "spec": {
                "selector": _labels(i),
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        }
    if kind == "ConfigMap":
        return {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": meta,
            "data": {f"key{k}": f"value {k}" for k in range(10)},
        }
    if kind == "Ingress":
        backend = {"service": {"name": f"app{i}", "port": {"number": 80}}}
        spec: dict[str, Any] = {
            "rules": [
                {
                    "host": f"app{i}.example.com",
                    "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                }
            ]
        }
        if hardened:
            spec["tls"] = [{"hosts": [f"app{i}.example.com"], "secretName": f"app{i}-tls"}]
        return {"apiVersion": "networking.k8s.io/v1", "kind": kind, "metadata": meta, "spec": spec}
    if kind == "HorizontalPodAutoscaler":
        return {
            "apiVersion": "autoscaling/v2",
            "kind": kind,
            "metadata": meta,
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": f"app{i}",
                },
                "minReplicas": 2,
                "maxReplicas": 5,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70},
                        },
                    }
                ],
            },
        }
    if kind == "PodDisruptionBudget":
        return {
            "apiVersion": "policy/v1",
            "kind": kind,
            "metadata": meta,
            "spec": {"minAvailable": 1, "selector": selector},
        }
    if kind == "NetworkPolicy":
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": kind,
            "metadata": meta,
            "spec": {
                "podSelector": selector,
                "policyTypes": ["Ingress"],
                "ingress": [{"ports": [{"port": 8080}]}],
            },
        }
    rules = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]
    if not hardened:
        rules.append({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]})
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta,
        "rules": rules,
    }


def write_corpus(directory: Path, count: int, per_file: int = 100) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    for start in range(0, count, per_file):
        objs = [make_object(n) for n in range(start, min(count, start + per_file))]
        (directory / f"part-{start // per_file:04d}.yaml").write_text(
            yaml.dump_all(objs, Dumper=dumper, sort_keys=False)
        )


# Children run as a person's shell would: bytecode caching on (some CI images turn it off, which
# would charge every run for compiling kai), and kai's own caches warm after the first run.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run(argv: list[str]) -> tuple[float, int, int]:
    """Wall seconds, exit code and peak RSS (KiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=CHILD_ENV
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, proc.returncode, usage.ru_maxrss


def best(argv: list[str], repeat: int) -> tuple[float, float, int]:
    run(argv)  # warm-up: bytecode and kai's rule cache
    runs = [run(argv) for _ in range(repeat)]
    walls = [r[0] for r in runs]
    return min(walls), statistics.median(walls), max(r[2] for r in runs)


def kai_binary() -> str:
    here = Path(sys.executable).parent / "kai"
    return str(here) if here.exists() else (shutil.which("kai") or "kai")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    kai = kai_binary()
    example = str(
        Path(__file__).resolve().parent.parent
        / "examples"
        / "agent-hardened"
        / "30-deployment.yaml"
    )
    print(f"kai: {kai}   python: {sys.version.split()[0]}   cores: {os.cpu_count()}")
    print()
    print("cold start (best / median of", args.repeat, "runs, wall)")
    for label, argv in (
        ("kai --help", [kai, "--help"]),
        ("kai review <one file>", [kai, "review", example]),
        ("kai review <one file> -o json", [kai, "review", example, "-o", "json"]),
        ("kai explain <one file>", [kai, "explain", example]),
        (
            "kai run -c '...' (suggest-only)",
            [kai, "run", "-c", "scale deploy/agent --replicas=3", "--approval", "suggest-only"],
        ),
    ):
        lo, med, rss = best(argv, args.repeat)
        print(f"  {label:34s} {lo:6.3f} s / {med:6.3f} s   peak {rss / 1024:6.1f} MiB")
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from kai.cli import main\ntry: main(['review', sys.argv[1], '-o', 'json'])\nexcept SystemExit: pass\n"
            "heavy = [m for m in ('litellm', 'kubernetes', 'openai', 'httpx') if m in sys.modules]\nprint(','.join(heavy) or 'none', file=sys.stderr)",
            example,
        ],
        capture_output=True,
        text=True,
    )
    print(f"  heavy modules imported by review:   {check.stderr.strip().splitlines()[-1]}")
    print()
    print("throughput: kai review DIR -o json (one process, end to end, including YAML parsing)")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            corpus = Path(tmp) / f"corpus-{size}"
            write_corpus(corpus, size)
            mb = sum(f.stat().st_size for f in corpus.iterdir()) / 1e6
            lo, med, rss = best(
                [kai, "review", str(corpus), "-o", "json"], max(1, args.repeat // 2)
            )
            print(
                f"  {size:6d} objects ({mb:5.1f} MB)  {lo:6.2f} s   {size / lo:8.0f} objects/s   peak {rss / 1024:6.1f} MiB"
            )
            checkov = shutil.which("checkov")
            if checkov and size <= 1000:
                wall, _, _ = run(
                    [
                        checkov,
                        "-d",
                        str(corpus),
                        "--framework",
                        "kubernetes",
                        "--quiet",
                        "--compact",
                    ]
                )
                print(
                    f"  checkov on the same {size}: {wall:6.2f} s  {size / wall:6.0f} objects/s  -> kai is {wall / lo:5.1f}x faster"
                )
        if not shutil.which("checkov"):
            print(
                "  checkov not installed: the issue's reference is about 26 s for 1,000 objects (38 objects/s) here"
            )
        print()
        in_process(Path(tmp), args.sizes)
    print()
    ops_costs()
    print()
    generate_costs(args.repeat)
    print()
    import_costs()


OVERHEAD = """
import os, sys, time
t0 = time.perf_counter()
import vcr
t1 = time.perf_counter()
os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key-000000000")
from kai.cli import main
recorder = vcr.VCR(cassette_library_dir=sys.argv[1], record_mode="none", match_on=["method", "scheme", "host", "port", "path"])
with recorder.use_cassette(sys.argv[2]):
    try:
        main(["generate", "deploy the agent", "--model", "openai/gpt-4.1-mini", "--no-cache", "-o", os.devnull])
    except SystemExit:
        pass
print(time.perf_counter() - t0 - (t1 - t0), "litellm" in sys.modules, file=sys.stderr)
"""


def generate_costs(repeat: int) -> None:
    """kai's own cost around a model: recorded answers replayed, so model latency is zero."""
    cassettes = Path(__file__).resolve().parent.parent / "tests" / "cassettes"
    if not (cassettes / "openai_clean_draft.yaml").is_file():
        return
    try:
        import vcr  # noqa: F401
    except ImportError:
        print("generate: vcrpy not installed (pip install -e '.[dev]'): skipped")
        return
    print(
        "kai generate, model answers replayed (vcrpy): kai's own overhead per request, cold process"
    )
    for cassette, label in (
        ("openai_clean_draft.yaml", "clean first draft, 1 call"),
        ("openai_flawed_then_repaired.yaml", "flawed draft, 2 calls"),
    ):
        walls = []
        imported = False
        for _ in range(repeat):
            proc = subprocess.run(
                [sys.executable, "-c", OVERHEAD, str(cassettes), cassette],
                capture_output=True,
                text=True,
                env=CHILD_ENV,
            )
            wall, flag = proc.stderr.strip().splitlines()[-1].split()
            walls.append(float(wall))
            imported = imported or flag == "True"
        print(
            f"  {label:28s} best {min(walls):5.2f} s, median {statistics.median(walls):5.2f} s (vcrpy's own import excluded); litellm imported: {imported}"
        )
    from contextlib import AbstractContextManager
    from typing import Any as _Any

    import vcr as _vcr

    from kai.config import Config
    from kai.evaluation import load_tasks, run_eval
    from kai.generate import generate
    from kai.model.client import LLM, Settings
    from kai.policy.catalog import load_rules

    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key-000000000")
    recorder = _vcr.VCR(
        cassette_library_dir=str(cassettes),
        record_mode="none",
        match_on=["method", "scheme", "host", "port", "path"],
    )
    rules = load_rules()
    settings = Settings(model="openai/gpt-4.1-mini", cache=False)

    def context(task: _Any) -> AbstractContextManager[_Any]:
        cassette: AbstractContextManager[_Any] = recorder.use_cassette(f"eval/{task.id}.yaml")
        return cassette

    tasks = load_tasks(cassettes.parent.parent / "examples" / "tasks")
    results = run_eval(
        tasks, lambda t: generate(t.request, settings, rules, Config(), llm=LLM(settings)), context
    )
    n = len(results)
    one = sum(r.model_calls == 1 for r in results)
    print(
        f"  eval suite ({n} tasks, recorded answers): {sum(r.passed for r in results)}/{n} pass; model calls per task "
        f"{sum(r.model_calls for r in results) / n:.2f} ({one} tasks in 1 call, max {max(r.model_calls for r in results)}); "
        f"prompt tokens per task {sum(r.prompt_tokens for r in results) / n:.0f}; kai's time per task "
        f"{sum(r.seconds for r in results) / n:.2f} s in process"
    )


def ops_costs() -> None:
    """kai's kubectl classifier: time per command over the test suite's table."""
    from kai.ops.classify import classify, split_line

    table = Path(__file__).resolve().parent.parent / "tests" / "data" / "ops" / "classify.txt"
    lines = [
        split_line(raw.rpartition(" | ")[0])
        for raw in table.read_text(encoding="utf-8").splitlines()
        if raw.strip() and not raw.startswith("#")
    ]
    rounds = 50
    start = time.perf_counter()
    for _ in range(rounds):
        for argv in lines:
            classify(argv)
    wall = time.perf_counter() - start
    per = wall / (rounds * len(lines)) * 1e6
    print(f"kubectl classifier: {len(lines)} command lines x {rounds}: {per:5.1f} us per command")


def in_process(tmp: Path, sizes: list[int]) -> None:
    """Stage costs measured inside one process: schema validation and CEL evaluation."""
    from kai.inputs import load_paths
    from kai.policy.catalog import load_rules
    from kai.policy.engine import Engine
    from kai.policy.validate import validate

    rules = load_rules()
    cel_rules = [r for r in rules if r.cel is not None and r.enabled]
    print("stages in one process (corpus already on disk)")
    for size in sizes:
        manifests, _ = load_paths([str(tmp / f"corpus-{size}")])
        start = time.perf_counter()
        result = validate(manifests, backend="builtin")
        wall = time.perf_counter() - start
        print(
            f"  schema validation, builtin, {size:6d} objects: {wall:6.2f} s  {size / wall:8.0f} objects/s"
            f"  ({len(result.findings)} errors)"
        )
        if shutil.which("kubeconform"):
            start = time.perf_counter()
            validate(manifests, backend="kubeconform")
            wall = time.perf_counter() - start
            print(
                f"  schema validation, kubeconform, {size:6d} objects: {wall:6.2f} s  {size / wall:8.0f} objects/s"
            )
        engine = Engine(cel_rules)
        from kai.policy.workload import pod_spec

        evaluations = sum(
            len(engine._plan(m.ref.kind, pod_spec(m.obj) is not None).cel_rules) for m in manifests
        )
        start = time.perf_counter()
        engine.evaluate(manifests)
        wall = time.perf_counter() - start
        print(
            f"  CEL rules ({len(cel_rules)}), {size:6d} objects: {wall:6.2f} s, {evaluations} rule evaluations,"
            f" {wall / max(1, evaluations) * 1e6:5.2f} us per rule per object"
        )
    if not shutil.which("kubeconform"):
        print("  kubeconform not on PATH: its backend was not measured")


def import_costs() -> None:
    """What each dependency costs at import (python -X importtime, cumulative, best of 3)."""
    print("import cost of each dependency (cumulative, best of 3)")
    for module, when in (
        ("typer", "every command"),
        ("yaml_rs", "review (fast YAML path)"),
        ("cel_expr_python.cel", "review (CEL rules)"),
        ("jsonschema_rs", "review / validate (schema)"),
        ("rich.console", "human output"),
        ("yaml", "careful YAML path; config and rule files on a cache miss"),
        ("pydantic", "rule and config validation on a cache miss"),
        ("ruamel.yaml", "kai fix"),
        ("celpy", "not used: the pure-Python CEL measured against cel-expr-python"),
    ):
        best = None
        for _ in range(3):
            proc = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", f"import {module}"],
                capture_output=True,
                text=True,
                env=CHILD_ENV,
            )
            lines = [ln for ln in proc.stderr.splitlines() if ln.split("|")[-1].strip() == module]
            if proc.returncode != 0 or not lines:
                break
            us = int(lines[-1].split("|")[1])
            best = us if best is None else min(best, us)
        shown = f"{best / 1000:6.1f} ms" if best is not None else "not installed"
        print(f"  {module:22s} {shown:>9s}   needed by: {when}")


if __name__ == "__main__":
    main()

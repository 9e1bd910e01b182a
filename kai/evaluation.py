"""`kai eval`: English requests with machine-checkable expectations, in the spirit of k8s-bench.

Each task in examples/tasks/ is a request plus what a correct answer must contain (kinds, image,
ports, replicas, probe paths, exposure, ...). kai generates for each, checks the expectations,
and reports pass rate, model calls, tokens and cost per task.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kai.errors import InputError, KaiError
from kai.generate import Generated
from kai.manifests import load_text
from kai.policy.workload import iter_containers, pod_spec


@dataclass(slots=True)
class Task:
    id: str
    request: str
    expect: dict[str, Any]


@dataclass(slots=True)
class TaskResult:
    id: str
    passed: bool
    failures: list[str] = field(default_factory=list)
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    seconds: float = 0.0


def load_tasks(directory: Path) -> list[Task]:
    from kai.yamlio import load_one

    if not directory.is_dir():
        raise InputError(f"{directory}: no task directory (pass --tasks DIR)")
    tasks = []
    for f in sorted(directory.glob("*.yaml")):
        data = load_one(f.read_text(encoding="utf-8"))
        if (
            not isinstance(data, dict)
            or not data.get("request")
            or not isinstance(data.get("expect"), dict)
        ):
            raise InputError(f"{f}: a task needs `request` and an `expect` mapping")
        tasks.append(Task(str(data.get("id") or f.stem), str(data["request"]), data["expect"]))
    if not tasks:
        raise InputError(f"{directory}: no *.yaml tasks")
    return tasks


def _containers(objs: Sequence[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for obj in objs:
        found = pod_spec(obj)
        if found:
            for _, _, c in iter_containers(found[0], ("containers",)):
                yield c


def _map(value: Any) -> dict[str, Any]:
    """A mapping, or empty: a model may write a scalar where a mapping belongs."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    """A list, or empty: a model may write `ports: 8080` where a list belongs."""
    return value if isinstance(value, list) else []


@dataclass(slots=True)
class _Answer:
    """The model's answer as the expectation checks see it."""

    result: Generated
    objs: list[dict[str, Any]]
    containers: list[dict[str, Any]]

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        return [o for o in self.objs if o.get("kind") in kinds]


def _kinds(e: dict[str, Any], a: _Answer) -> list[str]:
    kinds = [o.get("kind") for o in a.objs]
    return [f"no {kind}" for kind in e.get("kinds", []) if kind not in kinds]


def _images(e: dict[str, Any], a: _Answer) -> list[str]:
    images = [str(c.get("image", "")) for c in a.containers]
    failures = []
    if "image" in e and e["image"] not in images:
        failures.append(f"image {e['image']} not used (got {images})")
    if "image_prefix" in e and not any(
        i.startswith(e["image_prefix"]) and not i.endswith(":latest") for i in images
    ):
        failures.append(f"no pinned image starting with {e['image_prefix']}")
    return failures


def _ports(e: dict[str, Any], a: _Answer) -> list[str]:
    ports = {
        p.get("containerPort")
        for c in a.containers
        for p in _list(c.get("ports"))
        if isinstance(p, dict)
    }
    return [f"port {port} not declared" for port in e.get("ports", []) if port not in ports]


def _replicas(e: dict[str, Any], a: _Answer) -> list[str]:
    hpa_min = [_map(h.get("spec")).get("minReplicas") for h in a.of_kind("HorizontalPodAutoscaler")]
    failures = []
    if "replicas" in e:
        declared = [
            _map(o.get("spec")).get("replicas") for o in a.of_kind("Deployment", "StatefulSet")
        ]
        if e["replicas"] not in declared + hpa_min and not (
            e["replicas"] == 1 and None in declared
        ):
            failures.append(f"replicas {e['replicas']} not found (got {declared or hpa_min})")
    if "min_replicas" in e and e["min_replicas"] not in hpa_min:
        failures.append(f"no HPA with minReplicas {e['min_replicas']}")
    return failures


def _probes(e: dict[str, Any], a: _Answer) -> list[str]:
    failures = []
    for probe, path in (e.get("probes") or {}).items():
        paths = [
            _map(_map(c.get(f"{probe}Probe")).get("httpGet")).get("path") for c in a.containers
        ]
        if path not in paths:
            failures.append(f"{probe} probe does not check {path}")
    return failures


def _exposed(e: dict[str, Any], a: _Answer) -> list[str]:
    return _exposure(e.get("exposure"), a.objs)


def _namespace(e: dict[str, Any], a: _Answer) -> list[str]:
    if "namespace" in e and any(
        _map(o.get("metadata")).get("namespace") != e["namespace"] for o in a.objs
    ):
        return [f"not every object is in namespace {e['namespace']}"]
    return []


def _schedule(e: dict[str, Any], a: _Answer) -> list[str]:
    if "schedule" in e and e["schedule"] not in [
        _map(o.get("spec")).get("schedule") for o in a.objs
    ]:
        return [f"no CronJob on schedule {e['schedule']}"]
    return []


def _secret_ref(e: dict[str, Any], a: _Answer) -> list[str]:
    if "secret_ref" not in e:
        return []
    refs = {
        _map(_map(env.get("valueFrom")).get("secretKeyRef")).get("name")
        for c in a.containers
        for env in _list(c.get("env"))
        if isinstance(env, dict)
    } | {
        _map(f.get("secretRef")).get("name")
        for c in a.containers
        for f in _list(c.get("envFrom"))
        if isinstance(f, dict)
    }
    return [] if e["secret_ref"] in refs else [f"Secret {e['secret_ref']} is not referenced"]


def _evaluator_clean(e: dict[str, Any], a: _Answer) -> list[str]:
    if e.get("evaluator_clean", True) and a.result.failing:
        return ["evaluator: " + ", ".join(sorted({f.rule for f in a.result.failing}))]
    return []


def _schema_valid(e: dict[str, Any], a: _Answer) -> list[str]:
    report = a.result.report
    if (
        e.get("schema_valid", True)
        and report
        and any(f.rule.startswith("KAI-SCH") for f in report.active())
    ):
        return ["schema errors"]
    return []


def _some_objects(e: dict[str, Any], a: _Answer) -> list[str]:
    if a.objs:
        return []
    questions = a.result.plan.questions
    return ["no objects" + (f" (the model asked: {questions})" if questions else "")]


# A task's `expect:` keys and the check that reads each, in the order failures are reported.
_EXPECTATIONS: tuple[Callable[[dict[str, Any], _Answer], list[str]], ...] = (
    _kinds,  # kinds
    _images,  # image, image_prefix
    _ports,  # ports
    _replicas,  # replicas, min_replicas
    _probes,  # probes
    _exposed,  # exposure
    _namespace,  # namespace
    _schedule,  # schedule
    _secret_ref,  # secret_ref
    _evaluator_clean,  # evaluator_clean (default true)
    _schema_valid,  # schema_valid (default true)
    _some_objects,
)


def check(task: Task, result: Generated) -> list[str]:
    """What the answer got wrong against the task's expectations (empty: it passes)."""
    objs = [m.obj for m in load_text(result.yaml, "answer.yaml")[0]] if result.yaml else []
    answer = _Answer(result, objs, list(_containers(objs)))
    return [
        failure for expectation in _EXPECTATIONS for failure in expectation(task.expect, answer)
    ]


def _exposure(expected: str | None, objs: Sequence[dict[str, Any]]) -> list[str]:
    if not expected:
        return []
    services = [o for o in objs if o.get("kind") == "Service"]
    ingresses = [o for o in objs if o.get("kind") == "Ingress"]
    types = {_map(s.get("spec")).get("type", "ClusterIP") for s in services}
    if expected == "none":
        return ["a Service exposes a workload that serves no traffic"] if services else []
    if expected == "ClusterIP":
        bad = types - {"ClusterIP"}
        return (
            (["expected ClusterIP only, got " + ", ".join(sorted(bad))] if bad else [])
            + (["no Service"] if not services else [])
            + (["an Ingress exposes an internal service"] if ingresses else [])
        )
    if expected == "headless":
        return (
            []
            if any(_map(s.get("spec")).get("clusterIP") == "None" for s in services)
            else ["no headless Service"]
        )
    if expected.startswith("ingress:"):
        host = expected.split(":", 1)[1]
        for ing in ingresses:
            spec = _map(ing.get("spec"))
            hosts = {_map(r).get("host") for r in _list(spec.get("rules"))}
            tls_hosts = {h for t in _list(spec.get("tls")) for h in _list(_map(t).get("hosts"))}
            if host in hosts and host in tls_hosts:
                return []
        return [f"no TLS Ingress for {host}"]
    return [f"unknown exposure expectation {expected!r}"]


def run_eval(
    tasks: Sequence[Task],
    run: Callable[[Task], Generated],
    context: Callable[[Task], AbstractContextManager[Any]] | None = None,
) -> list[TaskResult]:
    """Run every task; a task whose model call fails, or on whose answer kai itself fails, is a
    failed task with the reason, never a crashed run: the other tasks still run and every result
    gathered is kept."""
    results = []
    for task in tasks:
        start = time.perf_counter()
        generated: Generated | None = None
        try:
            with context(task) if context else nullcontext():
                generated = run(task)
            failures = check(task, generated)
        except KaiError as err:
            failures = [err.message]
        except Exception as err:  # one task's internal error must not abort the others
            detail = str(err).splitlines()[0] if str(err) else ""
            failures = [f"internal error: {type(err).__name__}{': ' + detail if detail else ''}"]
        results.append(
            TaskResult(
                task.id,
                generated is not None and not failures,
                failures,
                generated.model_calls if generated else 0,
                generated.prompt_tokens if generated else 0,
                generated.completion_tokens if generated else 0,
                generated.cost_usd if generated else 0.0,
                time.perf_counter() - start,
            )
        )
    return results


@dataclass(slots=True)
class Repeated:
    """K runs of the same tasks: answers vary between runs, so one run's pass rate is a sample."""

    repeat: int
    passes: dict[str, int]  # task id -> runs (of `repeat`) in which it passed
    pass_at_1: float  # the expected pass rate of one run: mean over tasks of passes / K
    pass_hat_k: float  # pass^K: the share of tasks that passed in every one of the K runs


def repeated(runs: Sequence[Sequence[TaskResult]]) -> Repeated:
    """pass@1 and pass^K over K runs of the same tasks (K = len(runs))."""
    k = len(runs)
    if k == 0:
        raise ValueError("no runs")
    passes: dict[str, int] = {}
    for results in runs:
        for r in results:
            passes[r.id] = passes.get(r.id, 0) + int(r.passed)
    n = len(passes) or 1
    return Repeated(
        k,
        passes,
        sum(c / k for c in passes.values()) / n,
        sum(c == k for c in passes.values()) / n,
    )

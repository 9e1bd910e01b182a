"""Bounded time under hostile sizes: kai's commands on ~50 MB inputs, timed as a person runs them.

    python benchmarks/hostile.py [--commands review validate fix explain package] [--only NAME]

Generates each input in a temporary directory (nothing is shipped), runs the `kai` of this
checkout (python -m kai) with a 120 s cap, and prints wall time, exit code and the last line
of output per (input, command), with its CPU seconds and peak RSS (wall time alone says more
about the machine's other load than about kai). The goal is every run under 20 s on a 2-core machine with an
exit code of 0, 1 or 2. Prints numbers; asserts nothing (tests/test_hostile.py does that on
small inputs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def configmaps(path: Path, count: int = 110_000) -> None:
    """110,000 small ConfigMaps in one file (~50 MB)."""
    with path.open("w") as f:
        for i in range(count):
            f.write(
                f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n"
                f"  labels: {{app: a{i % 50}}}\ndata:\n  key: value-{i}\n"
                f"  other: {'x' * 300}\n"
            )


def flow_line(path: Path, size: int = 50 * MB) -> None:
    """One ConfigMap whose data is a single flow-style line of ~50 MB."""
    entries = []
    n, total = 0, 0
    while total < size:
        e = f'"k{n}": "{"v" * 40}"'
        entries.append(e)
        total += len(e) + 2
        n += 1
    path.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: flow}\ndata: {"
        + ", ".join(entries)
        + "}\n"
    )


def json_list(path: Path, count: int = 60_000) -> None:
    """A JSON List of ~60,000 Deployments (~50 MB), as kubectl get -o json writes it."""
    items = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": f"d{i}", "labels": {"app": f"d{i}"}},
            "spec": {
                "selector": {"matchLabels": {"app": f"d{i}"}},
                "template": {
                    "metadata": {"labels": {"app": f"d{i}"}},
                    "spec": {"containers": [{"name": "c", "image": f"nginx:1.{i % 20}"}]},
                },
            },
        }
        for i in range(count)
    ]
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=1))


def non_objects(path: Path, count: int = 100_000) -> None:
    """100,000 tiny documents that are not objects (each a note in the table view)."""
    path.write_text("".join(f"--- {i}\n" if i % 2 else "---\n- x\n" for i in range(count)))


def many_keys(path: Path, count: int = 1_000_000) -> None:
    """One ConfigMap with a million keys (~30 MB)."""
    with path.open("w") as f:
        f.write("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: wide\ndata:\n")
        for i in range(count):
            f.write(f"  key{i}: value{i}\n")


def anchors(path: Path, count: int = 20_000) -> None:
    """Deployments sharing anchors (the careful path), ~20 MB."""
    with path.open("w") as f:
        for i in range(count):
            f.write(
                f"---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d{i}\n"
                f"  labels: &l {{app: d{i}}}\nspec:\n  selector:\n    matchLabels: *l\n"
                f"  template:\n    metadata:\n      labels: *l\n    spec:\n      containers:\n"
                f"        - name: c\n          image: nginx:1.27\n          args: [{'a, ' * 150}b]\n"
            )


def credential_shapes(path: Path, size: int = 20 * MB) -> None:
    """A ConfigMap whose values are near-misses of KAI-CFG-003's token and URL patterns (~40 MB):
    quadratic for a backtracking regular expression, linear for kai."""
    n = size // 8
    path.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shapes}\ndata:\n"
        f"  jwt: '{'-eyJ' * (n // 4)}.eyJ'\n  url: '{'x1' * (n // 2)}://'\n"
        f"  pem: '{'-----BEGIN A ' * (n // 13)}'\n"
    )


INPUTS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "credential-shapes": ("shapes.yaml", credential_shapes),
    "configmaps": ("configmaps.yaml", configmaps),
    "flow-line": ("flow.yaml", flow_line),
    "json-list": ("list.json", json_list),
    "non-objects": ("docs.yaml", non_objects),
    "many-keys": ("wide.yaml", many_keys),
    "anchors": ("anchors.yaml", anchors),
}
COMMANDS = {
    "review": ["review"],
    "review-json": ["review", "-o", "json"],
    "validate": ["validate"],
    "fix": ["fix", "--dry-run"],
    "explain": ["explain", "--offline"],
    "package": ["package", "helm", "--name", "big", "-o", "{out}"],
}


def run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> tuple[Any, ...]:
    """(wall s, CPU s, peak MiB, exit code, output) of one child, killed after timeout."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        killer = threading.Timer(timeout, child.kill)
        killer.start()
        _, status, usage = os.wait4(child.pid, 0)
        killer.cancel()
        took = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace").strip()
    if took >= timeout:
        return (
            took,
            usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss / 1024,
            -1,
            f"timed out after {timeout:.0f} s",
        )
    return took, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, child.returncode, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", nargs="+", default=list(COMMANDS), choices=list(COMMANDS))
    parser.add_argument("--only", nargs="+", default=list(INPUTS), choices=list(INPUTS))
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "KAI_NO_CACHE": "1"}
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"{'input':<17} {'MB':>5} {'command':<12} {'wall s':>7} {'CPU s':>6} {'MiB':>5} {'exit':>4}"
        "  last line"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only:
            file, make = INPUTS[name]
            path = Path(tmp) / file
            make(path)
            size = path.stat().st_size / MB
            for command in args.commands:
                out = Path(tmp) / f"chart-{name}"
                argv = [a.replace("{out}", str(out)) for a in COMMANDS[command]]
                took, cpu, peak, code, text = run(
                    [sys.executable, "-m", "kai", *argv, str(path)], env, Path(tmp), args.timeout
                )
                last = text.splitlines()[-1][:70] if text else ""
                print(
                    f"{name:<17} {size:5.1f} {command:<12} {took:7.1f} {cpu:6.1f} {peak:5.0f}"
                    f" {code:>4}  {last}",
                    flush=True,
                )
            path.unlink()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

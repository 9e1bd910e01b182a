"""How kai's cost grows with input size, as ratios against floors measured in the same run.

    python benchmarks/scale.py [--sizes 1000 10000 50000] [--repeat 3] > scale.md
    python benchmarks/scale.py --startup-only     # just the start-up rows (a few seconds)

Every figure is CPU seconds (user + system) of one child process, best of --repeat, and its peak
RSS; a ratio divides kai's CPU by a floor's on the same files: parsing with libyaml (PyYAML's C
loader), parsing with yaml-rs (the Rust parser kai uses), a ruamel.yaml round trip (what `kai fix`
must do at least), and `python -c pass` for start-up. It also measures a crowded namespace (2,000
each of Deployments, Services, NetworkPolicies, HPAs and PDBs in one namespace: the case where
cross-object checks went quadratic) and Checkov and kubeconform when they are on PATH (and says
when they are not). kai review is measured with -o json, -o sarif and -o compact (the formats
written as they are made; peak RSS is the memory figure). Prints Markdown (the README's speed table is its output) with the conditions:
machine, load average before and after, versions, date and commit. Asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench import make_object, write_corpus

PY = sys.executable
ROOT = Path(__file__).resolve().parent.parent


def measure(
    argv: list[str], repeat: int, cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[float, float]:
    """(best CPU seconds, peak MiB) of running argv as a child process."""
    best_cpu, peak = float("inf"), 0.0
    env = {**(os.environ if env is None else env), "PYTHONPATH": str(ROOT)}
    for _ in range(repeat):
        proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd, env=env
        )
        _, status, usage = os.wait4(proc.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1):  # 1: findings; anything else measured a refusal or a failure
            print(f"- warning: exit {code} from {' '.join(argv[:6])} ...", flush=True)
        best_cpu = min(best_cpu, usage.ru_utime + usage.ru_stime)
        peak = max(peak, usage.ru_maxrss / 1024)
    return best_cpu, peak


def floors(files: list[str]) -> dict[str, list[str]]:
    listing = repr(files)
    return {
        "libyaml parse": [
            PY,
            "-c",
            "import yaml\n"
            f"for f in {listing}: list(yaml.load_all(open(f), Loader=yaml.CSafeLoader))",
        ],
        "yaml-rs parse": [
            PY,
            "-c",
            "import yaml_rs\n"
            f"for f in {listing}:\n"
            "    t = open(f).read()\n"
            "    [yaml_rs.loads(d) for d in t.split('\\n---\\n')]",
        ],
        "ruamel round trip": [
            PY,
            "-c",
            "import io\nfrom ruamel.yaml import YAML\ny = YAML()\n"
            f"for f in {listing}:\n"
            "    docs = list(y.load_all(open(f)))\n"
            "    out = io.StringIO(); y.dump_all(docs, out)",
        ],
    }


def crowded_corpus(directory: Path, per_kind: int) -> int:
    """per_kind each of Deployment, Service, NetworkPolicy, HPA and PDB, all in one namespace."""
    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    wanted = (
        "Deployment",
        "Service",
        "NetworkPolicy",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    )
    objs: list[dict[str, Any]] = []
    n = 0
    while len(objs) < per_kind * len(wanted):
        obj = make_object(n)
        n += 1
        if obj["kind"] in wanted:
            obj["metadata"]["namespace"] = "crowded"
            objs.append(obj)
    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    for start in range(0, len(objs), 100):
        (directory / f"part-{start // 100:04d}.yaml").write_text(
            yaml.dump_all(objs[start : start + 100], Dumper=dumper, sort_keys=False)
        )
    return len(objs)


def conditions() -> list[str]:
    """What the numbers depend on: machine, load, versions, date, commit."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    versions = []
    for dist in ("kai", "PyYAML", "yaml-rs", "ruamel.yaml", "cel-expr-python", "jsonschema-rs"):
        try:
            versions.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    tools = []
    for tool in ("kubeconform", "checkov"):
        tools.append(f"{tool}: {shutil.which(tool) or 'not on PATH (not measured)'}")
    return [
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; commit {commit or '?'}"
        + (" (with uncommitted changes)" if dirty else ""),
        f"- machine: {os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        f"- load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        f"- versions: {', '.join(versions)}",
        *[f"- {t}" for t in tools],
    ]


RESULTS: dict[str, dict[str, tuple[float, float]]] = {}


def report(label: str, objects: int, files: list[str], repeat: int, extra: bool, fix: bool) -> None:
    kai = [PY, "-m", "kai"]
    rows: dict[str, tuple[float, float]] = {}
    for name, argv in floors(files).items():
        if name != "ruamel round trip" or fix:  # the floor of kai fix only
            rows[name] = measure(argv, repeat)
    rows["kai review -o json"] = measure([*kai, "review", *files, "-o", "json"], repeat)
    rows["kai review -o sarif"] = measure([*kai, "review", *files, "-o", "sarif"], repeat)
    rows["kai review -o compact"] = measure([*kai, "review", *files, "-o", "compact"], repeat)
    rows["kai review --no-validate"] = measure(
        [*kai, "review", *files, "-o", "json", "--no-validate"], repeat
    )
    rows["kai validate -o json"] = measure([*kai, "validate", *files, "-o", "json"], repeat)
    if fix:
        with tempfile.TemporaryDirectory() as tmp:
            copies = []
            for f in files:
                dst = Path(tmp, Path(f).name)
                shutil.copy(f, dst)
                copies.append(str(dst))
            # the fixer's own speed: its edit bound (which refuses past ~10 s) lifted
            argv = [*kai, "fix", *copies, "--dry-run", "--edit-limit", "100000000"]
            rows["kai fix --dry-run"] = measure(argv, repeat)
    if extra and shutil.which("kubeconform"):
        rows["kubeconform -strict"] = measure(
            ["kubeconform", "-strict", "-skip", "CustomResourceDefinition", *files], repeat
        )
        rows["kai validate --validator kubeconform"] = measure(
            [*kai, "validate", *files, "-o", "json", "--validator", "kubeconform"], repeat
        )
    if extra and shutil.which("checkov"):
        rows["checkov"] = measure(
            [
                "checkov",
                "--quiet",
                "--framework",
                "kubernetes",
                "-o",
                "json",
                "-d",
                str(Path(files[0]).parent),
            ],
            1,
        )
    RESULTS[label] = rows
    libyaml, yamlrs = rows["libyaml parse"][0], rows["yaml-rs parse"][0]
    print(f"\n### {label}: {objects:,} objects in {len(files)} files (best of {repeat})\n")
    print("| measurement | CPU s | objects/s | x libyaml | x yaml-rs | peak MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (cpu, mib) in rows.items():
        rate = objects / cpu if cpu else float("inf")
        print(
            f"| {name} | {cpu:.2f} | {rate:,.0f} | {cpu / libyaml:.2f} | {cpu / yamlrs:.2f} | {mib:.0f} |"
        )
    print()
    if "kai fix --dry-run" in rows:
        fix_cpu, rt = rows["kai fix --dry-run"][0], rows["ruamel round trip"][0]
        print(f"- kai fix / ruamel round trip: {fix_cpu / rt:.2f}x")
    if "checkov" in rows:
        print(f"- checkov / kai review: {rows['checkov'][0] / rows['kai review -o json'][0]:.1f}x")
    if "kubeconform -strict" in rows:
        print(
            "- kubeconform / kai validate: "
            f"{rows['kubeconform -strict'][0] / rows['kai validate -o json'][0]:.2f}x"
        )


def startup(repeat: int) -> None:
    """Start-up as a user sees it: bytecode written (an installed kai has its .pyc files; with
    PYTHONDONTWRITEBYTECODE set, every run would compile kai's modules again) and kai's caches
    warm (one unmeasured run of each command first)."""
    one = ROOT / "examples" / "agent-hardened"
    file = one / "30-deployment.yaml"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    commands = {
        "kai --help": [PY, "-m", "kai", "--help"],
        "kai review -o json <one file>": [PY, "-m", "kai", "review", "-o", "json", str(file)],
        "kai review <one folder> -o json": [PY, "-m", "kai", "review", str(one), "-o", "json"],
        "kai validate <one file>": [PY, "-m", "kai", "validate", str(file)],
        "kai review --help": [PY, "-m", "kai", "review", "--help"],
    }
    for argv in commands.values():
        measure(argv, 1, env=env)
    # Round-robin, the floor among them: on a loaded machine each figure's best then comes from
    # the same stretch of load as the floor's, not from a quieter or busier minute.
    floor, rows = float("inf"), dict.fromkeys(commands, float("inf"))
    for _ in range(repeat):
        floor = min(floor, measure([PY, "-c", "pass"], 1, env=env)[0])
        for name, argv in commands.items():
            rows[name] = min(rows[name], measure(argv, 1, env=env)[0])
    print(f"\n### start-up (best of {repeat}; python -c pass: {floor:.3f} s CPU)\n")
    print("| measurement | CPU s | x python -c pass | target |")
    print("|---|---:|---:|---:|")
    targets = {
        "kai --help": "6x",
        "kai review -o json <one file>": "8x",
        "kai review <one folder> -o json": "8x",
    }
    for name, cpu in rows.items():
        print(f"| {name} | {cpu:.3f} | {cpu / floor:.1f} | {targets.get(name, '-')} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 50000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--crowded", type=int, default=2000, help="objects per kind (0: skip)")
    parser.add_argument(
        "--big", type=int, default=10000, help="sizes above this run once, without kai fix"
    )
    parser.add_argument(
        "--startup-only", action="store_true", help="measure only start-up, then stop"
    )
    args = parser.parse_args()
    print("## kai speed, measured by benchmarks/scale.py\n")
    print("CPU seconds (user + system) of one child process; ratios divide by a floor measured")
    print("in the same run on the same files.\n")
    print("\n".join(conditions()))
    startup(max(args.repeat, 5))
    if args.startup_only:
        print(f"\n- load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        return
    rates: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.crowded:
            folder = Path(tmp, "crowded")
            n = crowded_corpus(folder, args.crowded)
            files = sorted(str(p) for p in folder.glob("*.yaml"))
            label = f"crowded namespace ({args.crowded:,} each of 5 kinds in one namespace)"
            report(label, n, files, args.repeat, extra=False, fix=False)
            rows = RESULTS[label]
            ratio = rows["kai review -o json"][0] / rows["libyaml parse"][0]
            print(f"- crowded namespace: kai review {ratio:.1f}x the libyaml parse floor")
        for size in args.sizes:
            folder = Path(tmp, f"corpus-{size}")
            write_corpus(folder, size)
            files = sorted(str(p) for p in folder.glob("*.yaml"))
            big = size > args.big
            label = f"mixed corpus, 20 namespaces, {size:,} objects"
            report(label, size, files, 1 if big else args.repeat, extra=not big, fix=not big)
            rates[size] = size / RESULTS[label]["kai review -o json"][0]
    if len(rates) > 1:
        small = min(rates)
        print(f"\n### throughput of kai review against {small:,} objects\n")
        for size, rate in sorted(rates.items()):
            print(f"- {size:,} objects: {rate:,.0f} objects/s ({rate / rates[small]:.2f}x)")
    print(f"\n- load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

"""Fail when committed test data is stale: rerun the builders on a copy and diff what they write.

    python tests/cassettes/check_generated.py              # every builder
    python tests/cassettes/check_generated.py build.py     # one (what `build.py --check` runs)

Each builder (tests/cassettes/build*.py) writes authored cassettes and test data from kai's own
code: its prompts, request bodies, rules and examples. This script copies the repository's
sources (kai/, tests/, examples/, policies/, prompts/, ...; no .git, no venv) to a temporary
folder, runs the builders there, and compares every file they wrote or changed under tests/ with
the committed one. A difference is printed as a unified diff and the exit code is 1, so a prompt
edit without rebuilding fails CI (.ci/run) here as well as in the replaying tests. Nothing in the
working tree is touched.

The record scripts need a real system and cannot run here; their own --check covers them:
record_model.py --check replays tests/cassettes/local/ with request bodies matched (so a prompt
change since the recording fails) and checks each recording's metadata (model, quantization,
server, date); record_cluster.py --check checks that each scenario's cassette exists and names the
real kube-apiserver version that answered.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BUILDERS = ["build.py", "build_capstone.py", "build_learn.py", "build_ops.py"]
# build_cluster.py records its fake API server through vcrpy, whose cassettes keep each response's
# Date header (and the server's timestamps): it writes different bytes on every run, so it is not
# compared until it pins them. `check_generated.py build_cluster.py` still runs it on request.
OPTIONAL = ["build_cluster.py"]
COPIED = ["kai", "tests", "examples", "policies", "prompts", "agent", "docs", "pyproject.toml"]
SKIP = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.pyc", ".pytest_cache", ".hypothesis"
)
WATCHED = ["tests/cassettes", "tests/data"]  # what the builders write


def snapshot(root: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for top in WATCHED:
        for p in sorted((root / top).rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                files[str(p.relative_to(root))] = p.read_bytes()
    return files


def differences(before: dict[str, bytes], after: dict[str, bytes], limit: int = 60) -> list[str]:
    """A unified diff (at most `limit` lines a file) for every file written differently."""
    out: list[str] = []
    for name in sorted(after):
        old, new = before.get(name), after[name]
        if old == new:
            continue
        if old is None:
            out.append(f"{name}: written by the builder but not committed")
            continue
        lines = list(
            difflib.unified_diff(
                old.decode(errors="replace").splitlines(),
                new.decode(errors="replace").splitlines(),
                f"committed/{name}",
                f"rebuilt/{name}",
                lineterm="",
                n=1,
            )
        )
        out.append(f"{name}: stale ({len(lines)} diff lines)")
        out += [line[:200] for line in lines[:limit]]
        if len(lines) > limit:
            out.append(f"... {len(lines) - limit} more lines")
    return out


def check(builders: list[str]) -> int:
    stale = 0
    with tempfile.TemporaryDirectory(prefix="kai-check-") as tmp:
        copy = Path(tmp)
        for name in COPIED:
            src = ROOT / name
            if src.is_dir():
                shutil.copytree(src, copy / name, ignore=SKIP, symlinks=True)
            elif src.exists():
                shutil.copy2(src, copy / name)
        committed = snapshot(copy)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("KAI_", "OPENAI_", "ANTHROPIC_"))
        }
        env["PYTHONPATH"] = str(copy)
        for builder in builders:
            start = time.monotonic()
            before = snapshot(copy)
            proc = subprocess.run(
                [sys.executable, str(copy / "tests" / "cassettes" / builder)],
                cwd=copy,
                env=env,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
            )
            if proc.returncode != 0:
                print(f"{builder}: failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
                stale += 1
                continue
            diff = differences(before, snapshot(copy))
            # the next builder starts from the committed files again
            for name, data in committed.items():
                (copy / name).write_bytes(data)
            seconds = time.monotonic() - start
            if diff:
                stale += 1
                print(f"{builder}: the committed files are stale ({seconds:.0f} s); rerun it:")
                print("\n".join(f"  {line}" for line in diff))
            else:
                print(f"{builder}: up to date ({seconds:.0f} s)")
    return 1 if stale else 0


def main(argv: list[str] | None = None) -> int:
    names = [Path(a).name for a in (sys.argv[1:] if argv is None else argv)]
    unknown = [n for n in names if n not in BUILDERS + OPTIONAL]
    if unknown:
        print(f"not a builder: {', '.join(unknown)} (one of {', '.join(BUILDERS + OPTIONAL)})")
        return 2
    return check(names or BUILDERS)


if __name__ == "__main__":
    sys.exit(main())

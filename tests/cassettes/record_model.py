"""Re-record the model cassettes in tests/cassettes/local/ from the real local model.

    python tests/cassettes/record_model.py                 # start the local model, record every scenario
    python tests/cassettes/record_model.py --only run_scale
    python tests/cassettes/record_model.py --api-base http://127.0.0.1:8080/v1   # a server already up
    python tests/cassettes/record_model.py --check         # exit 1 when a recording is stale

Each scenario is a kai command line. kai runs it as a person would (its own process, no terminal)
against Qwen2.5-Coder-1.5B-Instruct Q4_K_M behind llama.cpp's server (xllamacpp, see
tests/localmodel/), through a proxy that keeps every exchange as it went over the wire. The
cassette's `metadata` says what answered (model, quantization, server version, threads), when, with
which kai commit, the command line and its exit code. The request URI is written as the fixed
REPLAY_BASE so replay does not depend on the port the server had.

Replay (tests/test_recorded.py) matches method, path and the JSON request body, so a prompt or
request change without re-recording fails the suite; --check runs that replay and names the
stale cassettes. Answers differ between runs even at temperature 0: re-recording changes the
answers, and the replay tests assert only what the recording itself says (exit code, calls and
tokens adding up), never a particular answer.

Hand-written cassettes (tests/cassettes/build*.py) stage cases a real model cannot be made to
produce on demand (a 429, an outage, a refusal, a malformed answer) or stand in for hosted
providers; their metadata says `provenance: authored` and they are never called recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
LOCAL = HERE / "local"
REPLAY_BASE = "http://127.0.0.1:8080/v1"  # llama.cpp's default port; only a name on replay
sys.path.insert(0, str(ROOT / "tests"))

MAX_TOKENS = "900"
# name -> the kai command line ({api_base} and {tmp} are filled in when it runs)
SCENARIOS: dict[str, dict[str, Any]] = {
    "generate_web": {
        "argv": [
            "generate",
            "deploy nginx:1.27.3 as web in namespace shop with 2 replicas on port 8080, "
            "health at /healthz, reachable inside the cluster only (ClusterIP)",
            "--max-rounds",
            "2",
            "-o",
            "{tmp}/web.yaml",
        ],
        "what": "kai generate end to end: plan, kai's fixes, at most one repair round",
    },
    "run_scale": {
        "argv": [
            "run",
            "scale the deployment web to 3 replicas",
            "-n",
            "shop",
            "--approval",
            "suggest-only",
        ],
        "what": "kai run: the model proposes kubectl commands; suggest-only runs nothing",
    },
}


def command(name: str, api_base: str, tmp: str) -> list[str]:
    from localmodel.harness import KAI_MODEL

    argv = [a.format(api_base=api_base, tmp=tmp) for a in SCENARIOS[name]["argv"]]
    return [*argv, "-m", KAI_MODEL, "--api-base", api_base, "--timeout", "1800", "--no-cache"]


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


def record(name: str, upstream: str, server_meta: dict[str, Any]) -> Path:
    import tempfile

    from localmodel.proxy import RecordingProxy

    kai_commit = commit()  # the code that ran, not HEAD when the (long) recording ends
    with RecordingProxy(upstream) as proxy, tempfile.TemporaryDirectory() as tmp:
        argv = command(name, proxy.url + "/v1", tmp)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("KAI_", "OPENAI_"))},
            "PYTHONPATH": str(ROOT),
            "KAI_MAX_TOKENS": MAX_TOKENS,
            "XDG_CONFIG_HOME": f"{tmp}/config",
            "XDG_CACHE_HOME": f"{tmp}/cache",
            "KUBECONFIG": f"{tmp}/no-kubeconfig",
            "PATH": f"{ROOT / 'tests' / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "KAI_FAKE_KUBECTL_SCENARIO": f"{tmp}/scenario.json",
            "KAI_FAKE_KUBECTL_LOG": f"{tmp}/kubectl.log",
            "COLUMNS": "200",
        }
        Path(f"{tmp}/scenario.json").write_text('{"responses": []}')
        start = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from kai.cli import main; main(sys.argv[1:])",
                *argv,
            ],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        seconds = time.monotonic() - start
        exchanges = list(proxy.exchanges)
    if proc.returncode == 70:
        raise SystemExit(f"{name}: kai crashed (exit 70): {proc.stderr.strip()[-500:]}")
    interactions = []
    for x in exchanges:
        body = x["response"] if isinstance(x["response"], str) else json.dumps(x["response"])
        interactions.append(
            {
                "request": {
                    "body": json.dumps(x["request"]),
                    "headers": {"content-type": ["application/json"]},
                    "method": x["method"],
                    "uri": REPLAY_BASE.removesuffix("/v1") + x["path"],
                },
                "response": {
                    "status": {"code": x["status"], "message": "OK" if x["status"] == 200 else ""},
                    "headers": {"Content-Type": ["application/json; charset=utf-8"]},
                    "body": {"string": body},
                },
            }
        )
    metadata = {
        "provenance": "recorded",
        **server_meta,
        "recorded": datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ"),
        "kai_commit": kai_commit,
        "scenario": SCENARIOS[name]["what"],
        "argv": SCENARIOS[name]["argv"],
        "env": {"KAI_MAX_TOKENS": MAX_TOKENS},
        "exit_code": proc.returncode,
        "seconds": round(seconds, 1),
        "last_lines": [line for line in proc.stdout.splitlines() if line.strip()][-3:],
    }
    LOCAL.mkdir(exist_ok=True)
    path = LOCAL / f"{name}.yaml"
    data = {"metadata": metadata, "interactions": interactions, "version": 1}
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=100), encoding="utf-8")
    print(
        f"{path.relative_to(ROOT)}: {len(interactions)} exchanges, exit {proc.returncode}, {seconds:.0f} s"
    )
    return path


def check() -> int:
    """Replay every recording (tests/test_recorded.py); non-zero when one is stale."""
    return subprocess.call(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(ROOT / "tests" / "test_recorded.py"),
        ],
        cwd=ROOT,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="re-record the model cassettes from the local model")
    ap.add_argument("--only", action="append", default=[], choices=sorted(SCENARIOS))
    ap.add_argument("--api-base", default=None, help="an OpenAI-compatible server already running")
    ap.add_argument(
        "--check", action="store_true", help="replay only: fail when a recording is stale"
    )
    ap.add_argument("--threads", type=int, default=1, help="threads of the --api-base server")
    args = ap.parse_args(argv)
    if args.check:
        return check()
    from localmodel.harness import model_server

    with ExitStack() as stack:
        if args.api_base:
            upstream = args.api_base.rstrip("/").removesuffix("/v1")
            from localmodel.assemble_gguf import GGUF_SHA256, MODEL_NAME, QUANTIZATION
            from localmodel.harness import xllamacpp_version

            meta: dict[str, Any] = {
                "model": MODEL_NAME,
                "quantization": QUANTIZATION,
                "gguf_sha256": GGUF_SHA256,
                "server": f"xllamacpp {xllamacpp_version()} (llama.cpp server, started by serve.py)",
                "threads": args.threads,
            }
        else:
            server = stack.enter_context(model_server())
            upstream, meta = server.url, server.metadata()
        for name in args.only or sorted(SCENARIOS):
            record(name, upstream, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The model tier: kai against a real local model (Qwen2.5-Coder-1.5B-Instruct Q4_K_M, llama.cpp).

Run with `pytest -m model`; skipped with the reason when the model wheels or xllamacpp are absent.
Answers differ between runs even at temperature 0, so these tests assert what must hold for any
answer, never the text: kai parses it or gives a one-line model error (exit 3), never exit 70;
the deterministic fixes were applied; the schema stage ran; the rounds table adds up with what the
server reported; nothing is written or run without confirmation; the verdict is true of the file.
Each kai call is bounded (KAI_MAX_TOKENS, --timeout, --max-rounds) so the tier stays under 15 min.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from localmodel.assemble_gguf import ModelUnavailable
from localmodel.harness import KAI_MODEL, ModelServer, model_server
from localmodel.proxy import RecordingProxy

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(__file__).parent / "bin"
pytestmark = pytest.mark.model

MAX_TOKENS = os.environ.get("KAI_TEST_MAX_TOKENS", "900")
CALL_TIMEOUT = os.environ.get("KAI_TEST_CALL_TIMEOUT", "900")
SUMMARY = re.compile(
    r"(PASS|FAIL) stopped: (.*?); (\d+) model calls?, (\d+) prompt \+ (\d+) completion tokens"
)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    log = tmp_path_factory.mktemp("model") / "server.log"
    try:
        with model_server(log=log) as s:
            yield s
    except ModelUnavailable as e:
        pytest.skip(f"no local model: {e}")


@pytest.fixture
def proxy(server: ModelServer) -> Iterator[RecordingProxy]:
    with RecordingProxy(server.url) as p:
        yield p


def kai_process(
    tmp: Path, *args: str, timeout: float = 1500
) -> tuple[subprocess.CompletedProcess[str], list[list[str]], float]:
    """Run kai as a person would (its own process, no terminal), with a stand-in kubectl on PATH
    that records every call; returns the process, the kubectl calls and the wall time."""
    work = tmp / "work"
    work.mkdir(exist_ok=True)
    scenario, log = tmp / "kubectl-scenario.json", tmp / "kubectl.log"
    scenario.write_text(json.dumps({"responses": []}), encoding="utf-8")
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("KAI_", "OPENAI_", "ANTHROPIC_"))
        },
        "PYTHONPATH": str(ROOT),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "KAI_FAKE_KUBECTL_SCENARIO": str(scenario),
        "KAI_FAKE_KUBECTL_LOG": str(log),
        "KUBECONFIG": str(tmp / "no-kubeconfig"),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "XDG_CACHE_HOME": str(tmp / "cache"),
        "KAI_MAX_TOKENS": MAX_TOKENS,
        "COLUMNS": "200",
    }
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from kai.cli import main; main(sys.argv[1:])", *args],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    seconds = time.monotonic() - start
    calls = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    return proc, calls, seconds


def kai_here(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return kai_process(tmp, *args, timeout=120)[0]


def assert_model_outcome(proc: subprocess.CompletedProcess[str], allowed: set[int]) -> None:
    assert proc.returncode != 70, f"kai crashed:\n{proc.stdout}\n{proc.stderr}"
    assert proc.returncode in allowed | {3}, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    if proc.returncode == 3:  # a model error is one line that says what went wrong
        lines = [x for x in proc.stderr.splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr


def assert_bounded(proxy: RecordingProxy) -> None:
    for x in proxy.completions():  # every request carried kai's bound on the answer
        assert 0 < int(x["request"].get("max_tokens", 0)) <= int(MAX_TOKENS), x["request"].keys()


def objects(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def report_timing(name: str, proxy: RecordingProxy, seconds: float) -> None:
    calls, pt, ct = proxy.usage()
    gen_s = sum(
        float((x["response"].get("timings") or {}).get("predicted_ms") or 0) / 1000
        for x in proxy.completions()
    )
    rate = f", {ct / gen_s:.1f} generated tokens/s" if gen_s else ""
    print(
        f"\n[model tier] {name}: {seconds:.0f} s, {calls} calls, {pt} prompt + {ct} completion tokens{rate}"
    )


def test_generate_end_to_end(server: ModelServer, proxy: RecordingProxy, tmp_path: Path) -> None:
    out = tmp_path / "work" / "web.yaml"
    request = (
        "deploy nginx:1.27.3 as web in namespace shop with 2 replicas on port 8080, "
        "health at /healthz, reachable inside the cluster only (ClusterIP)"
    )
    proc, kubectl, seconds = kai_process(
        tmp_path, "generate", request, "-m", KAI_MODEL, "--api-base", proxy.url + "/v1",
        "--max-rounds", "2", "--timeout", CALL_TIMEOUT, "--no-cache", "-o", str(out),
    )  # fmt: skip
    report_timing("kai generate", proxy, seconds)
    assert_model_outcome(proc, {0, 1})
    assert kubectl == []  # no cluster was touched: nothing applied without --apply and a yes
    served, prompt_tokens, completion_tokens = proxy.usage()
    assert served >= 1
    if proc.returncode == 3:
        assert not out.exists()  # a model error writes nothing
        assert_bounded(proxy)
        return
    written = sorted(p.name for p in out.parent.iterdir())
    assert written == [out.name]  # the file asked for with -o, and nothing else
    summary = SUMMARY.search(proc.stdout)
    assert summary, proc.stdout
    verdict, _stopped, calls, pt, ct = summary.groups()
    # The rounds table adds up: what kai reports is what the server answered.
    assert (int(calls), int(pt), int(ct)) == (served, prompt_tokens, completion_tokens)
    assert (verdict == "PASS") == (proc.returncode == 0)
    assert "validated against the schema" in proc.stdout  # the schema stage ran (offline)

    # The deterministic fixes were applied: fixing the saved file again changes nothing.
    fixed = kai_here(tmp_path, "fix", str(out))
    assert fixed.returncode == 0, fixed.stderr
    assert [d for d in yaml.safe_load_all(fixed.stdout) if d is not None] == objects(out)

    # The verdict is true of the saved file: an independent review at the same threshold agrees,
    # rule for rule, and the schema validation agrees with what generate reported.
    review = kai_here(tmp_path, "review", str(out), "--fail-on", "warning", "-o", "json")
    assert review.returncode in (0, 1), review.stderr
    data = json.loads(review.stdout)
    reviewed = {
        f["rule"]
        for f in data["findings"]
        if not f["suppressed"] and f["severity"] in ("warning", "error")
    }
    failing = set(re.findall(r"still failing (\S+) ", proc.stdout))
    assert (review.returncode == 0) == (proc.returncode == 0), (proc.stdout, review.stdout)
    assert reviewed == failing, (proc.stdout, review.stdout)
    validated = kai_here(tmp_path, "validate", str(out))
    assert (validated.returncode == 0) == (not any(r.startswith("KAI-SCH") for r in failing))
    assert_bounded(proxy)


def test_run_proposal_end_to_end(
    server: ModelServer, proxy: RecordingProxy, tmp_path: Path
) -> None:
    proc, kubectl, seconds = kai_process(
        tmp_path, "run", "scale the deployment web to 3 replicas", "-n", "shop",
        "--approval", "suggest-only", "-m", KAI_MODEL, "--api-base", proxy.url + "/v1",
        "--timeout", CALL_TIMEOUT, "--no-cache",
    )  # fmt: skip
    report_timing("kai run", proxy, seconds)
    assert_model_outcome(proc, {0, 1, 2})
    assert kubectl == []  # suggest-only: nothing ran, not even a read
    served, _, _ = proxy.usage()
    assert 1 <= served <= 2  # one proposal, at most one corrective retry
    if proc.returncode == 0:
        assert "kubectl " in proc.stdout  # the proposal is shown as copy-pasteable lines
    if proc.returncode == 1:  # something was refused: said in one line
        assert proc.stderr.count("error: kai refused ") == 1, proc.stderr
    assert_bounded(proxy)

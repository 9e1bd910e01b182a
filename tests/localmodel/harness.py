"""Find the model, start llama.cpp's server on a free loopback port, wait for /health, stop it by PID.

Installs nothing: the GGUF comes from the installed chunk wheels (assemble_gguf.py) or from
KAI_TEST_GGUF; the server is xllamacpp, started by serve.py in its own process. Anything missing
is a skip with the reason (ModelUnavailable), never a pass.

Environment: KAI_TEST_GGUF (a GGUF to use), KAI_TEST_MODEL_THREADS (default 1: on a busy 2-core
machine two threads spin-wait against other load), KAI_TEST_MODEL_CTX (default 16384),
KAI_TEST_MODEL_URL (use a server that is already running instead of starting one).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: localmodel is a package

from localmodel.assemble_gguf import (  # noqa: E402
    GGUF_SHA256,
    MODEL_NAME,
    QUANTIZATION,
    ModelUnavailable,
    assemble,
)

ALIAS = "qwen2.5-coder-1.5b-instruct-q4_k_m"
KAI_MODEL = f"openai/{ALIAS}"  # kai speaks the OpenAI wire format to any --api-base


@dataclass
class ModelServer:
    url: str  # http://127.0.0.1:PORT
    pid: int | None
    threads: int
    ctx: int
    gguf: str
    server_version: str
    load_seconds: float

    @property
    def api_base(self) -> str:
        return self.url + "/v1"

    def metadata(self) -> dict[str, object]:
        return {
            "model": MODEL_NAME,
            "quantization": QUANTIZATION,
            "gguf_sha256": GGUF_SHA256,
            "server": f"xllamacpp {self.server_version} (llama.cpp server)",
            "threads": self.threads,
            "context": self.ctx,
        }


def xllamacpp_version() -> str:
    if importlib.util.find_spec("xllamacpp") is None:
        raise ModelUnavailable("xllamacpp is not installed (pip install xllamacpp==2026.10.11549)")
    from importlib.metadata import version

    return version("xllamacpp")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=timeout) as r:
            return bool(r.status == 200 and json.loads(r.read() or b"{}").get("status") == "ok")
    except (OSError, ValueError):
        return False


def stop(pid: int, grace: float = 10.0) -> None:
    """Stop the server process we started, by its PID: SIGTERM, then SIGKILL after `grace` s."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


@contextlib.contextmanager
def model_server(
    threads: int | None = None, ctx: int | None = None, log: Path | None = None
) -> Iterator[ModelServer]:
    """A running model server for the duration of the block (raises ModelUnavailable)."""
    threads = threads or int(os.environ.get("KAI_TEST_MODEL_THREADS", "1"))
    ctx = ctx or int(os.environ.get("KAI_TEST_MODEL_CTX", "16384"))
    given = os.environ.get("KAI_TEST_MODEL_URL")
    if given:
        if not healthy(given.rstrip("/")):
            raise ModelUnavailable(f"KAI_TEST_MODEL_URL={given} does not answer /health")
        yield ModelServer(given.rstrip("/"), None, threads, ctx, "(external)", "external", 0.0)
        return
    version = xllamacpp_version()
    gguf = assemble()
    port = free_port()
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    start = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "serve.py"),
            "--gguf",
            str(gguf),
            "--port",
            str(port),
            "--threads",
            str(threads),
            "--ctx",
            str(ctx),
            "--alias",
            ALIAS,
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + float(os.environ.get("KAI_TEST_MODEL_LOAD_TIMEOUT", "300"))
        while not healthy(url):
            if proc.poll() is not None:
                raise ModelUnavailable(
                    f"the model server exited with {proc.returncode} while loading"
                )
            if time.monotonic() > deadline:
                raise ModelUnavailable("the model server did not become healthy in time")
            time.sleep(0.5)
        yield ModelServer(url, proc.pid, threads, ctx, str(gguf), version, time.monotonic() - start)
    finally:
        stop(proc.pid)
        if log:
            out.close()  # type: ignore[union-attr]

"""Start llama.cpp's OpenAI-compatible server (xllamacpp, in-process) on a loopback port.

Run as its own process so the test harness can stop it by PID:

    python tests/model/serve.py --gguf PATH --port 8765 [--threads 1] [--ctx 16384]

Binds 127.0.0.1 only and never downloads anything (offline). Prints ``listening URL`` when the
server is up, then serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="serve a GGUF on 127.0.0.1 with xllamacpp")
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ctx", type=int, default=16384)
    ap.add_argument("--alias", default="qwen2.5-coder-1.5b-instruct-q4_k_m")
    args = ap.parse_args(argv)

    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = args.gguf
    params.model_alias = args.alias
    params.hostnames = ["127.0.0.1"]
    params.port = args.port
    params.offline = True
    params.n_ctx = args.ctx
    params.n_parallel = 1  # one slot: its prompt cache serves the next call with the same prefix
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.use_jinja = True
    params.endpoint_metrics = True
    params.warmup = False
    params.cache_prompt = True
    server = xlc.Server(params)
    print(f"listening {server.listening_address}", flush=True)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    # Exit at once: the server keeps no state worth saving, and tearing it down politely waits
    # for the answer in progress (minutes on a CPU), which is what stopping it must not do.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())

"""A tiny recording reverse proxy for the local model server (loopback only).

kai talks to the proxy; the proxy forwards every request to the model server unchanged and keeps
each exchange (request body, status, response body, seconds). The tests compare what kai reports
(model calls, tokens) with what the server really answered, and the recording script turns the
exchanges into cassettes.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class RecordingProxy:
    def __init__(self, upstream: str, timeout: float = 3600.0) -> None:
        self.upstream = upstream.rstrip("/")
        self.timeout = timeout
        self.exchanges: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _forward(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                data = self.rfile.read(length) if length else None
                headers = {"content-type": self.headers.get("content-type") or "application/json"}
                req = urllib.request.Request(
                    proxy.upstream + self.path, data=data, headers=headers, method=method
                )
                start = time.monotonic()
                try:
                    with urllib.request.urlopen(req, timeout=proxy.timeout) as resp:
                        status, body = resp.status, resp.read()
                        ctype = resp.headers.get("content-type", "application/json")
                except urllib.error.HTTPError as e:
                    status, body = e.code, e.read()
                    ctype = e.headers.get("content-type", "application/json")
                except OSError as e:  # the server is gone: say so like a gateway would
                    status, body, ctype = (
                        502,
                        json.dumps({"error": str(e)}).encode(),
                        "application/json",
                    )
                seconds = time.monotonic() - start
                if not self.path.startswith("/health"):
                    with proxy._lock:
                        proxy.exchanges.append(
                            {
                                "method": method,
                                "path": self.path,
                                "request": json.loads(data) if data else None,
                                "status": status,
                                "response": _json_or_text(body),
                                "seconds": round(seconds, 3),
                            }
                        )
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self._forward("POST")

            def do_GET(self) -> None:
                self._forward("GET")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"  # bound to loopback only

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def completions(self) -> list[dict[str, Any]]:
        """The chat-completion exchanges the server answered with 200."""
        return [
            x
            for x in self.exchanges
            if x["path"].endswith("/chat/completions") and x["status"] == 200
        ]

    def usage(self) -> tuple[int, int, int]:
        """(answered calls, prompt tokens, completion tokens) as the server reported them."""
        done = self.completions()
        pt = sum(int((x["response"].get("usage") or {}).get("prompt_tokens", 0)) for x in done)
        ct = sum(int((x["response"].get("usage") or {}).get("completion_tokens", 0)) for x in done)
        return len(done), pt, ct


def _json_or_text(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode(errors="replace")

"""A loopback stand-in for an OpenAI-compatible local server (llama.cpp's shapes). Every answer
it gives is authored by the test that scripts it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Server:
    """Scripted answers per path, in order; records what it received."""

    def __init__(self) -> None:
        self.script: dict[str, list[tuple[int, Any]]] = {}
        # Or answer from the request body: responder(body) -> (status, payload).
        self.responder: Callable[[Any], tuple[int, Any]] | None = None
        self.received: list[tuple[str, str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                server.received.append((method, self.path, body))
                queue = server.script.get(self.path) or [(404, {"error": "not found"})]
                if server.responder is not None and method == "POST":
                    status, payload = server.responder(body)
                else:
                    status, payload = queue.pop(0) if len(queue) > 1 else queue[0]
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

            def log_message(self, *_a: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def posts(self) -> list[Any]:
        return [b for m, _, b in self.received if m == "POST"]


def serving() -> Iterator[Server]:
    """Start a stand-in on a free loopback port, yield it, stop it (for a fixture)."""
    s = Server()
    thread = threading.Thread(target=s.httpd.serve_forever, daemon=True)
    thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def answer(content: str, prompt_tokens: int = 40, completion_tokens: int = 2) -> dict[str, Any]:
    return {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
        "model": "authored-local",
    }

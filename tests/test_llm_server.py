"""The model client against a local OpenAI-compatible server (a loopback stand-in that answers
as llama.cpp's server does; every answer here is authored): context fitting, retries that are not
calls."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kai.errors import ModelError
from kai.llm import LLM, Settings

ANSWER = {
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
    "usage": {"prompt_tokens": 40, "completion_tokens": 2},
    "model": "authored-local",
}
LOADING = (503, {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}})


class Server:
    """Scripted answers per path, in order; records what it received."""

    def __init__(self) -> None:
        self.script: dict[str, list[tuple[int, Any]]] = {}
        self.received: list[tuple[str, str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                server.received.append((method, self.path, body))
                queue = server.script.get(self.path) or [(404, {"error": "not found"})]
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


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    thread = threading.Thread(target=s.httpd.serve_forever, daemon=True)
    thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def _llm(server: Server, **kw: Any) -> LLM:
    settings = Settings(model="local", api_base=server.base, cache=False, **kw)
    return LLM(settings, sleep=lambda _s: None)


PROMPT = [{"role": "system", "content": "x" * 3000}, {"role": "user", "content": "plan"}]


def test_max_tokens_fits_the_context_the_server_reports_in_props(server: Server) -> None:
    server.script["/props"] = [(200, {"default_generation_settings": {"n_ctx": 2048}})]
    server.script["/v1/chat/completions"] = [(200, ANSWER)]
    llm = _llm(server, max_tokens=4096)
    llm.complete(PROMPT)
    (body,) = server.posts()
    assert llm.context == 2048
    # ~3,000 characters of prompt take at most ~1,000 tokens: the answer gets the rest
    assert 800 <= body["max_tokens"] < 2048 - 900


def test_a_server_without_props_gets_the_configured_bound(server: Server) -> None:
    server.script["/v1/chat/completions"] = [(200, ANSWER)]
    llm = _llm(server, max_tokens=1234)
    llm.complete(PROMPT)
    assert [b["max_tokens"] for b in server.posts()] == [1234] and llm.context is None


def test_a_context_exceeded_error_is_fitted_once_and_then_answers(server: Server) -> None:
    """llama.cpp's answer when prompt + max_tokens overflow n_ctx (authored from its shape)."""
    too_long = {
        "error": {
            "code": 400,
            "message": "the request exceeds the available context size, try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 1100,
            "n_ctx": 4096,
        }
    }
    server.script["/v1/chat/completions"] = [(400, too_long), (200, ANSWER)]
    llm = _llm(server, max_tokens=8192)
    assert llm.complete(PROMPT).text == "ok"
    first, second = server.posts()
    assert first["max_tokens"] == 8192 and second["max_tokens"] <= 4096 - 1100
    assert llm.calls == 1 and llm.retries == 1 and llm.context == 4096


def test_a_prompt_larger_than_the_context_is_a_one_line_model_error(server: Server) -> None:
    server.script["/props"] = [(200, {"default_generation_settings": {"n_ctx": 512}})]
    server.script["/v1/chat/completions"] = [(200, ANSWER)]
    with pytest.raises(ModelError, match=r"context of 512 tokens.*--ctx-size"):
        _llm(server).complete(PROMPT)
    assert server.posts() == []  # nothing sent that could not fit


def test_openai_context_length_exceeded_is_read_too(server: Server) -> None:
    err = {
        "error": {
            "message": "This model's maximum context length is 3000 tokens. However, you requested "
            "9000 tokens (1000 in the messages, 8000 in the completion).",
            "type": "invalid_request_error",
            "code": "context_length_exceeded",
        }
    }
    server.script["/v1/chat/completions"] = [(400, err), (200, ANSWER)]
    llm = _llm(server, max_tokens=8000)
    llm.complete(PROMPT)
    assert llm.context == 3000 and server.posts()[1]["max_tokens"] < 3000 - 900


def test_loading_model_retries_are_not_model_calls(server: Server) -> None:
    server.script["/v1/chat/completions"] = [LOADING, LOADING, (200, ANSWER)]
    llm = _llm(server)
    llm.complete(PROMPT)
    assert len(server.posts()) == 3
    assert llm.calls == 1 and llm.retries == 2 and llm.prompt_tokens == 40

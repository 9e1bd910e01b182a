"""The model client against a local OpenAI-compatible server (a loopback stand-in that answers
as llama.cpp's server does; every answer here is authored): context fitting, retries that are not
calls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from llm_stand_in import Server, serving

from kai.errors import ModelError
from kai.model.client import LLM, Settings

ANSWER = {
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
    "usage": {"prompt_tokens": 40, "completion_tokens": 2},
    "model": "authored-local",
}
LOADING = (503, {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}})


@pytest.fixture
def server() -> Iterator[Server]:
    yield from serving()


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

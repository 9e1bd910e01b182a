"""The model client: provider selection, retries, timeouts, fallbacks, cost, cache and redaction.

Importing litellm takes 5-6 s here, longer than many model answers. So kai speaks the two wire
formats most models are reached through itself, with the standard library:
- OpenAI chat-completions: openai/*, ollama/* (its /v1 endpoint), and any OpenAI-compatible
  server given with --api-base (vLLM, LM Studio, OpenRouter, Groq, Together, ...);
- Anthropic Messages: anthropic/*.
Every other provider litellm knows (gemini/, vertex_ai/, bedrock/, azure/, mistral/, cohere/, ...)
goes through litellm, imported only then: coverage is kept, and the common paths stay fast.
Prices come from litellm's own price table, read as a data file without importing litellm.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from kai.errors import ModelError
from kai.model.redact import redact_text

DIRECT = {
    "openai": ("openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
    "ollama": ("openai", "http://localhost:11434/v1", None),
    "openrouter": ("openai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "groq": ("openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "anthropic": ("anthropic", "https://api.anthropic.com/v1", "ANTHROPIC_API_KEY"),
}
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # a full plan of seven objects is ~2,200 tokens
MIN_ANSWER_TOKENS = 256  # less room than this in a context window is no room for a plan
RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504, 529}
HOW_TO_SET = (
    "no model configured: pass --model (or set KAI_MODEL), for example "
    "--model openai/gpt-4.1-mini with OPENAI_API_KEY, --model anthropic/claude-sonnet-4-5 with "
    "ANTHROPIC_API_KEY, or --model ollama/qwen2.5-coder for a local model"
)


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(slots=True)
class Tools:
    """Function tools offered to the model (JSON-schema parameters); choice "auto" or "none"."""

    specs: list[dict[str, Any]]
    choice: str = "auto"


@dataclass(slots=True)
class Completion:
    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    cached: bool = False
    calls: int = 1  # completed model calls: 1, or 0 from the cache
    retries: int = 0  # attempts before this one that got no answer (429, 503 "Loading model", ...)
    tool_calls: list[ToolCall] = field(default_factory=list)
    # the answer stopped at the max_tokens bound (finish_reason "length", stop_reason
    # "max_tokens"): it may be incomplete
    truncated: bool = False


Message = Mapping[str, Any]


def _arguments(raw: Any) -> dict[str, Any]:
    """A tool call's arguments: OpenAI sends a JSON string, Anthropic an object."""
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {"_unreadable": str(raw)[:200]}
    return value if isinstance(value, dict) else {"_unreadable": str(raw)[:200]}


def _anthropic_turns(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """kai's transcript (OpenAI's shape) in the Anthropic Messages shape: tool calls become
    tool_use blocks, and consecutive tool results one user turn of tool_result blocks."""
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m["role"] == "system":
            continue
        if m["role"] == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": m["tool_call_id"],
                "content": m["content"],
            }
            if turns and turns[-1]["role"] == "user" and isinstance(turns[-1]["content"], list):
                turns[-1]["content"].append(block)
            else:
                turns.append({"role": "user", "content": [block]})
            continue
        if m["role"] == "assistant" and m.get("tool_calls"):
            blocks: list[dict[str, Any]] = []
            if m.get("content"):
                blocks.append({"type": "text", "text": m["content"]})
            for c in m["tool_calls"]:
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": c["id"],
                        "name": c["function"]["name"],
                        "input": _arguments(c["function"]["arguments"]),
                    }
                )
            turns.append({"role": "assistant", "content": blocks})
            continue
        turns.append({"role": m["role"], "content": m["content"]})
    return turns


@dataclass(slots=True)
class Settings:
    model: str
    api_base: str | None = None
    timeout: float = 60.0
    retries: int = 3
    fallbacks: list[str] = field(default_factory=list)
    cache: bool = True
    max_cost: float | None = None
    temperature: float = 0.0
    max_tokens: int = DEFAULT_MAX_TOKENS  # the bound on every answer, sent on every request


def settings_from(model: str | None, config: Any = None, **kw: Any) -> Settings:
    """Settings from flags, falling back to KAI_MODEL / KAI_API_BASE; no model is a model error.

    max_tokens: --max-tokens, else KAI_MAX_TOKENS, else `max_tokens:` in .kai.yaml (`config`)."""
    name = model or os.environ.get("KAI_MODEL")
    if not name:
        raise ModelError(HOW_TO_SET)
    if kw.get("api_base") is None:  # the CLI passes api_base=None when --api-base is not given
        kw["api_base"] = os.environ.get("KAI_API_BASE") or None
    if kw.get("max_tokens") is None and os.environ.get("KAI_MAX_TOKENS"):
        kw["max_tokens"] = max_tokens_from(os.environ["KAI_MAX_TOKENS"], "KAI_MAX_TOKENS")
    configured = getattr(config, "extra", {}).get("max_tokens") if config is not None else None
    if kw.get("max_tokens") is None and configured is not None:
        kw["max_tokens"] = max_tokens_from(
            configured, f"{config.source or '.kai.yaml'}: max_tokens"
        )
    fallbacks = os.environ.get("KAI_FALLBACK_MODELS")
    if fallbacks and not kw.get("fallbacks"):
        kw["fallbacks"] = [f.strip() for f in fallbacks.split(",") if f.strip()]
    return Settings(model=name, **{k: v for k, v in kw.items() if v is not None})


def max_tokens_from(value: Any, where: str) -> int:
    """A max-tokens setting as a positive integer; anything else is an input error."""
    from kai.errors import InputError

    try:
        n = int(str(value).strip())
    except ValueError:
        n = 0
    if n < 1:
        raise InputError(f"{where}: expected a positive number of tokens, got {value!r}")
    return n


def provider_of(model: str) -> tuple[str, str]:
    """(provider, model name): "openai/gpt-4.1-mini" -> ("openai", "gpt-4.1-mini"); a bare name is OpenAI's."""
    if "/" in model:
        provider, name = model.split("/", 1)
        return provider, name
    return "openai", model


# ---------- prices (litellm's table, read as data) ----------


@cache
def _prices() -> dict[str, Any]:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = (
        Path(next(iter(spec.submodule_search_locations)))
        / "model_prices_and_context_window_backup.json"
    )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def cost(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """USD for one call, from litellm's price table; None when the model is not priced (local models)."""
    provider, name = provider_of(model)
    if provider == "ollama":
        return 0.0
    prices = _prices()
    entry = prices.get(model) or prices.get(name) or prices.get(f"{provider}/{name}")
    if not isinstance(entry, dict):
        return None
    try:
        return (
            float(entry.get("input_cost_per_token", 0)) * prompt_tokens
            + float(entry.get("output_cost_per_token", 0)) * completion_tokens
        )
    except (TypeError, ValueError):
        return None


# ---------- wire formats ----------


def _post(
    url: str, headers: dict[str, str], body: dict[str, Any], timeout: float
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            payload = json.loads(raw or b"null")
        except ValueError:
            payload = raw.decode(errors="replace")
        return e.code, dict(e.headers or {}), payload


def _error_text(payload: Any) -> str:
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict):
            return str(err.get("message") or err.get("type") or err)
        if isinstance(err, str):
            return err
    return str(payload)[:300]


def server_context(api_base: str, timeout: float = 2.0) -> int | None:
    """The context window an OpenAI-compatible local server reports, or None: llama.cpp (and
    servers built on it) answer GET /props with default_generation_settings.n_ctx. Anything
    else (no /props, another shape, no answer in 2 s) leaves it unknown."""
    base = api_base.rstrip("/")
    base = base[: -len("/v1")] if base.endswith("/v1") else base
    try:
        with urllib.request.urlopen(f"{base}/props", timeout=timeout) as resp:
            data = json.loads(resp.read() or b"null")
    except Exception:  # any failure means "not reported"
        return None
    if not isinstance(data, dict):
        return None
    settings = data.get("default_generation_settings")
    for where in (settings if isinstance(settings, dict) else {}, data):
        n = where.get("n_ctx")
        if isinstance(n, int) and n > 0:
            return n
    return None


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ContextExceeded(ModelError):
    """The server said the request does not fit its context window (and how large it is)."""

    def __init__(self, message: str, n_ctx: int | None, n_prompt: int | None) -> None:
        super().__init__(message)
        self.n_ctx = n_ctx
        self.n_prompt = n_prompt


_CTX_WORDS = re.compile(
    r"context (?:size|length|window)|exceed_context_size|context_length_exceeded", re.I
)
_CTX_SIZE = re.compile(
    r"(?:maximum context length|context (?:size|length|window))(?: is| of)?\D{0,20}(\d{3,7})",
    re.I,
)


def _context_error(status: int, payload: Any, detail: str) -> ContextExceeded | None:
    """llama.cpp's exceed_context_size_error (with n_ctx, n_prompt_tokens) or OpenAI's and vLLM's
    context_length_exceeded ("maximum context length is N tokens") as one error kai can fit."""
    err = payload.get("error") if isinstance(payload, dict) else None
    fields = err if isinstance(err, dict) else {}
    text = f"{detail} {fields.get('type', '')} {fields.get('code', '')}"
    if status not in (400, 413, 422) or not _CTX_WORDS.search(text):
        return None

    def number(value: Any) -> int | None:
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    n_ctx = number(fields.get("n_ctx"))
    if n_ctx is None:
        m = _CTX_SIZE.search(detail)
        n_ctx = int(m.group(1)) if m else None
    return ContextExceeded(
        f"the request does not fit the model's context ({status}): {detail}",
        n_ctx,
        number(fields.get("n_prompt_tokens")),
    )


def _check(status: int, headers: dict[str, str], payload: Any, provider: str) -> None:
    if status < 300:
        return
    detail = _error_text(payload)
    too_long = _context_error(status, payload, detail)
    if too_long is not None:
        raise too_long
    if status in RETRY_STATUSES:
        after = headers.get("retry-after") or headers.get("Retry-After")
        try:
            wait = float(after) if after else None
        except ValueError:
            wait = None
        raise _Retryable(f"{provider} answered {status}: {detail}", wait)
    if status in (401, 403):
        raise ModelError(f"{provider} rejected the credentials ({status}): {detail}")
    if status == 404:
        raise ModelError(f"{provider} does not know this model or endpoint (404): {detail}")
    raise ModelError(f"{provider} refused the request ({status}): {detail}")


def _openai_call(
    s: Settings,
    name: str,
    base: str,
    key_env: str | None,
    messages: list[Message],
    schema: dict[str, Any] | None,
    tools: Tools | None = None,
) -> Completion:
    headers = {}
    key = os.environ.get(key_env) if key_env else os.environ.get("KAI_API_KEY")
    if key_env and not key and not s.api_base:
        raise ModelError(f"{key_env} is not set: the {provider_of(s.model)[0]} API needs a key")
    if key:
        headers["authorization"] = f"Bearer {key}"
    body: dict[str, Any] = {
        "model": name,
        "messages": messages,
        "temperature": s.temperature,
        "max_tokens": s.max_tokens,
    }
    if schema is not None:
        if provider_of(s.model)[0] == "openai" and not s.api_base:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "kai_plan", "schema": schema},
            }
        else:
            body["response_format"] = {"type": "json_object"}
    if tools is not None:
        body["tools"] = [{"type": "function", "function": t} for t in tools.specs]
        body["tool_choice"] = tools.choice
    status, resp_headers, payload = _post(
        f"{base.rstrip('/')}/chat/completions", headers, body, s.timeout
    )
    _check(status, resp_headers, payload, "the model API")
    try:
        choice = payload["choices"][0]
        message = choice["message"]
        text = message.get("content") or ""
        truncated = choice.get("finish_reason") == "length"
        calls = [
            ToolCall(
                str(c["id"]), str(c["function"]["name"]), _arguments(c["function"].get("arguments"))
            )
            for c in message.get("tool_calls") or []
        ]
        usage = payload.get("usage") or {}
        pt, ct = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        raise ModelError(f"unexpected answer from the model API: {str(payload)[:200]}") from None
    return Completion(
        text,
        str(payload.get("model") or name),
        Usage(pt, ct, cost(s.model, pt, ct)),
        tool_calls=calls,
        truncated=truncated,
    )


def _anthropic_call(
    s: Settings,
    name: str,
    base: str,
    key_env: str,
    messages: list[Message],
    schema: dict[str, Any] | None,
    tools: Tools | None = None,
) -> Completion:
    key = os.environ.get(key_env)
    if not key:
        raise ModelError(f"{key_env} is not set: the Anthropic API needs a key")
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    turns = _anthropic_turns(messages)
    body: dict[str, Any] = {
        "model": name,
        "max_tokens": s.max_tokens,
        "temperature": s.temperature,
        "messages": turns,
    }
    if system:
        body["system"] = system
    if tools is not None:
        body["tools"] = [
            {"name": t["name"], "description": t["description"], "input_schema": t["parameters"]}
            for t in tools.specs
        ]
        body["tool_choice"] = {"type": tools.choice}
    headers = {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
    status, resp_headers, payload = _post(f"{base.rstrip('/')}/messages", headers, body, s.timeout)
    _check(status, resp_headers, payload, "the Anthropic API")
    try:
        text = "".join(
            part.get("text", "") for part in payload["content"] if part.get("type") == "text"
        )
        calls = [
            ToolCall(str(part["id"]), str(part["name"]), _arguments(part.get("input")))
            for part in payload["content"]
            if part.get("type") == "tool_use"
        ]
        usage = payload.get("usage") or {}
        pt, ct = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ModelError(
            f"unexpected answer from the Anthropic API: {str(payload)[:200]}"
        ) from None
    return Completion(
        text,
        str(payload.get("model") or name),
        Usage(pt, ct, cost(s.model, pt, ct)),
        tool_calls=calls,
        truncated=payload.get("stop_reason") == "max_tokens",
    )


def _litellm_call(
    s: Settings,
    messages: list[Message],
    schema: dict[str, Any] | None,
    tools: Tools | None = None,
) -> Completion:
    os.environ.setdefault(
        "LITELLM_LOCAL_MODEL_COST_MAP", "True"
    )  # never fetch prices from the network
    try:
        import litellm
    except ImportError:
        raise ModelError(
            f"model {s.model} needs kai's litellm extra (litellm is not installed): "
            "pip install 'kai[litellm]'"
        ) from None
    kwargs: dict[str, Any] = {
        "model": s.model,
        "messages": messages,
        "timeout": s.timeout,
        "temperature": s.temperature,
        "max_tokens": s.max_tokens,
    }
    if s.api_base:
        kwargs["api_base"] = s.api_base
    if schema is not None:
        kwargs["response_format"] = {"type": "json_object"}
    if tools is not None:
        kwargs["tools"] = [{"type": "function", "function": t} for t in tools.specs]
        kwargs["tool_choice"] = tools.choice
    try:
        resp = litellm.completion(num_retries=0, **kwargs)
    except Exception as e:
        status = getattr(e, "status_code", None)
        if status in RETRY_STATUSES or "timeout" in type(e).__name__.lower():
            raise _Retryable(f"{s.model}: {str(e).splitlines()[0]}") from None
        raise ModelError(
            f"{s.model}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None
    message = resp.choices[0].message
    text = message.content or ""
    calls = [
        ToolCall(str(c.id), str(c.function.name), _arguments(c.function.arguments))
        for c in getattr(message, "tool_calls", None) or []
    ]
    pt, ct = int(resp.usage.prompt_tokens or 0), int(resp.usage.completion_tokens or 0)
    return Completion(
        text,
        str(resp.model or s.model),
        Usage(pt, ct, cost(s.model, pt, ct)),
        tool_calls=calls,
        truncated=getattr(resp.choices[0], "finish_reason", None) == "length",
    )


def _one_model(
    s: Settings,
    messages: list[Message],
    schema: dict[str, Any] | None,
    sleep: Callable[[float], None],
    tools: Tools | None = None,
) -> Completion:
    provider, name = provider_of(s.model)
    calls = 0
    last = ""
    for attempt in range(s.retries + 1):
        calls += 1
        try:
            if provider in DIRECT and (DIRECT[provider][0] == "openai" or not s.api_base):
                wire, base, key_env = DIRECT[provider]
                base = s.api_base or base
                if wire == "anthropic":
                    assert key_env is not None
                    result = _anthropic_call(s, name, base, key_env, messages, schema, tools)
                else:
                    result = _openai_call(s, name, base, key_env, messages, schema, tools)
            elif s.api_base and provider not in DIRECT:
                # Any model behind an OpenAI-compatible --api-base is spoken to directly.
                result = _openai_call(s, s.model, s.api_base, None, messages, schema, tools)
            else:
                result = _litellm_call(s, messages, schema, tools)
            result.calls, result.retries = 1, calls - 1
            return result
        except _Retryable as e:
            last = str(e)
            if attempt == s.retries:
                break
            wait = (
                e.retry_after
                if e.retry_after is not None
                else min(30.0, 2**attempt + random.random())
            )
            sleep(min(wait, 60.0))
        except (TimeoutError, urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            last = f"no answer from {s.model}: {'timed out after ' + str(s.timeout) + ' s' if isinstance(reason, TimeoutError) or 'timed out' in str(reason) else reason}"
            if attempt == s.retries:
                break
            sleep(min(30.0, 2**attempt + random.random()))
    raise ModelError(f"{last} (after {calls} attempt{'s' if calls != 1 else ''})")


# ---------- the client ----------


class LLM:
    """One model (plus fallbacks) with a response cache and per-run accounting."""

    def __init__(
        self,
        settings: Settings,
        cache_dir: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.cache_dir = cache_dir
        self.sleep = sleep
        self.calls = 0  # completed calls (answers the model gave), the figure kai reports
        self.retries = 0  # attempts that got no answer (rate limits, a loading server, timeouts)
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost_usd: float | None = 0.0
        self.context: int | None = None  # the server's context window, when it says
        self._probed = False
        self._chars_per_token = 3.0  # until a completed call tells the real ratio

    def _check_priced(self) -> None:
        """--max-cost is a promise: refuse it, before any call, for a model whose price is unknown
        (a silent budget of nothing would let every call through)."""
        from kai.errors import InputError

        for model in [self.settings.model, *self.settings.fallbacks]:
            if cost(model, 1, 1) is None:
                hint = (
                    ""
                    if _prices()
                    else "; kai reads prices from litellm: pip install 'kai[litellm]'"
                )
                raise InputError(
                    f"--max-cost: the price of {model} is unknown, so no budget can be kept for it"
                    f"{hint}; drop --max-cost to run it unmetered"
                )

    def _estimate(self, messages: Sequence[Message], tools: Tools | None) -> int:
        size = len(json.dumps(list(messages))) + (len(json.dumps(tools.specs)) if tools else 0)
        return int(size / self._chars_per_token) + 1

    def _fit(self, s: Settings, messages: Sequence[Message], tools: Tools | None) -> Settings:
        """Settings whose max_tokens fits what is left of a known context window."""
        if self.context is None:
            return s
        prompt = self._estimate(messages, tools)
        room = self.context - prompt - 16
        if room < MIN_ANSWER_TOKENS:
            raise ModelError(
                f"the prompt (about {prompt} tokens) leaves no room for an answer in the "
                f"server's context of {self.context} tokens: start the server with a larger "
                "context (llama.cpp: --ctx-size 16384)"
            )
        return s if room >= s.max_tokens else replace(s, max_tokens=room)

    def _learn(self, result: Completion, messages: Sequence[Message], tools: Tools | None) -> None:
        if result.usage.prompt_tokens > 0:
            size = len(json.dumps(list(messages))) + (len(json.dumps(tools.specs)) if tools else 0)
            # A little under the measured ratio, so estimates err on the side of fitting.
            self._chars_per_token = max(1.0, 0.9 * size / result.usage.prompt_tokens)

    def _key(self, model: str, messages: list[Message], schema: dict[str, Any] | None) -> str:
        material = json.dumps(
            {
                "model": model,
                "messages": messages,
                "schema": schema,
                "temperature": self.settings.temperature,
            },
            sort_keys=True,
        )
        return hashlib.sha256(material.encode()).hexdigest()

    def complete(
        self,
        messages: Sequence[Message],
        schema: dict[str, Any] | None = None,
        tools: Tools | None = None,
    ) -> Completion:
        """Ask the model; every message is redacted first, whatever built it."""
        safe: list[Message] = [
            {**m, "content": redact_text(m["content"])} if isinstance(m.get("content"), str) else m
            for m in messages
        ]
        if self.settings.max_cost is not None:
            self._check_priced()
        if (
            self.settings.max_cost is not None
            and self.cost_usd is not None
            and self.cost_usd >= self.settings.max_cost
        ):
            raise ModelError(
                f"--max-cost {self.settings.max_cost} USD reached ({self.cost_usd:.4f} USD spent): stopping"
            )
        errors = []
        for model in [self.settings.model, *self.settings.fallbacks]:
            cached = None if tools else self._cached(model, safe, schema)
            if cached is not None:
                return cached
            s = Settings(**{**asdict(self.settings), "model": model, "fallbacks": []})
            if not self._probed and s.api_base:
                self._probed = True
                self.context = server_context(s.api_base)
            try:
                try:
                    result = _one_model(self._fit(s, safe, tools), safe, schema, self.sleep, tools)
                except ContextExceeded as e:
                    # The server said how large its context is: fit the answer into it, once.
                    if e.n_ctx is None or (self.context is not None and e.n_ctx >= self.context):
                        raise
                    self.context = e.n_ctx
                    if e.n_prompt:
                        size = len(json.dumps(safe))
                        self._chars_per_token = max(1.0, 0.9 * size / e.n_prompt)
                    self.retries += 1
                    result = _one_model(self._fit(s, safe, tools), safe, schema, self.sleep, tools)
            except ModelError as e:
                errors.append(str(e))
                continue
            self._learn(result, safe, tools)
            self._account(result)
            if not tools:
                self._store(model, safe, schema, result)
            return result
        raise ModelError("; then ".join(errors))

    def _account(self, result: Completion) -> None:
        self.calls += result.calls
        self.retries += result.retries
        self.prompt_tokens += result.usage.prompt_tokens
        self.completion_tokens += result.usage.completion_tokens
        if self.cost_usd is not None:
            self.cost_usd = (
                None if result.usage.cost_usd is None else self.cost_usd + result.usage.cost_usd
            )

    def _cached(
        self, model: str, messages: list[Message], schema: dict[str, Any] | None
    ) -> Completion | None:
        if not self.settings.cache or self.cache_dir is None:
            return None
        path = self.cache_dir / f"{self._key(model, messages, schema)}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Completion(
                data["text"], data["model"], Usage(**data["usage"]), cached=True, calls=0
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _store(
        self,
        model: str,
        messages: list[Message],
        schema: dict[str, Any] | None,
        result: Completion,
    ) -> None:
        if not self.settings.cache or self.cache_dir is None:
            return
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            path = self.cache_dir / f"{self._key(model, messages, schema)}.json"
            path.write_text(
                json.dumps(
                    {"text": result.text, "model": result.model, "usage": asdict(result.usage)}
                ),
                encoding="utf-8",
            )
        except OSError:
            pass

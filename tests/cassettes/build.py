"""Writes the model cassettes in the providers' wire formats (OpenAI chat-completions, Anthropic
Messages), as vcrpy records them. No model key exists where kai is developed, so the exchanges
are authored from the providers' documented request/response shapes rather than recorded; the
plans the "model" returns are the repository's examples. Rerun after changing the examples:

    python tests/cassettes/build.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from kai.config import Config  # noqa: E402
from kai.generate import first_messages  # noqa: E402
from kai.plan import PLAN_SCHEMA  # noqa: E402
from kai.policy.catalog import load_rules  # noqa: E402

REQUEST = (
    "deploy ghcr.io/acme/agent:1.4.0 with 2 replicas on port 8000, health at /healthz and /readyz, "
    "reachable at agent.example.com"
)
OPENAI_URL = "https://api.openai.com/v1/chat/completions"
ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"


def objects(folder: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for f in sorted((ROOT / "examples" / folder).glob("*.yaml")):
        out += [d for d in yaml.safe_load_all(f.read_text()) if d and d.get("kind") != "Namespace"]
    return out


HARDENED = objects("agent-hardened")
DRAFT = objects("agent-draft")


def plan(objs: list[dict[str, Any]], **extra: Any) -> str:
    body = {
        "objects": objs,
        "rationale": (
            "A Deployment runs the FastAPI agent as a non-root user with a read-only root filesystem; "
            "the HPA owns the replica count and the PodDisruptionBudget keeps one pod up during drains. "
            "A ClusterIP Service behind a TLS Ingress is the only way in, and the NetworkPolicy admits "
            "only the ingress controller on port 8000."
        ),
        "explanations": {
            "Deployment/agent": "Runs the agent; probes use /healthz (liveness) and /readyz (readiness).",
            "NetworkPolicy/agent": "Isolates the pods: only the ingress controller may connect, on 8000.",
        },
        "assumptions": [
            "The OpenAI key lives in a Secret named agent-secrets, created out of band."
        ],
        "questions": [],
    }
    body.update(extra)
    return json.dumps(body)


def openai_request(messages: list[dict[str, str]]) -> dict[str, Any]:
    body = {
        "model": "gpt-4.1-mini",
        "messages": messages,
        "temperature": 0.0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "kai_plan", "schema": PLAN_SCHEMA},
        },
    }
    return {
        "body": json.dumps(body),
        "headers": {"Content-Type": ["application/json"], "User-Agent": ["Python-urllib/3.11"]},
        "method": "POST",
        "uri": OPENAI_URL,
    }


def openai_ok(content: str, n: int, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    body = {
        "id": f"chatcmpl-CXk{n}Q7mRz2bT9vLw4pYs8eHn1Ju",
        "object": "chat.completion",
        "created": 1764010000 + n,
        "model": "gpt-4.1-mini-2025-04-14",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_6f2eabb9a5",
    }
    return {
        "body": {"string": json.dumps(body)},
        "headers": {
            "Content-Type": ["application/json"],
            "openai-organization": ["user-redacted"],
            "openai-processing-ms": ["4213"],
            "openai-version": ["2020-10-01"],
            "x-ratelimit-limit-requests": ["5000"],
            "x-ratelimit-remaining-requests": ["4999"],
            "x-ratelimit-limit-tokens": ["4000000"],
            "x-ratelimit-remaining-tokens": ["3996554"],
            "x-request-id": [f"req_7c1e0f3a9b2d4e6f8a0b1c2d3e4f{n:04d}"],
        },
        "status": {"code": 200, "message": "OK"},
    }


def openai_429() -> dict[str, Any]:
    body = {
        "error": {
            "message": "Rate limit reached for gpt-4.1-mini in organization org-redacted on tokens per min (TPM): "
            "Limit 200000, Used 199170, Requested 3521. Please try again in 1.003s.",
            "type": "tokens",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    return {
        "body": {"string": json.dumps(body)},
        "headers": {
            "Content-Type": ["application/json"],
            "retry-after": ["1"],
            "x-ratelimit-remaining-tokens": ["830"],
            "x-request-id": ["req_429a5b6c7d8e9f0a1b2c3d4e5f60000"],
        },
        "status": {"code": 429, "message": "Too Many Requests"},
    }


def anthropic_request(messages: list[dict[str, str]]) -> dict[str, Any]:
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 8192,
        "temperature": 0.0,
        "messages": [m for m in messages if m["role"] != "system"],
        "system": system,
    }
    return {
        "body": json.dumps(body),
        "headers": {"Content-Type": ["application/json"], "anthropic-version": ["2023-06-01"]},
        "method": "POST",
        "uri": ANTHROPIC_URL,
    }


def anthropic_ok(text: str, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    body = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        },
    }
    return {
        "body": {"string": json.dumps(body)},
        "headers": {
            "Content-Type": ["application/json"],
            "anthropic-organization-id": ["redacted"],
            "request-id": ["req_011CUaX9kPzq3gWv8nT2rB7d"],
            "anthropic-ratelimit-requests-remaining": ["3999"],
        },
        "status": {"code": 200, "message": "OK"},
    }


def write(name: str, interactions: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    data = {"interactions": [{"request": q, "response": a} for q, a in interactions], "version": 1}
    (HERE / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False, width=100))


def main() -> None:
    msgs = first_messages(REQUEST, load_rules(), Config(), {})
    follow = [
        *msgs,
        {"role": "assistant", "content": "(previous answer)"},
        {"role": "user", "content": "(repair turn)"},
    ]
    write("openai_clean_draft", [(openai_request(msgs), openai_ok(plan(HARDENED), 1, 3412, 2187))])
    write(
        "openai_flawed_then_repaired",
        [
            (
                openai_request(msgs),
                openai_ok(
                    plan(DRAFT, rationale="A Deployment, a Service and an Ingress."), 2, 3412, 611
                ),
            ),
            (openai_request(follow), openai_ok(plan(HARDENED), 3, 5230, 2190)),
        ],
    )
    invalid = "Sure! Here is the deployment:\n```yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: [agent\n```"
    write(
        "openai_invalid_then_retry",
        [
            (openai_request(msgs), openai_ok(invalid, 4, 3412, 40)),
            (openai_request(follow), openai_ok(plan(HARDENED), 5, 3490, 2187)),
        ],
    )
    questions = json.dumps(
        {
            "objects": [],
            "rationale": "",
            "questions": [
                "Which container image (registry/repository:tag) should run?",
                "Which port does the agent listen on?",
            ],
        }
    )
    write("openai_questions", [(openai_request(msgs), openai_ok(questions, 6, 3398, 58))])
    write(
        "openai_429_then_ok",
        [
            (openai_request(msgs), openai_429()),
            (openai_request(msgs), openai_ok(plan(HARDENED), 7, 3412, 2187)),
        ],
    )
    first = [dict(o) for o in HARDENED if o["kind"] != "HorizontalPodAutoscaler"]
    for o in first:
        if o["kind"] == "Service":
            o["spec"] = {**o["spec"], "type": "LoadBalancer"}
        if o["kind"] == "Deployment":
            o["spec"] = {"replicas": 2, **o["spec"]}
    reprompt = [
        *follow[:-1],
        {"role": "user", "content": "(reprompt: use a ClusterIP instead and add an HPA)"},
    ]
    write(
        "openai_reprompt",
        [
            (openai_request(msgs), openai_ok(plan(first), 8, 3412, 2010)),
            (openai_request(reprompt), openai_ok(plan(HARDENED), 9, 5702, 2187)),
        ],
    )
    wrapped = (
        "Here is a production-ready layout for the agent, hardened against the evaluator's rules.\n\n```json\n"
        + plan(HARDENED)
        + "\n```\n\nApply it with `kai apply`, or ask me to change the exposure."
    )
    write("anthropic_prose_wrapped", [(anthropic_request(msgs), anthropic_ok(wrapped, 3551, 2240))])


if __name__ == "__main__":
    main()

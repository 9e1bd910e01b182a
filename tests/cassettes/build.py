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
from kai.model.client import DEFAULT_MAX_TOKENS  # noqa: E402
from kai.model.plan import PLAN_SCHEMA, PlanError, parse_plan  # noqa: E402
from kai.policy.catalog import load_rules  # noqa: E402

REQUEST = (
    "deploy ghcr.io/acme/agent:1.4.0 with 2 replicas on port 8000, health at /healthz and /readyz, "
    "reachable at agent.example.com"
)
VAGUE_REQUEST = "deploy my agent"  # what the questions cassette answers
REPROMPT = "use a ClusterIP instead and add an HPA from 2 to 10 at 70% CPU"
PLANTED = [
    "sk-proj-PLANTEDsecretVALUE1234567890",
    "ghp_PLANTEDtoken1234567890abcdefghij",
    "AKIAPLANTED00000TEST",
    "hunter2-planted-password",
]
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


def openai_request(
    messages: list[dict[str, str]], schema: dict[str, Any] | None = PLAN_SCHEMA
) -> dict[str, Any]:
    """What kai's client sends to OpenAI: response_format only when it asks for JSON."""
    body: dict[str, Any] = {
        "model": "gpt-4.1-mini",
        "messages": messages,
        "temperature": 0.0,
        "max_tokens": DEFAULT_MAX_TOKENS,
    }
    if schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "kai_plan", "schema": schema},
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


def gemini_ok(text: str, prompt_tokens: int, output_tokens: int) -> dict[str, Any]:
    body = {
        "candidates": [
            {
                "content": {"parts": [{"text": text}], "role": "model"},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": prompt_tokens + output_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
        },
        "modelVersion": "gemini-2.0-flash",
        "responseId": "q3xKaZ2bNfOq1dkP1rC8uAk",
    }
    return {
        "body": {"string": json.dumps(body)},
        "headers": {
            "Content-Type": ["application/json; charset=UTF-8"],
            "Server-Timing": ["gfet4t7; dur=5120"],
        },
        "status": {"code": 200, "message": "OK"},
    }


class Answers:
    """kai's real client, talking to authored answers: `kai.model.client._post` (OpenAI, Anthropic) and
    httpx (litellm's providers) are replaced while `run` goes, so every request in the cassette is
    the body kai really sent, after its own redaction, compaction and bounds. The answers are
    given in order; the last one repeats when kai asks more often."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self.answers = answers
        self.interactions: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def _next(self, method: str, url: str, headers: dict[str, str], body: Any) -> dict[str, Any]:
        answer = self.answers[min(len(self.interactions), len(self.answers) - 1)]
        kept = {k: [v] for k, v in headers.items() if k.lower() not in SECRET_HEADERS}
        request = {
            "body": json.dumps(body),
            "headers": {"Content-Type": ["application/json"], **kept},
            "method": method,
            "uri": url,
        }
        self.interactions.append((request, answer))
        return answer

    def run(self, run: Any) -> Any:
        import httpx

        import kai.model.client as llm_module

        def fake_post(url: str, headers: dict[str, str], body: Any, timeout: float) -> Any:
            answer = self._next("POST", url, headers, body)
            reply = {k: v[0] for k, v in answer["headers"].items()}
            return answer["status"]["code"], reply, json.loads(answer["body"]["string"])

        def fake_send(client: Any, request: httpx.Request, **_kw: Any) -> httpx.Response:
            url = str(request.url.copy_remove_param("key"))
            headers = dict(request.headers)
            answer = self._next(request.method, url, headers, json.loads(request.content))
            return httpx.Response(
                answer["status"]["code"],
                headers={k: v[0] for k, v in answer["headers"].items()},
                content=answer["body"]["string"].encode(),
                request=request,
            )

        real_post, real_send = llm_module._post, httpx.Client.send
        llm_module._post = fake_post
        httpx.Client.send = fake_send  # type: ignore[method-assign,assignment]
        try:
            return run()
        finally:
            llm_module._post = real_post
            httpx.Client.send = real_send  # type: ignore[method-assign]


SECRET_HEADERS = {"authorization", "x-api-key", "x-goog-api-key", "api-key"}
KEYS = {
    "OPENAI_API_KEY": "sk-test-not-a-real-key-0000000000",
    "ANTHROPIC_API_KEY": "sk-ant-test-not-a-real-key-000000",
    "GEMINI_API_KEY": "AIza-test-not-a-real-key-000000000000000",
}


def authored(name: str, answers: list[dict[str, Any]], run: Any) -> Any:
    """Write cassette `name`: what kai sent while `run` went, and the authored answers."""
    import os

    for k, v in KEYS.items():
        os.environ.setdefault(k, v)
    for k in ("KAI_MAX_TOKENS", "KAI_MODEL", "KAI_API_BASE"):
        os.environ.pop(k, None)
    script = Answers(answers)
    try:
        out = script.run(run)
    except Exception as e:  # a model error is the case some cassettes stage
        from kai.errors import KaiError

        if not isinstance(e, KaiError):
            raise
        out = e
    write(name, script.interactions)
    return out


def llm(model: str = "openai/gpt-4.1-mini", **settings: Any) -> Any:
    from kai.model.client import LLM, Settings

    return LLM(Settings(model=model, cache=False, **settings), None, sleep=lambda _s: None)


def run_generate(
    request: str = REQUEST,
    model: str = "openai/gpt-4.1-mini",
    config: Config | None = None,
    given: dict[str, str] | None = None,
    **settings: Any,
) -> Any:
    """What the tests run: kai's loop with a fresh client, the bundled rules, no user config."""
    from kai.generate import generate

    client = llm(model, **settings)
    return lambda: generate(
        request, client.settings, load_rules(), config or Config(), given, llm=client
    )


# Every cassette these scripts write says it was written by hand (never "recorded"); the ones
# recorded from a real model are tests/cassettes/local/, written by record_model.py.
AUTHORED = {
    "provenance": "authored",
    "note": "hand-written from the provider's documented wire format to stage a case; no model answered",
}


def write(name: str, interactions: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    by = Path(sys.argv[0]).name if Path(sys.argv[0]).name.startswith("build") else "build.py"
    data = {
        "metadata": {**AUTHORED, "by": f"tests/cassettes/{by}"},
        "interactions": [{"request": q, "response": a} for q, a in interactions],
        "version": 1,
    }
    (HERE / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False, width=100))


def main() -> None:
    authored("openai_clean_draft", [openai_ok(plan(HARDENED), 1, 3412, 2187)], run_generate())
    # The same answer under a bound of 1,500 tokens (the tests of max_tokens).
    authored(
        "openai_clean_draft_max_tokens_1500",
        [openai_ok(plan(HARDENED), 1, 3412, 2187)],
        run_generate(max_tokens=1500),
    )
    flawed = openai_ok(
        plan(DRAFT, rationale="A Deployment, a Service and an Ingress."), 2, 3412, 611
    )
    authored(
        "openai_flawed_then_repaired",
        [flawed, openai_ok(plan(HARDENED), 3, 5230, 2190)],
        run_generate(),
    )
    # The flawed draft again, for a request and a team config with planted secrets: the bodies
    # hold what kai sent after redaction (the test checks no planted value is in them).
    authored(
        "openai_planted_secrets",
        [flawed, openai_ok(plan(HARDENED), 3, 5230, 2190)],
        run_generate(
            f"{REQUEST}. Use OPENAI_API_KEY={PLANTED[0]}, pull with token {PLANTED[1]}, "
            f"AWS key {PLANTED[2]}, and the database password: {PLANTED[3]}",
            config=Config(extra={"registry": f"https://robot:{PLANTED[3]}@registry.example.com"}),
        ),
    )
    invalid = "Sure! Here is the deployment:\n```yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: [agent\n```"
    authored(
        "openai_invalid_then_retry",
        [openai_ok(invalid, 4, 3412, 40), openai_ok(plan(HARDENED), 5, 3490, 2187)],
        run_generate(),
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
    authored("openai_questions", [openai_ok(questions, 6, 3398, 58)], run_generate(VAGUE_REQUEST))
    # Authored: a model that answers with nothing at all, twice (kai's corrective retry between).
    empty = json.dumps({"objects": [], "rationale": "Done.", "questions": []})
    try:
        parse_plan(empty)
        raise SystemExit("an empty plan must not parse")
    except PlanError:
        pass
    authored(
        "openai_empty_plan_authored",
        [openai_ok(empty, 10, 3412, 12), openai_ok(empty, 11, 3480, 12)],
        run_generate(),
    )
    authored(
        "openai_429_then_ok",
        [openai_429(), openai_ok(plan(HARDENED), 7, 3412, 2187)],
        run_generate(),
    )
    first = [dict(o) for o in HARDENED if o["kind"] != "HorizontalPodAutoscaler"]
    for o in first:
        if o["kind"] == "Service":
            o["spec"] = {**o["spec"], "type": "LoadBalancer"}
        if o["kind"] == "Deployment":
            o["spec"] = {"replicas": 2, **o["spec"]}

    def reprompt() -> Any:
        from kai.generate import generate

        client = llm()
        before = generate(REQUEST, client.settings, load_rules(), Config(), llm=client)
        return generate(
            REQUEST,
            client.settings,
            load_rules(),
            Config(),
            llm=client,
            history=before.messages,
            feedback=REPROMPT,
            previous_yaml=before.yaml,
        )

    authored(
        "openai_reprompt",
        [openai_ok(plan(first), 8, 3412, 2010), openai_ok(plan(HARDENED), 9, 5702, 2187)],
        reprompt,
    )
    # Authored: a model that switches the evaluator off with a bare wildcard suppression on the
    # flawed draft, and keeps it in its repair answers.
    ignored = [
        {**o, "metadata": {**o["metadata"], "annotations": {"kai.dev/ignore": "*"}}} for o in DRAFT
    ]
    answer = plan(ignored, rationale="All rules are ignored for this app.")
    authored(
        "openai_ignore_all_authored",
        [
            openai_ok(answer, 20, 3412, 640),
            openai_ok(answer, 21, 2950, 610),
            openai_ok(answer, 22, 2950, 610),
        ],
        run_generate(),
    )

    # Authored: the person said health at / (--set health=/); the model probes /healthz first
    # and follows the KAI-REQ finding in the repair round.
    def probing(path: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = json.loads(json.dumps(HARDENED))
        for o in out:
            if o["kind"] == "Deployment":
                for c in o["spec"]["template"]["spec"]["containers"]:
                    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                        if "httpGet" in c.get(probe, {}):
                            c[probe]["httpGet"]["path"] = path
        return out

    authored(
        "openai_health_constraint_authored",
        [
            openai_ok(plan(HARDENED), 20, 3420, 2187),
            openai_ok(plan([o for o in probing("/") if o["kind"] == "Deployment"]), 21, 3000, 900),
        ],
        run_generate(
            REQUEST.replace("health at /healthz and /readyz", "health at /"), given={"health": "/"}
        ),
    )
    authored(
        "gemini_via_litellm",
        [gemini_ok(plan(HARDENED), 3480, 2201)],
        run_generate(model="gemini/gemini-2.0-flash"),
    )
    wrapped = (
        "Here is a production-ready layout for the agent, hardened against the evaluator's rules.\n\n```json\n"
        + plan(HARDENED)
        + "\n```\n\nApply it with `kai apply`, or ask me to change the exposure."
    )
    authored(
        "anthropic_prose_wrapped",
        [anthropic_ok(wrapped, 3551, 2240)],
        run_generate(model="anthropic/claude-sonnet-4-5"),
    )
    authored(
        "anthropic_prose_wrapped_max_tokens_1500",
        [anthropic_ok(wrapped, 3551, 2240)],
        run_generate(model="anthropic/claude-sonnet-4-5", max_tokens=1500),
    )


# ---------- eval tasks: one cassette per task ----------

TCP_PORTS = {5432, 6379, 50051, 6333, 6334, 9100}


def _name(task_id: str) -> str:
    return task_id.split("-", 1)[1][:40]


def _container(name: str, e: dict[str, Any], flaw: str | None) -> dict[str, Any]:
    image = e.get("image") or e["image_prefix"] + ("latest" if flaw == "latest" else "1.4.0")
    c: dict[str, Any] = {"name": name[:40], "image": image, "imagePullPolicy": "IfNotPresent"}
    ports = e.get("ports", [])
    if ports:
        c["ports"] = [{"name": f"p{p}"[:15], "containerPort": p, "protocol": "TCP"} for p in ports]
    env = []
    if e.get("secret_ref"):
        env.append(
            {
                "name": "API_KEY",
                "valueFrom": {"secretKeyRef": {"name": e["secret_ref"], "key": "api-key"}},
            }
        )
    if flaw == "literal-key":
        env.append({"name": "OPENAI_API_KEY", "value": "sk-proj-literal-key-from-the-request-0001"})
    elif name == "chat-backend":
        env.append(
            {
                "name": "OPENAI_API_KEY",
                "valueFrom": {"secretKeyRef": {"name": "chat-secrets", "key": "openai-api-key"}},
            }
        )
    if env:
        c["env"] = env
    c["resources"] = {
        "requests": {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "256Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi", "ephemeral-storage": "1Gi"},
    }
    probes = e.get("probes") or {}
    if ports and ports[0] not in TCP_PORTS:
        port = c["ports"][0]["name"]
        c["livenessProbe"] = {
            "httpGet": {"path": probes.get("liveness", "/healthz"), "port": port},
            "periodSeconds": 20,
        }
        c["readinessProbe"] = {
            "httpGet": {"path": probes.get("readiness", "/readyz"), "port": port},
            "periodSeconds": 5,
        }
    elif ports:
        c["livenessProbe"] = {
            "tcpSocket": {"port": ports[0]},
            "periodSeconds": 20,
            "failureThreshold": 6,
        }
        c["readinessProbe"] = {"tcpSocket": {"port": ports[0]}, "periodSeconds": 5}
    else:
        c["livenessProbe"] = {
            "exec": {"command": ["/bin/sh", "-c", "test -f /tmp/alive"]},
            "periodSeconds": 30,
        }
        c["readinessProbe"] = {
            "exec": {"command": ["/bin/sh", "-c", "test -f /tmp/ready"]},
            "periodSeconds": 10,
        }
    c["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    c["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    return c


def _pod(
    name: str, e: dict[str, Any], labels: dict[str, str], flaw: str | None, batch: bool = False
) -> dict[str, Any]:
    c = _container(name, e, flaw)
    if batch:
        c.pop("livenessProbe"), c.pop("readinessProbe"), c.pop("ports", None)
    spec = {
        "serviceAccountName": name,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [c],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if batch:
        spec["restartPolicy"] = "OnFailure"
    return {"metadata": {"labels": labels}, "spec": spec}


def task_plan(task: dict[str, Any], flaw: str | None = None) -> list[dict[str, Any]]:
    e = task["expect"]
    name = _name(task["id"])
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}
    meta = {"name": name, "labels": dict(labels)}
    if e.get("namespace"):
        meta["namespace"] = e["namespace"]
    kinds = e["kinds"]
    objs: list[dict[str, Any]] = []
    replicas = e.get("replicas", 1)
    hpa = e.get("min_replicas")
    if "CronJob" in kinds:
        objs.append(
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "metadata": meta,
                "spec": {
                    "schedule": e["schedule"],
                    "concurrencyPolicy": "Forbid",
                    "startingDeadlineSeconds": 300,
                    "jobTemplate": {
                        "spec": {
                            "ttlSecondsAfterFinished": 86400,
                            "template": _pod(name, e, labels, flaw, batch=True),
                        }
                    },
                },
            }
        )
    elif "Job" in kinds:
        objs.append(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": meta,
                "spec": {
                    "backoffLimit": 3,
                    "ttlSecondsAfterFinished": 86400,
                    "template": _pod(name, e, labels, flaw, batch=True),
                },
            }
        )
    elif "StatefulSet" in kinds:
        objs.append(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": meta,
                "spec": {
                    "serviceName": name,
                    "replicas": replicas,
                    "selector": {"matchLabels": labels},
                    "template": _pod(name, e, labels, flaw),
                    "volumeClaimTemplates": [
                        {
                            "metadata": {"name": "data"},
                            "spec": {
                                "accessModes": ["ReadWriteOnce"],
                                "resources": {"requests": {"storage": "20Gi"}},
                            },
                        }
                    ],
                },
            }
        )
        objs[-1]["spec"]["template"]["spec"]["containers"][0]["volumeMounts"].append(
            {"name": "data", "mountPath": "/data"}
        )
    else:
        spec: dict[str, Any] = {
            "selector": {"matchLabels": labels},
            "template": _pod(name, e, labels, flaw),
        }
        if not hpa:
            spec = {"replicas": replicas, **spec}
        if (hpa or replicas) >= 2:
            spec["template"]["spec"]["topologySpreadConstraints"] = [
                {
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": {"matchLabels": labels},
                }
            ]
        objs.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": spec})
    ports = e.get("ports", [])
    if ports and e.get("exposure") != "none":
        svc_spec: dict[str, Any] = {
            "selector": labels,
            "ports": [
                {"name": f"p{p}"[:15], "port": p, "targetPort": f"p{p}"[:15], "protocol": "TCP"}
                for p in ports
            ],
        }
        if e.get("exposure") == "headless":
            svc_spec = {"clusterIP": "None", **svc_spec}
        objs.append({"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": svc_spec})
    if str(e.get("exposure", "")).startswith("ingress:"):
        host = e["exposure"].split(":", 1)[1]
        objs.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": meta,
                "spec": {
                    "ingressClassName": "nginx",
                    "tls": [{"hosts": [host], "secretName": f"{name}-tls"}],
                    "rules": [
                        {
                            "host": host,
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "pathType": "Prefix",
                                        "backend": {
                                            "service": {"name": name, "port": {"number": ports[0]}}
                                        },
                                    }
                                ]
                            },
                        }
                    ],
                },
            }
        )
    if hpa:
        objs.append(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": meta,
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    "minReplicas": hpa,
                    "maxReplicas": hpa * 4,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {"type": "Utilization", "averageUtilization": 70},
                            },
                        }
                    ],
                },
            }
        )
    if "ConfigMap" in kinds:
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {**meta, "name": f"{name}-config"},
                "data": {"LOG_LEVEL": "info"},
            }
        )
        objs[0]["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
            {"configMapRef": {"name": f"{name}-config"}}
        ]
    # The pods name their own ServiceAccount, so a correct answer creates it (KAI-REF-004).
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta,
            "automountServiceAccountToken": False,
        }
    )
    ingress_rule: dict[str, Any] = (
        {"ports": [{"protocol": "TCP", "port": p} for p in ports]} if ports else {}
    )
    objs.append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta,
            "spec": {
                "podSelector": {"matchLabels": labels},
                "policyTypes": ["Ingress"],
                "ingress": [ingress_rule] if ports else [],
            },
        }
    )
    if (hpa or replicas) >= 2 and "CronJob" not in kinds and "Job" not in kinds:
        objs.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": meta,
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}},
            }
        )
    if flaw == "sloppy":  # what kai's deterministic fixes repair without asking the model again
        for o in objs:
            tpl = pod_of(o)
            if tpl:
                tpl["spec"].pop("securityContext", None)
                tpl["spec"]["containers"][0].pop("securityContext", None)
                tpl["spec"]["containers"][0].pop("resources", None)
        objs = [o for o in objs if o["kind"] not in ("NetworkPolicy", "PodDisruptionBudget")]
    return objs


def pod_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    spec: dict[str, Any] = obj.get("spec", {})
    template: dict[str, Any] | None = (
        spec["jobTemplate"]["spec"]["template"]
        if obj["kind"] == "CronJob"
        else spec.get("template")
    )
    return template


FLAWS = {
    "20-agent-latest-draft": "latest",
    "25-chat-backend": "literal-key",
    "02-nginx-internal": "sloppy",
    "04-worker": "sloppy",
    "09-redis-cache": "sloppy",
}


def eval_cassettes() -> None:
    (HERE / "eval").mkdir(exist_ok=True)
    for n, f in enumerate(sorted((ROOT / "examples" / "tasks").glob("*.yaml"))):
        task = yaml.safe_load(f.read_text())
        flaw = FLAWS.get(task["id"])
        good = plan(
            task_plan(task),
            rationale=f"Objects for: {task['request']}",
            explanations={},
            assumptions=[],
        )
        size = len(good) // 4
        if flaw in ("latest", "literal-key"):
            bad = plan(
                task_plan(task, flaw), rationale="First draft.", explanations={}, assumptions=[]
            )
            answers = [
                openai_ok(bad, 100 + 2 * n, 3400, size),
                openai_ok(good, 101 + 2 * n, 3400 + size + 600, size),
            ]
        else:
            answer = (
                plan(
                    task_plan(task, flaw),
                    rationale=f"Objects for: {task['request']}",
                    explanations={},
                    assumptions=[],
                )
                if flaw
                else good
            )
            answers = [openai_ok(answer, 100 + 2 * n, 3400, len(answer) // 4)]
        authored(f"eval/{task['id']}", answers, run_generate(task["request"]))


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:  # rebuild on a copy; exit 1 with a diff when stale
        import check_generated

        raise SystemExit(check_generated.main([__file__]))
    main()
    eval_cassettes()

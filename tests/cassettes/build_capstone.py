"""Writes the capstone's model cassette (examples/capstone/): a first draft that is realistic and
imperfect, then the model's answer to kai's one repair turn, in the OpenAI chat-completions wire
format. Like build.py the exchange is authored, not recorded (no model key exists where kai is
developed); the request bodies are the ones kai sends, because the conversation is produced by
running kai's own loop against the authored answers. Rerun after changing prompts or the spec:

    python tests/cassettes/build_capstone.py
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from build import openai_ok, openai_request, write  # noqa: E402

from kai.config import Config  # noqa: E402
from kai.generate import first_messages, generate  # noqa: E402
from kai.model.client import Completion, Settings, Usage  # noqa: E402
from kai.model.redact import redact_text  # noqa: E402
from kai.policy.catalog import load_rules  # noqa: E402

REQUEST = (ROOT / "examples" / "capstone" / "request.txt").read_text(encoding="utf-8").strip()
CASSETTE = "capstone_generate"
NS = "agents"
LABELS = {"app.kubernetes.io/name": "agent", "app.kubernetes.io/instance": "agent"}
# Token counts as the API would report them for these sizes (about 4 characters a token).
USAGE = [(3655, 1190), (6140, 2050)]


def _meta(name: str = "agent") -> dict[str, Any]:
    return {"name": name, "namespace": NS, "labels": dict(LABELS)}


def draft() -> list[dict[str, Any]]:
    """A first draft as a capable model writes it for the long request. Most of what was asked
    is there, but it pins replicas next to the HPA, carries the rolling update's
    maxUnavailable: 0 into the PodDisruptionBudget (which blocks every node drain), stops at
    runAsNonRoot and a read-only root (no seccomp, capabilities or privilege-escalation
    settings; the token still mounted) and drops the request's last clause, the NetworkPolicy."""
    container = {
        "name": "agent",
        "image": "ghcr.io/acme/agent:1.4.0",
        "ports": [{"name": "http", "containerPort": 8000}],
        "env": [
            {
                "name": "OPENAI_API_KEY",
                "valueFrom": {"secretKeyRef": {"name": "agent-secrets", "key": "openai-api-key"}},
            }
        ],
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi", "ephemeral-storage": "256Mi"},
            "limits": {"cpu": "1", "memory": "512Mi", "ephemeral-storage": "1Gi"},
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
        },
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "initialDelaySeconds": 5,
            "periodSeconds": 5,
        },
        "securityContext": {"readOnlyRootFilesystem": True},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": dict(LABELS)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": dict(LABELS)},
                        }
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(LABELS),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _meta(),
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["agent.example.com"], "secretName": "agent-tls"}],
            "rules": [
                {
                    "host": "agent.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "agent", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "agent"},
            "minReplicas": 2,
            "maxReplicas": 10,
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
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(),
        "spec": {"maxUnavailable": 0, "selector": {"matchLabels": dict(LABELS)}},
    }
    return [deployment, service, ingress, hpa, pdb]


def repaired(as_sent: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The model's answer to the repair turn: the objects kai sent back (its fixes included),
    with the two findings fixed and kai's generic NetworkPolicy narrowed to what the request
    asked for (the ingress controller in; DNS and HTTPS out). kai's compact repair turn sends only
    the objects with findings and names the others; the model sends the NetworkPolicy back
    anyway, because the request's last clause asks for exactly that policy."""
    out = []
    objects = copy.deepcopy(list(as_sent))
    if not any(o["kind"] == "NetworkPolicy" for o in objects):
        objects.append(
            {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": _meta()}
        )
    for obj in objects:
        kind = obj["kind"]
        if kind == "Deployment":
            obj["spec"].pop("replicas", None)  # KAI-HPA-003: the HPA owns the count
        elif kind == "PodDisruptionBudget":
            obj["spec"] = {"maxUnavailable": 1, "selector": obj["spec"]["selector"]}  # KAI-AVL-003
        elif kind == "NetworkPolicy":
            obj["spec"] = {
                "podSelector": {"matchLabels": dict(LABELS)},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}
                                }
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": 8000}],
                    }
                ],
                "egress": [
                    {
                        "to": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                                },
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                            }
                        ],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    },
                    {"ports": [{"protocol": "TCP", "port": 443}]},
                ],
            }
        out.append(obj)
    return out


def plan(objects: list[dict[str, Any]], rationale: str, **extra: Any) -> str:
    body = {
        "objects": objects,
        "rationale": rationale,
        "explanations": extra.pop("explanations", {}),
        "assumptions": extra.pop("assumptions", []),
        "questions": [],
    }
    return json.dumps(body)


FIRST_RATIONALE = (
    "A Deployment runs the FastAPI agent as a non-root user with a read-only root filesystem and "
    "an emptyDir at /tmp; rolling updates surge one pod and never take one away, so capacity holds "
    "during a release. The HPA scales between 2 and 10 replicas on 70% CPU, which works because "
    "the container requests CPU. A ClusterIP Service sits behind an nginx Ingress that terminates "
    "TLS for agent.example.com, and a PodDisruptionBudget protects the pods during drains."
)
EXPLANATIONS = {
    "Deployment/agent": "Runs the agent; /healthz is the liveness probe and /readyz the readiness "
    "probe, both on the named port http (8000). The API key comes from agent-secrets by reference.",
    "Service/agent": "A stable in-cluster address on port 80, forwarding to the container's port http.",
    "Ingress/agent": "Routes agent.example.com to the Service and terminates TLS with agent-tls.",
    "HorizontalPodAutoscaler/agent": "Keeps 2 to 10 replicas, adding pods above 70% average CPU.",
    "PodDisruptionBudget/agent": "Limits how many agent pods a voluntary disruption may take at once.",
}
ASSUMPTIONS = [
    "The Secret agent-secrets (key openai-api-key) and the TLS Secret agent-tls exist in agents.",
    "The ingress controller runs in the namespace ingress-nginx.",
]


class Scripted:
    """Stands in for kai.model.client.LLM while authoring: answers in order, keeps what kai sent."""

    def __init__(self, settings: Settings, answers: list[str]) -> None:
        self.settings = settings
        self.answers = answers
        self.sent: list[list[dict[str, str]]] = []
        self.calls = self.prompt_tokens = self.completion_tokens = 0
        self.cost_usd: float | None = None

    def complete(self, messages: Sequence[dict[str, str]], schema: Any = None) -> Completion:
        # What reaches the wire: LLM.complete redacts every message before building the body.
        self.sent.append([{**m, "content": redact_text(m["content"])} for m in messages])
        if self.calls == len(self.answers):
            raise SystemExit("the authored answers did not leave the loop clean: kai asked again")
        p, c = USAGE[self.calls]
        self.calls += 1
        self.prompt_tokens += p
        self.completion_tokens += c
        return Completion(self.answers[self.calls - 1], self.settings.model, Usage(p, c))


def main() -> None:
    rules = load_rules()
    settings = Settings(model="openai/gpt-4.1-mini", cache=False)
    first = plan(draft(), FIRST_RATIONALE, explanations=EXPLANATIONS, assumptions=ASSUMPTIONS)
    # The repair answer depends on what kai sends back, so run kai's loop once to learn it.
    probe = Scripted(settings, [first, first])
    generate(REQUEST, settings, rules, Config(), max_rounds=2, llm=probe)  # type: ignore[arg-type]
    sent_yaml = probe.sent[1][-1]["content"].split("```yaml\n", 1)[1].rsplit("```", 1)[0]
    import yaml

    second = plan(
        repaired([o for o in yaml.safe_load_all(sent_yaml) if o]),
        "",
        explanations={
            "NetworkPolicy/agent": "Only the ingress controller may reach the pods, on 8000; out: "
            "DNS to kube-dns and HTTPS (443) to the model API.",
            "PodDisruptionBudget/agent": "At most one pod may be evicted at a time, so a drain "
            "always proceeds and at least one pod keeps serving.",
        },
    )
    llm = Scripted(settings, [first, second])
    result = generate(REQUEST, settings, rules, Config(), llm=llm)  # type: ignore[arg-type]
    assert result.failing == [] and llm.calls == 2, [f.rule for f in result.failing]
    assert llm.sent[0] == first_messages(REQUEST, rules, Config(), {})
    assert result.rounds[0].remaining > 0
    write(
        CASSETTE,
        [
            (openai_request(llm.sent[0]), openai_ok(first, 41, *USAGE[0])),
            (openai_request(llm.sent[1]), openai_ok(second, 42, *USAGE[1])),
        ],
    )
    print(
        f"wrote {CASSETTE}.yaml: draft {result.rounds[0].findings_in_draft} findings, "
        f"{result.rounds[0].fixed_by_kai} fixed by kai, {result.rounds[0].remaining} sent back; "
        f"then {result.rounds[-1].remaining} remaining"
    )


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:  # rebuild on a copy; exit 1 with a diff when stale
        import check_generated

        raise SystemExit(check_generated.main([__file__]))
    main()

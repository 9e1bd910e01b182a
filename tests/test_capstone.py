"""The capstone (examples/capstone/): its walkthrough runs offline, command by command, through
the CLI, with the model's answers replayed from a cassette and no cluster."""

from __future__ import annotations

import json
import re
import shlex
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, model_tapes

from kai.helm.runner import render_chart
from kai.inputs import load_paths

CAPSTONE = EXAMPLES / "capstone"
REQUEST_FILE = "examples/capstone/request.txt"
REQUEST_ARG = f"$(cat {REQUEST_FILE})"  # as the shell sees it before substitution
MODEL = "openai/gpt-4.1-mini"
POD_LABELS = {"app.kubernetes.io/name": "agent", "app.kubernetes.io/instance": "agent"}

# The walkthrough, in order, as a person types it (walkthrough.md must say exactly this).
STEPS: list[list[str]] = [
    ["mkdir", "-p", "out"],
    ["kai", "generate", REQUEST_ARG, "-o", "out/agent.yaml"],
    ["kai", "review", "out/agent.yaml", "--explain"],
    ["kai", "fix", "out/agent.yaml", "--in-place"],
    ["kai", "review", "out/agent.yaml"],
    ["kai", "package", "helm", "out/agent.yaml", "--name", "agent", "--out", "out/chart"],
    ["kai", "review", "out/chart"],
    ["kai", "apply", "out/agent.yaml", "-n", "agents"],
]


def walkthrough() -> tuple[dict[str, str], list[list[str]]]:
    """The environment exported and the commands run in walkthrough.md's ```sh blocks."""
    text = (CAPSTONE / "walkthrough.md").read_text(encoding="utf-8")
    env: dict[str, str] = {}
    commands: list[list[str]] = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["export"]:
                env.update(w.split("=", 1) for w in words[1:])  # type: ignore[misc]
            elif words:
                commands.append(words)
    return env, commands


@pytest.fixture
def unreachable_kubeconfig(tmp_path: Path) -> Iterator[Path]:
    """A kubeconfig naming a port that is bound but never listened on: connections are refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = yaml.safe_load((Path(__file__).parent / "data" / "kubeconfig.yaml").read_text())
    config["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{port}"
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    yield path
    sock.close()


def _objects(path: Path) -> dict[str, dict[str, Any]]:
    found = {m.obj["kind"]: m.obj for m in load_paths([str(path)])[0]}
    return found


def _key(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True)


def _findings(r: Any) -> list[tuple[str, str, str, str]]:
    data = r.json()
    return sorted(
        (f["rule"], f["severity"], json.dumps(f["object"], sort_keys=True), f["path"])
        for f in data["findings"]
    )


def check_spec(objs: dict[str, dict[str, Any]]) -> None:
    """Every requirement of spec.md, field by field."""
    assert set(objs) == {
        "Deployment",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }
    assert {o["metadata"]["namespace"] for o in objs.values()} == {"agents"}
    dep = objs["Deployment"]
    assert "replicas" not in dep["spec"]  # the HPA owns the count
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    pod = dep["spec"]["template"]["spec"]
    assert dep["spec"]["template"]["metadata"]["labels"] == POD_LABELS
    (c,) = pod["containers"]
    assert c["image"] == "ghcr.io/acme/agent:1.4.0"
    assert c["ports"] == [{"name": "http", "containerPort": 8000}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    # The spec's CPU and memory, plus the ephemeral-storage request and limit kai's resources
    # principle asks of every container (KAI-RES-004).
    assert c["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi", "ephemeral-storage": "256Mi"},
        "limits": {"cpu": "1", "memory": "512Mi", "ephemeral-storage": "1Gi"},
    }
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert c["securityContext"] == {
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    assert c["env"] == [
        {
            "name": "OPENAI_API_KEY",
            "valueFrom": {"secretKeyRef": {"name": "agent-secrets", "key": "openai-api-key"}},
        }
    ]
    hpa = objs["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "agent"}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 10)
    assert hpa["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70},
            },
        }
    ]
    pdb = objs["PodDisruptionBudget"]["spec"]
    assert pdb == {  # kai fix added the eviction policy (KAI-AVL-007)
        "maxUnavailable": 1,
        "selector": {"matchLabels": POD_LABELS},
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    svc = objs["Service"]["spec"]
    assert svc["type"] == "ClusterIP" and svc["selector"] == POD_LABELS
    assert svc["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    ing = objs["Ingress"]["spec"]
    assert ing["ingressClassName"] == "nginx"
    assert ing["tls"] == [{"hosts": ["agent.example.com"], "secretName": "agent-tls"}]
    (rule,) = ing["rules"]
    assert rule["host"] == "agent.example.com"
    assert rule["http"]["paths"][0]["backend"] == {
        "service": {"name": "agent", "port": {"number": 80}}
    }
    np = objs["NetworkPolicy"]["spec"]
    assert np["podSelector"] == {"matchLabels": POD_LABELS}
    assert np["policyTypes"] == ["Ingress", "Egress"]
    assert np["ingress"] == [
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
    ]
    out_ports = sorted(
        (p["protocol"], p["port"]) for rule in np["egress"] for p in rule.get("ports", [])
    )
    assert out_ports == [("TCP", 53), ("TCP", 443), ("UDP", 53)]  # DNS and HTTPS only


def test_walkthrough_runs_offline_end_to_end(
    kai: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    unreachable_kubeconfig: Path,
) -> None:
    env, _ = walkthrough()
    monkeypatch.setenv("KAI_MODEL", env["KAI_MODEL"])
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-0000000000")
    monkeypatch.setenv("KUBECONFIG", str(unreachable_kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    request = (CAPSTONE / "request.txt").read_text(encoding="utf-8").strip()
    steps = iter(STEPS)

    def run(expect: list[str]) -> Any:
        step = next(steps)
        assert step == expect  # the test walks STEPS in order, nothing skipped
        args = [request if a == REQUEST_ARG else a for a in step[1:]]
        return kai(*args)

    assert next(steps) == ["mkdir", "-p", "out"]
    (tmp_path / "out").mkdir()

    # 1. generate: the imperfect draft, kai's fixes, one repair turn, clean.
    with model_tapes().use_cassette("capstone_generate.yaml") as cassette:
        r = run(["kai", "generate", REQUEST_ARG, "-o", "out/agent.yaml"])
    assert r.code == 0, r.err
    assert cassette.play_count == 2 and cassette.all_played
    assert "PASS stopped: clean; 2 model calls, 9795 prompt + 3240 completion tokens" in r.out
    assert "KAI-NET-001" in r.out and "KAI-HPA-003" in r.out and "KAI-AVL-003" in r.out
    agent = tmp_path / "out" / "agent.yaml"
    assert agent.is_file()
    generated = agent.read_text(encoding="utf-8")
    check_spec(_objects(agent))

    # 2. review with explanations: passes; what is left is explained.
    r = run(["kai", "review", "out/agent.yaml", "--explain"])
    assert r.code == 0, r.out
    assert "PASS 6 objects, 2 findings (0 error, 0 warning, 2 info)" in r.out
    assert "KAI-SEC-020" in r.out and "Why it matters" in r.out
    reviewed = kai("review", "out/agent.yaml", "-o", "json")
    assert reviewed.code == 0 and reviewed.json()["summary"]["passed"] is True
    assert sorted(f["rule"] for f in reviewed.json()["findings"]) == ["KAI-REF-002", "KAI-SEC-020"]

    # 3. fix: nothing left for kai's deterministic fixes (generate applied them), file unchanged.
    r = run(["kai", "fix", "out/agent.yaml", "--in-place"])
    assert r.code == 0 and "0 fixes in 0 of 1 file" in r.err + r.out
    assert agent.read_text(encoding="utf-8") == generated
    r = run(["kai", "review", "out/agent.yaml"])
    assert r.code == 0 and "PASS 6 objects, 2 findings" in r.out

    # 4. package: the chart renders to exactly the reviewed objects, and reviews the same.
    r = run(["kai", "package", "helm", "out/agent.yaml", "--name", "agent", "--out", "out/chart"])
    assert r.code == 0, r.err
    chart = tmp_path / "out" / "chart"
    for f in ("Chart.yaml", "values.yaml", "templates/deployment-agent.yaml"):
        assert (chart / f).is_file(), f
    objects = [m.obj for m in load_paths([str(agent)])[0]]
    assert sorted(map(_key, render_chart(chart))) == sorted(map(_key, objects))
    r = run(["kai", "review", "out/chart"])
    assert r.code == 0 and "PASS 6 objects, 2 findings (0 error, 0 warning, 2 info)" in r.out
    assert _findings(kai("review", "out/chart", "-o", "json")) == _findings(reviewed)

    # 5. apply without a cluster: the review against the live namespace needs the server, so kai
    # stops at once with one line and exit 4; nothing else on stderr, nothing applied.
    r = run(["kai", "apply", "out/agent.yaml", "-n", "agents"])
    assert r.code == 4, r.err
    assert "applied" not in r.out
    assert r.err.startswith(
        "error: cannot reach the cluster (context recorded, server http://127.0.0.1:"
    )
    assert r.err.count("\n") == 1 and "Traceback" not in r.err
    assert next(steps, None) is None  # every step of the walkthrough ran


def test_walkthrough_md_lists_exactly_the_commands_the_test_runs() -> None:
    env, commands = walkthrough()
    assert commands == STEPS
    assert env["KAI_MODEL"] == MODEL and "OPENAI_API_KEY" in env
    # The documented order is the issue's: generate, review, fix, review, package, review, apply.
    assert [c[1] for c in commands if c[0] == "kai"] == [
        "generate",
        "review",
        "fix",
        "review",
        "package",
        "review",
        "apply",
    ]


def test_request_is_the_specs_and_the_one_recorded() -> None:
    request = (CAPSTONE / "request.txt").read_text(encoding="utf-8").strip()
    assert "\n" not in request
    spec = (CAPSTONE / "spec.md").read_text(encoding="utf-8")
    quoted = " ".join(
        line[1:].strip() for line in spec.splitlines() if line.startswith(">")
    )  # the block quote in spec.md, unwrapped
    assert quoted == request
    for fact in ("ghcr.io/acme/agent:1.4.0", "/healthz", "/readyz", "agent.example.com", "agents"):
        assert fact in request and fact in spec
    tape = yaml.safe_load(
        (Path(__file__).parent / "cassettes" / "capstone_generate.yaml").read_text()
    )
    first = json.loads(tape["interactions"][0]["request"]["body"])
    assert first["messages"][-1] == {"role": "user", "content": request}


def test_the_recorded_draft_is_imperfect_and_the_repair_turn_is_kais(tmp_path: Path) -> None:
    """The cassette is not a clean answer in disguise: its first draft fails review, and the
    repair request carries exactly the findings kai could not fix itself."""
    from kai.pipeline import evaluate
    from kai.policy.catalog import load_rules

    tape = yaml.safe_load(
        (Path(__file__).parent / "cassettes" / "capstone_generate.yaml").read_text()
    )
    answers = [
        json.loads(json.loads(i["response"]["body"]["string"])["choices"][0]["message"]["content"])
        for i in tape["interactions"]
    ]
    draft = tmp_path / "draft.yaml"
    draft.write_text(yaml.safe_dump_all(answers[0]["objects"]), encoding="utf-8")
    manifests, notes = load_paths([str(draft)])
    report = evaluate(manifests, load_rules(), notes, "default")
    rules = {f.rule for f in report.active()}
    assert {"KAI-NET-001", "KAI-HPA-003", "KAI-AVL-003", "KAI-SEC-007"} <= rules
    assert "KAI-IMG-001" not in rules  # the image is pinned in the draft already
    repair = json.loads(tape["interactions"][1]["request"]["body"])["messages"]
    assert [m["role"] for m in repair] == ["system", "user"]  # compact: no earlier answer
    asked = set(re.findall(r"^- (KAI-[A-Z]+-\d+) ", repair[-1]["content"], re.M))
    assert asked == {"KAI-HPA-003", "KAI-AVL-003"}
    assert "NetworkPolicy/agent" in repair[-1]["content"]  # kai's own fix, named as kept

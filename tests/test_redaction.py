"""Secrets never leave the machine: planted Secret data, credential env values and copies of
objects hidden in annotations never reach a model request, a diff or the screen.

The model here is a scripted, OpenAI-compatible chat-completions server on 127.0.0.1 (authored
for these tests, not recorded): it answers with the tool calls of the script and records every
request body exactly as it arrives over HTTP, after everything kai does to a request.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import FakeKubectl

from kai.cluster import stages as apply_stage
from kai.model.redact import MASK, MASK_AFTER, MASK_BEFORE, mask_secrets, redact_object, redact_text

# ---------- what is planted ----------

ENV_PASSWORD = "pl4nted-Env-Passw0rd-value"  # a credential env value: not shaped like a token
ENV_TOKEN = "pl4nted-env-t0ken-value"
SECRET_OLD = "pl4nted-old-secret-value"
SECRET_NEW = "pl4nted-new-secret-value"
STRING_DATA = "pl4nted-stringdata-value"
PLANTED = [
    ENV_PASSWORD,
    ENV_TOKEN,
    SECRET_OLD,
    SECRET_NEW,
    STRING_DATA,
    *(base64.b64encode(v.encode()).decode() for v in (SECRET_OLD, SECRET_NEW, STRING_DATA)),
]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def leaks(text: str) -> list[str]:
    return [p for p in PLANTED if p in text]


POD = "agent-7d9c6b5f4-x2x9z"


def _deployment() -> dict[str, Any]:
    env = [
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "DB_PASSWORD", "value": ENV_PASSWORD},
        {"name": "UPSTREAM_TOKEN", "value": ENV_TOKEN},
        {
            "name": "API_KEY",
            "valueFrom": {"secretKeyRef": {"name": "agent-secrets", "key": "api-key"}},
        },
    ]
    applied = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "agent", "namespace": "agents"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {
                    "containers": [{"name": "agent", "image": "ghcr.io/acme/agent:1.4", "env": env}]
                },
            },
        },
    }
    live: dict[str, Any] = json.loads(json.dumps(applied))
    live["metadata"]["annotations"] = {
        "deployment.kubernetes.io/revision": "3",
        # what `kubectl apply` (client-side) stores: a JSON copy of the object, env values and all
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied) + "\n",
    }
    live["metadata"]["managedFields"] = [
        {"manager": "kubectl-client-side-apply", "operation": "Update", "fieldsType": "FieldsV1"}
    ]
    live["status"] = {"replicas": 1, "unavailableReplicas": 1}
    return live


DESCRIBE_POD = f"""Name:             {POD}
Namespace:        agents
Node:             node-1/10.0.0.11
Labels:           app=agent
Annotations:      <none>
Status:           Running
Containers:
  agent:
    Image:          ghcr.io/acme/agent:1.4
    State:          Waiting
      Reason:       CrashLoopBackOff
    Environment:
      LOG_LEVEL:       info
      DB_PASSWORD:     {ENV_PASSWORD}
      UPSTREAM_TOKEN:  {ENV_TOKEN}
      API_KEY:         <set to the key 'api-key' in secret 'agent-secrets'>  Optional: false
Events:
  Type     Reason   Age   From     Message
  ----     ------   ----  ----     -------
  Warning  BackOff  10s   kubelet  Back-off restarting failed container agent
"""
LOGS = (
    "INFO starting agent\n"
    f"DEBUG config: DB_PASSWORD={ENV_PASSWORD} LOG_LEVEL=info\n"
    f"ERROR upstream rejected credentials {ENV_TOKEN} (401)\n"
)
EVENTS = (
    "LAST SEEN   TYPE      REASON      OBJECT          MESSAGE\n"
    f"12s         Warning   Unhealthy   Pod/{POD}   Readiness probe failed: "
    f"GET /healthz?pw={ENV_PASSWORD} returned 401\n"
)


def debug_kubectl(k: FakeKubectl) -> None:
    deploy = _deployment()
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": POD,
            "namespace": "agents",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{not json " + ENV_PASSWORD
            },
        },
        "spec": deploy["spec"]["template"]["spec"],
    }
    k.on(["get", "deployment", "agent", "-o", "yaml", "-n", "agents"], yaml.safe_dump(deploy))
    k.on(["get", "deployment", "agent", "-o", "json", "-n", "agents"], json.dumps(deploy))
    k.on(["get", "pod", POD, "-o", "yaml", "-n", "agents"], yaml.safe_dump(pod))
    k.on(["describe", "pod", POD, "-n", "agents"], DESCRIBE_POD)
    k.on(["logs", POD, "--tail=100", "-n", "agents"], LOGS)
    k.on(["events", "-n", "agents"], EVENTS)


# ---------- a scripted model on loopback ----------


def _tool_calls(*calls: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": f"call_{i}_{name}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            for i, (name, args) in enumerate(calls)
        ],
    }


DIAGNOSIS = {
    "root_cause": "The upstream rejects the agent's credentials.",
    "evidence": [{"source": "logs", "quote": "ERROR upstream rejected credentials"}],
    "fix": None,
    "confidence": "medium",
}


class ScriptedModel:
    """Answers each chat-completions request with the next scripted message; keeps every body."""

    def __init__(self, script: list[dict[str, Any]]) -> None:
        self.script = script
        self.bodies: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                owner.bodies.append(json.loads(raw))
                message = owner.script[min(len(owner.bodies), len(owner.script)) - 1]
                answer = json.dumps(
                    {
                        "id": f"chatcmpl-{len(owner.bodies)}",
                        "object": "chat.completion",
                        "model": "scripted",
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def sent(self) -> str:
        return json.dumps(self.bodies)


@pytest.fixture
def scripted() -> Iterator[Any]:
    models: list[ScriptedModel] = []

    def start(script: list[dict[str, Any]]) -> ScriptedModel:
        m = ScriptedModel(script)
        m.thread.start()
        models.append(m)
        return m

    yield start
    for m in models:
        m.server.shutdown()
        m.server.server_close()


DEBUG_SCRIPT = [
    _tool_calls(
        ("get", {"kind": "deployment", "name": "agent", "output": "yaml"}),
        ("evaluate", {"kind": "deployment", "name": "agent"}),
    ),
    _tool_calls(
        ("get", {"kind": "pod", "name": POD, "output": "yaml"}),
        ("describe", {"kind": "pod", "name": POD}),
        ("logs", {"pod": POD}),
        ("events", {}),
    ),
    {"role": "assistant", "content": json.dumps(DIAGNOSIS)},
]


@pytest.mark.parametrize("anonymize", [False, True], ids=["plain", "anonymize"])
def test_kai_debug_sends_no_planted_credential_to_the_model(
    kai, kubectl: FakeKubectl, scripted, anonymize: bool
) -> None:
    debug_kubectl(kubectl)
    model = scripted(DEBUG_SCRIPT)
    extra = ["--anonymize"] if anonymize else []
    r = kai(
        "debug", "deploy/agent", "-n", "agents", "-m", "openai/scripted", "--api-base",
        model.base, *extra,
    )  # fmt: skip
    assert r.code == 0, r.out + r.err
    assert len(model.bodies) == 3  # every tool ran and its result went back to the model
    ran = [c[:2] for c in kubectl.calls()]
    assert ran == [
        ["get", "deployment"],
        ["get", "deployment"],
        ["get", "pod"],
        ["describe", "pod"],
        ["logs", POD],
        ["events", "-n"],
    ]
    sent = model.sent()
    assert leaks(sent) == []
    tool_results = [m["content"] for m in model.bodies[-1]["messages"] if m["role"] == "tool"]
    assert len(tool_results) == 6
    # The copy inside the annotation is still there for the model, redacted and re-serialized.
    last_applied = yaml.safe_load(tool_results[0])["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"
    ]
    env = json.loads(last_applied)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["name"]: e.get("value") for e in env}["DB_PASSWORD"] == "<redacted>"
    assert {e["name"]: e.get("value") for e in env}["LOG_LEVEL"] == "info"
    # describe's Environment lines, logs and events lose the values but keep the rest.
    assert "DB_PASSWORD:     <redacted>" in tool_results[3]
    assert "API_KEY:         <set to the key 'api-key' in secret " in tool_results[3]
    assert "rejected credentials <redacted> (401)" in tool_results[4]
    assert "pw=<redacted>" in tool_results[5]


def test_the_debug_plant_catches_a_disabled_object_redaction(
    kai, kubectl: FakeKubectl, scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test above can fail: with redact_object doing nothing the planted values leak."""
    import copy

    from kai.ops import debug as debug_module

    monkeypatch.setattr(debug_module, "redact_object", lambda obj, found=None: copy.deepcopy(obj))
    debug_kubectl(kubectl)
    model = scripted(DEBUG_SCRIPT)
    kai("debug", "deploy/agent", "-n", "agents", "-m", "openai/scripted", "--api-base", model.base)
    assert ENV_PASSWORD in model.sent()


SECRET_FILE = f"""apiVersion: v1
kind: Secret
metadata:
  name: agent-secrets
  namespace: agents
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{{"apiVersion":"v1","kind":"Secret","data":{{"api-key":"{b64(SECRET_OLD)}"}},"metadata":{{"name":"agent-secrets"}}}}'
type: Opaque
data:
  api-key: {b64(SECRET_OLD)}
  db-url: {b64(SECRET_NEW)}
stringData:
  extra: {STRING_DATA}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: agent
  namespace: agents
spec:
  replicas: 2
  selector:
    matchLabels: {{app: agent}}
  template:
    metadata:
      labels: {{app: agent}}
    spec:
      containers:
        - name: agent
          image: ghcr.io/acme/agent:1.4
          env:
            - name: DB_PASSWORD
              value: {ENV_PASSWORD}
            - name: UPSTREAM_TOKEN
              value: {ENV_TOKEN}
"""


@pytest.mark.parametrize("command", ["explain", "critique"])
def test_files_with_secrets_reach_no_model_request(
    kai, tmp_path: Path, scripted, command: str
) -> None:
    path = tmp_path / "secret.yaml"
    path.write_text(SECRET_FILE)
    answer = (
        "These objects run the agent."
        if command == "explain"
        else json.dumps({"pairs": [], "feedback": "ok"})
    )
    model = scripted([{"role": "assistant", "content": answer}])
    args = [command, str(path), "-m", "openai/scripted", "--api-base", model.base, "--no-cache"]
    if command == "critique":
        answers = tmp_path / "answers.txt"
        answers.write_text("the image has no digest\n")
        args += ["--answers", str(answers)]
    r = kai(*args)
    assert len(model.bodies) >= 1, r.out + r.err
    assert leaks(model.sent()) == []
    assert "agent-secrets" in model.sent()  # the Secret itself was sent, its values were not
    if command == "explain":  # (critique shows the file itself, numbered: the exercise)
        assert leaks(r.out + r.err) == []


def test_the_file_plant_catches_a_disabled_secret_redaction(
    kai, tmp_path: Path, scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    import copy

    from kai.model import redact as redact_module

    monkeypatch.setattr(redact_module, "_redact", lambda out, found: copy.deepcopy(out))
    path = tmp_path / "secret.yaml"
    path.write_text(SECRET_FILE)
    model = scripted([{"role": "assistant", "content": "These objects run the agent."}])
    kai("explain", str(path), "-m", "openai/scripted", "--api-base", model.base, "--no-cache")
    assert b64(SECRET_OLD) in model.sent() and ENV_PASSWORD in model.sent()


# ---------- the object scrubber ----------


def test_redact_object_covers_every_copy_of_a_value() -> None:
    found: set[str] = set()
    out = redact_object(_deployment(), found)
    text = json.dumps(out)
    assert leaks(text) == []
    assert {ENV_PASSWORD, ENV_TOKEN} <= found
    assert "info" in text and "agent-secrets" in text  # what is not a credential stays
    # A List of them (what `kubectl get pods -o yaml` prints), and any *List kind.
    for kind in ("List", "DeploymentList"):
        listing = {"apiVersion": "v1", "kind": kind, "items": [_deployment(), _deployment()]}
        assert leaks(json.dumps(redact_object(listing))) == []
    secret = yaml.safe_load(SECRET_FILE.split("---")[0])
    shown = json.dumps(redact_object(secret))
    assert leaks(shown) == [] and "api-key" in shown and "extra" in shown


def test_an_unreadable_last_applied_copy_is_not_sent_at_all() -> None:
    obj = {
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": f"{{broken {ENV_PASSWORD}"
            },
        },
    }
    assert ENV_PASSWORD not in json.dumps(redact_object(obj))


def test_free_text_loses_credential_env_values_and_known_values() -> None:
    assert leaks(redact_text(DESCRIBE_POD)) == []
    assert "LOG_LEVEL:       info" in redact_text(DESCRIBE_POD)
    assert redact_text(f"x DB_PASSWORD={ENV_PASSWORD} y") == "x DB_PASSWORD=<redacted> y"
    assert redact_text(f"saw {ENV_TOKEN} twice", {ENV_TOKEN}) == "saw <redacted> twice"
    # Known values too short or too common to search for are left alone (they would match anywhere).
    assert redact_text("enabled true 1234", {"true", "1234", "enabled"}) == "enabled true 1234"


# ---------- the diff, as kubectl diff masks it ----------


def _secret(data: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "agents", "resourceVersion": "7", **extra},
        "type": "Opaque",
        "data": data,
    }


def test_the_apply_diff_masks_secret_values_like_kubectl_diff() -> None:
    live = _secret(
        {"password": b64(SECRET_OLD), "user": b64("admin-user"), "gone": b64(STRING_DATA)},
        annotations={
            "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
                {"kind": "Secret", "data": {"password": b64(SECRET_OLD)}}
            )
        },
    )
    after = _secret({"password": b64(SECRET_NEW), "user": b64("admin-user"), "new": b64("x")})
    text = apply_stage.diff(live, after, "Secret/agents/db")
    assert leaks(text) == [] and b64("admin-user") not in text
    assert f"-  password: '{MASK_BEFORE}'" in text and f"+  password: '{MASK_AFTER}'" in text
    assert f"+  new: '{MASK}'" in text and f"-  gone: '{MASK}'" in text
    assert f"\n   user: '{MASK}'\n" in text  # unchanged keys are equal once masked: context
    # Creating a Secret shows its keys, never its values; an unchanged one shows no diff at all.
    created = apply_stage.diff(None, after, "Secret/agents/db")
    assert "password: '***'" in created and leaks(created) == []
    assert apply_stage.diff(after, after, "Secret/agents/db") == ""


def test_mask_secrets_leaves_other_kinds_and_the_inputs_alone() -> None:
    cm = {"kind": "ConfigMap", "data": {"a": "b"}}
    assert mask_secrets(cm, cm) == (cm, cm)
    before = _secret({"k": b64(SECRET_OLD)})
    after = _secret({"k": b64(SECRET_NEW)})
    after["stringData"] = {"s": STRING_DATA}
    b, a = mask_secrets(before, after)
    assert b and a and b["data"] == {"k": MASK_BEFORE} and a["data"] == {"k": MASK_AFTER}
    assert a["stringData"] == {"s": MASK}
    assert before["data"]["k"] == b64(SECRET_OLD)  # copies: the objects kai applies are untouched


class _Cluster:
    """The two calls dry_run makes per object, answered like the server does for a Secret."""

    namespace = "agents"

    def __init__(self, live: dict[str, Any] | None, after: dict[str, Any]) -> None:
        self.live, self.after = live, after

    def namespaced(self, obj: dict[str, Any]) -> bool:
        return True

    def can_i(self, *_: Any) -> bool:
        return True

    def get(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        return self.live

    def apply(self, obj: dict[str, Any], dry_run: bool, force: bool = False) -> Any:
        from kai.cluster.client import ServerResult

        return ServerResult(200, obj=self.after)


def test_kai_apply_prints_no_secret_value(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    from kai.manifests import load_text
    from kai.render import print_dry_run

    manifests, _ = load_text(SECRET_FILE.split("---")[0], "secret.yaml")
    live = _secret({"api-key": b64(SECRET_NEW)})
    after = _secret({"api-key": b64(SECRET_OLD), "db-url": b64(SECRET_NEW)})
    plan = apply_stage.dry_run(_Cluster(live, after), manifests)  # type: ignore[arg-type]
    assert [c.action for c in plan.changes] == ["update"]
    console = Console(record=True, width=200)
    print_dry_run(console, plan)
    shown = console.export_text()
    assert leaks(shown) == [] and MASK_BEFORE in shown and MASK_AFTER in shown


# ---------- KAI_API_BASE, error lines, the apply header ----------


def test_kai_api_base_is_honoured(kai, kubectl: FakeKubectl, scripted, monkeypatch) -> None:
    answer = json.dumps({"commands": [], "explanation": "nothing to do", "questions": []})
    model = scripted([{"role": "assistant", "content": answer}])
    monkeypatch.setenv("KAI_API_BASE", model.base)
    r = kai("run", "list the pods", "-m", "openai/scripted", "--timeout", "5", "--no-cache")
    assert len(model.bodies) == 1, r.out + r.err  # the request went to KAI_API_BASE
    assert r.code == 1 and "no commands proposed" in r.out
    other = scripted([{"role": "assistant", "content": answer}])  # the flag wins over the variable
    kai("run", "list the pods", "-m", "openai/scripted", "--api-base", other.base, "--no-cache")
    assert len(other.bodies) == 1 and len(model.bodies) == 1


def test_errors_are_one_line_however_the_server_wrote_them() -> None:
    from kai.errors import ClusterError, one_line

    e = ClusterError('Deployment.apps "agent" is invalid:\n  spec.replicas: Invalid value: -1\n\n')
    assert e.message == 'Deployment.apps "agent" is invalid:; spec.replicas: Invalid value: -1'
    assert one_line("a\r\nb   c\n") == "a; b c"


def test_a_long_dry_run_error_is_printed_as_one_line() -> None:
    from rich.console import Console

    from kai.cluster.stages import Change, DryRun
    from kai.manifests import load_text
    from kai.render import print_dry_run

    manifests, _ = load_text(SECRET_FILE.split("---")[1], "deploy.yaml")
    error = "the server rejected it:\n" + "x" * 300 + "\nsecond line"
    console = Console(record=True, width=80)
    print_dry_run(console, DryRun([Change(manifests[0], "error", error=error)]))
    lines = console.export_text().splitlines()
    assert len(lines) == 2 and lines[0].endswith("; second line"), lines


def test_the_apply_header_names_the_namespaces_the_objects_use() -> None:
    from kai.manifests import load_text
    from kai.render import target_namespaces

    own, _ = load_text(SECRET_FILE, "x.yaml")  # both objects say namespace: agents
    assert target_namespaces(own, "default") == "namespace agents"
    mixed, _ = load_text(SECRET_FILE.replace("  namespace: agents\n", "", 1), "x.yaml")
    assert target_namespaces(mixed, "default") == "namespaces default, agents"
    cluster, _ = load_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n", "ns.yaml")
    assert target_namespaces(cluster, "default") == "cluster-scoped objects only"

"""`kai mcp`: the tools other agents call, through the SDK's in-process client (no subprocess, no network).

Cluster and model exchanges are replayed from the same cassettes as tests/test_apply.py and
tests/test_generate.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
import vcr
import yaml
from conftest import EXAMPLES, ROOT, model_tapes
from mcp import Client
from mcp.types import CallToolResult, TextContent

from kai.mcp_server import build_server

DRAFT = (EXAMPLES / "agent-draft" / "agent.yaml").read_text()
HARDENED = "---\n".join(p.read_text() for p in sorted((EXAMPLES / "agent-hardened").glob("*.yaml")))
CASSETTES = ROOT / "tests" / "cassettes"
KUBECONFIG = str(ROOT / "tests" / "data" / "kubeconfig.yaml")
TOOLS = {
    "review",
    "validate",
    "fix",
    "explain",
    "explain_rule",
    "list_policies",
    "dry_run",
    "generate",
}
models = model_tapes()
cluster = vcr.VCR(
    cassette_library_dir=str(CASSETTES / "cluster"),
    record_mode="none",
    match_on=["method", "scheme", "host", "port", "path", "query"],
    filter_headers=["authorization"],
)


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No user config, cache, model or cluster from the machine leaks into a test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    monkeypatch.setenv("KAI_NO_CACHE", "1")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    for var in ("KAI_MODEL", "KAI_API_BASE", "KUBERNETES_SERVICE_HOST", "KAI_FAIL_ON"):
        monkeypatch.delenv(var, raising=False)


T = TypeVar("T")


def session(work: Callable[[Client], Awaitable[T]]) -> T:
    """Run `work(client)` against a fresh server in this process."""

    async def main() -> T:
        async with Client(build_server()) as client:
            return await work(client)

    return anyio.run(main)


def call(name: str, **arguments: Any) -> CallToolResult:
    return session(lambda c: c.call_tool(name, arguments))


def data(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    # The structured result and the text a model reads carry the same JSON.
    assert json.loads(content_text(result)) == result.structured_content
    structured: dict[str, Any] | None = result.structured_content
    assert structured is not None
    return structured


def content_text(result: CallToolResult) -> str:
    """The text a model reads: the result's first content block."""
    block = result.content[0]
    assert isinstance(block, TextContent), block
    return block.text


def error_text(result: CallToolResult) -> str:
    assert result.is_error
    return content_text(result)


def test_the_tools_are_listed_and_none_writes_to_a_cluster() -> None:
    listed = session(lambda c: c.list_tools()).tools
    assert {t.name for t in listed} == TOOLS
    for tool in listed:
        assert tool.annotations is not None and tool.annotations.read_only_hint is True, tool.name
        assert tool.annotations.destructive_hint is not True, tool.name
        assert tool.description, tool.name
        takes_yaml = "yaml" in tool.input_schema.get("properties", {})
        assert takes_yaml == (tool.name not in {"list_policies", "explain_rule", "generate"})
    # Nothing on the server side can reach the real apply: only the dry-run function is imported.
    source = (ROOT / "kai" / "mcp_server.py").read_text()
    assert "dry_run=False" not in source and "import apply\n" not in source
    assert "from kai.cluster.stages import dry_run" in source


def test_review_finds_the_drafts_problems() -> None:
    report = data(call("review", yaml=DRAFT))
    rules = {f["rule"] for f in report["findings"]}
    assert {"KAI-RES-001", "KAI-SEC-001", "KAI-IMG-001", "KAI-CFG-001", "KAI-NET-001"} <= rules
    assert report["summary"]["passed"] is False and report["summary"]["objects"] == 3
    first = report["findings"][0]
    assert {"rule", "severity", "message", "object", "line", "path"} <= set(first)
    # Flags a client can pass: a disabled rule disappears, fail_on moves the bar.
    quieter = data(call("review", yaml=DRAFT, disable=["KAI-RES-001"], fail_on="error"))
    assert "KAI-RES-001" not in {f["rule"] for f in quieter["findings"]}


def test_review_of_the_hardened_example_passes() -> None:
    report = data(call("review", yaml=HARDENED))
    assert report["summary"]["passed"] is True and report["summary"]["objects"] == 9


def test_review_refuses_bad_input_with_the_reason() -> None:
    assert "invalid YAML" in error_text(call("review", yaml="kind: [unclosed\n"))
    assert "unknown rule or category" in error_text(call("review", yaml=DRAFT, disable=["NOPE"]))


def test_validate_reports_schema_errors_with_their_path() -> None:
    broken = DRAFT.replace("replicas:", "replica:", 1)
    report = data(call("validate", yaml=broken))
    unknown = [f for f in report["findings"] if f["rule"] == "KAI-SCH-001"]
    assert unknown and unknown[0]["path"] == "spec.replica"
    assert report["summary"]["passed"] is False
    assert data(call("validate", yaml=HARDENED))["summary"]["passed"] is True


def test_fix_returns_fixed_yaml_and_diff_that_review_accepts() -> None:
    fixed = data(call("fix", yaml=DRAFT))
    assert fixed["changed"] and fixed["diff"].startswith("--- a/input.yaml")
    assert "runAsNonRoot: true" in fixed["fixed"] and "runAsNonRoot" not in DRAFT
    assert "\n+" in fixed["diff"] and "readOnlyRootFilesystem: true" in fixed["diff"]
    assert "kind: NetworkPolicy" in fixed["fixed"] and "kind: PodDisruptionBudget" in fixed["fixed"]
    assert {c["rule"] for c in fixed["changes"]} >= {"KAI-SEC-001", "KAI-RES-001", "KAI-NET-001"}
    before = {f["rule"] for f in data(call("review", yaml=DRAFT))["findings"]}
    after = data(call("review", yaml=fixed["fixed"]))
    left = {f["rule"] for f in after["findings"]}
    # Everything kai can fix is gone; what is left changes what the workload does (its image,
    # its secret) or how it is exposed, which kai never decides alone.
    assert left < before
    errors = {f["rule"] for f in after["findings"] if f["severity"] == "error"}
    assert errors == {"KAI-IMG-001", "KAI-CFG-001"}
    # With those two decided by a person, the fixed YAML passes review.
    decided = fixed["fixed"].replace(":latest", ":1.4.0")
    doc = next(d for d in yaml.safe_load_all(decided) if d and d.get("kind") == "Deployment")
    env = doc["spec"]["template"]["spec"]["containers"][0]["env"]
    secret_names = [e["name"] for e in env if "value" in e and "KEY" in e["name"].upper()]
    assert secret_names
    for name in secret_names:
        decided = _reference_secret(decided, name)
    assert data(call("review", yaml=decided))["summary"]["passed"] is True
    assert data(call("fix", yaml=fixed["fixed"]))["changed"] is False  # fixing twice = once


def _reference_secret(text: str, name: str) -> str:
    """Replace a literal env value with a secretKeyRef, as the person would."""
    docs = list(yaml.safe_load_all(text))
    for d in docs:
        if d and d.get("kind") == "Deployment":
            for e in d["spec"]["template"]["spec"]["containers"][0]["env"]:
                if e["name"] == name:
                    e.pop("value")
                    e["valueFrom"] = {"secretKeyRef": {"name": "agent", "key": name.lower()}}
    return yaml.safe_dump_all(docs, sort_keys=False)


def test_list_policies_and_explain_rule() -> None:
    listed = data(call("list_policies"))["rules"]
    assert len(listed) >= 60
    res = next(r for r in listed if r["id"] == "KAI-RES-001")
    assert res == {
        "id": "KAI-RES-001",
        "title": res["title"],
        "severity": "error",
        "category": "resources",
        "enabled": True,
        "fixable": True,
    }
    probes = data(call("list_policies", category="probes", detail=True))["rules"]
    assert {r["id"] for r in probes} == {"KAI-PRB-001", "KAI-PRB-002", "KAI-PRB-003", "KAI-PRB-004"}
    assert all(r["rationale"] and r["remediation"] for r in probes)
    assert "unknown category 'probe'" in error_text(call("list_policies", category="probe"))
    rule = data(call("explain_rule", rule_id="kai-sec-001"))
    assert rule["id"] == "KAI-SEC-001" and "root" in rule["rationale"].lower()
    assert rule["check"]["type"] == "cel"
    assert "unknown rule KAI-NOPE" in error_text(call("explain_rule", rule_id="KAI-NOPE"))


def test_explain_walks_the_objects_with_findings_under_their_fields() -> None:
    result = data(call("explain", yaml=DRAFT))
    kinds = [o["object"]["kind"] for o in result["objects"]]
    assert "Deployment" in kinds
    deployment = result["objects"][kinds.index("Deployment")]
    assert deployment["purpose"] and deployment["fields"]
    attached = {f["rule"] for field in deployment["fields"] for f in field["findings"]}
    attached |= {f["rule"] for f in deployment["findings"]}
    assert {"KAI-IMG-001", "KAI-RES-001", "KAI-SEC-001", "KAI-NET-001"} <= attached
    # A finding with a path sits under a field, not on the object.
    assert not {"KAI-IMG-001", "KAI-RES-001"} & {f["rule"] for f in deployment["findings"]}
    assert result["narrative"] is None  # offline: no model


def test_dry_run_without_a_cluster_is_an_error_naming_the_problem(tmp_path: Path) -> None:
    message = error_text(call("dry_run", yaml=HARDENED))
    assert "no cluster configured" in message and "kube-config" in message
    unreachable = tmp_path / "unreachable.yaml"
    unreachable.write_text(
        Path(KUBECONFIG).read_text().replace("http://127.0.0.1:16443", "http://127.0.0.1:9")
    )
    message = error_text(session_with(dict(kubeconfig=str(unreachable)), "dry_run", yaml=HARDENED))
    assert "cannot reach the cluster (context recorded, server http://127.0.0.1:9)" in message
    assert "no Kubernetes objects" in error_text(
        session_with(dict(kubeconfig=KUBECONFIG), "dry_run", yaml="# nothing\n")
    )


def test_dry_run_on_a_recorded_cluster_only_ever_dry_runs() -> None:
    with cluster.use_cassette("create_all.yaml") as tape:
        result = data(session_with(dict(kubeconfig=KUBECONFIG), "dry_run", yaml=HARDENED))
    assert result["ok"] is True and result["context"] == "recorded"
    assert result["counts"] == {"create": 9, "update": 0, "unchanged": 0, "error": 0}
    assert [c["object"] for c in result["changes"]][:2] == [
        "Namespace/agent",
        "ServiceAccount/agent/agent",
    ]
    assert all(c["diff"].startswith("--- live/") for c in result["changes"])
    played = [tape.requests[i] for i, n in sorted(tape.play_counts.items()) if n]
    writes = [r for r in played if r.method in ("PATCH", "PUT", "DELETE")]
    # the namespace does not exist yet: only it can be dry-run; the rest wait for it, and say so
    assert len(writes) == 1
    assert {c["waits_for"] for c in result["changes"][1:]} == {"Namespace agent"}
    assert all(("dryRun", "All") in r.query for r in writes)  # never a real apply


def test_generate_replays_a_model_and_returns_reviewed_manifests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-0000000000")
    request = (
        "deploy ghcr.io/acme/agent:1.4.0 with 2 replicas on port 8000, health at /healthz and "
        "/readyz, reachable at agent.example.com"
    )
    with models.use_cassette("openai_clean_draft.yaml") as tape:
        result = data(call("generate", request=request, model="openai/gpt-4.1-mini"))
    assert tape.play_count == 1
    assert result["passed"] is True and result["stopped_because"] == "clean"
    assert result["model_calls"] == 1 and result["prompt_tokens"] == 3412
    kinds = {m["kind"] for m in result["manifests"]}
    assert {"Deployment", "Service", "NetworkPolicy", "Ingress"} <= kinds
    deployment = next(m for m in result["manifests"] if m["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/acme/agent:1.4.0"
    assert container["readinessProbe"]["httpGet"]["path"] in ("/readyz", "/healthz")
    assert yaml.safe_load_all(result["yaml"]) and "kind: NetworkPolicy" in result["yaml"]
    assert result["report"]["summary"]["passed"] is True and result["failing"] == []
    assert result["rationale"]


def test_generate_returns_the_models_questions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-0000000000")
    with models.use_cassette("openai_questions.yaml"):
        result = data(call("generate", request="deploy my agent", model="openai/gpt-4.1-mini"))
    assert result["manifests"] == [] and len(result["questions"]) == 2
    assert result["passed"] is False


def test_generate_model_errors_are_tool_errors() -> None:
    assert "no model configured" in error_text(call("generate", request="deploy nginx"))
    assert "max_rounds" in error_text(
        call("generate", request="deploy nginx", model="openai/x", max_rounds=0)
    )


def test_kai_mcp_serves_over_stdio() -> None:
    """The real command, as an agent starts it: a subprocess speaking MCP on stdin/stdout."""
    from mcp import StdioServerParameters

    params = StdioServerParameters(command=sys.executable, args=["-m", "kai", "mcp"], cwd=str(ROOT))

    async def main() -> tuple[set[str], CallToolResult]:
        async with Client(params) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            return tools, await client.call_tool("review", {"yaml": DRAFT})

    tools, result = anyio.run(main)
    assert tools == TOOLS
    assert "KAI-SEC-001" in {f["rule"] for f in data(result)["findings"]}


def test_kai_help_does_not_import_the_mcp_sdk() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kai", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env={**os.environ, "KAI_NO_CACHE": "1"},  # the full CLI, not the launcher's cached text
    )
    assert "mcp" in proc.stdout  # the command is listed...
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert not {m for m in imported if m == "mcp" or m.startswith(("mcp.", "mcp_types"))}
    assert "kai.cli" in imported  # ...and importtime did record kai's own imports


EXEC_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:9"}}}}]
users:
  - name: u
    user:
      exec:
        apiVersion: client.authentication.k8s.io/v1
        command: /bin/sh
        args: ["-c", "touch {marker}; echo '{{\\"kind\\":\\"ExecCredential\\",\\"apiVersion\\":\\"client.authentication.k8s.io/v1\\",\\"status\\":{{\\"token\\":\\"x\\"}}}}'"]
        interactiveMode: Never
contexts: [{{name: c, context: {{cluster: c, user: u}}}}]
current-context: c
"""


def test_dry_run_never_runs_a_client_supplied_kubeconfigs_exec_plugin(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile-kubeconfig.yaml"
    hostile.write_text(EXEC_KUBECONFIG.format(marker=marker))
    message = error_text(call("dry_run", yaml=HARDENED, kubeconfig=str(hostile)))
    assert "kubeconfig" in message and "kai mcp --kubeconfig" in message
    message = error_text(call("dry_run", yaml=HARDENED, kubeconfig=str(hostile), context="c"))
    assert not marker.exists()
    assert "\n" not in message.strip()


def test_dry_run_takes_no_context_from_the_client() -> None:
    message = error_text(call("dry_run", yaml=HARDENED, context="recorded"))
    assert "context" in message and "kai mcp --context" in message


def test_dry_run_uses_the_kubeconfig_kai_mcp_was_started_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECONFIG", KUBECONFIG)
    with cluster.use_cassette("create_all.yaml"):
        result = data(call("dry_run", yaml=HARDENED))
    assert result["ok"] is True and result["context"] == "recorded"
    with cluster.use_cassette("create_all.yaml"):
        result = data(session_with(dict(kubeconfig=KUBECONFIG), "dry_run", yaml=HARDENED))
    assert result["context"] == "recorded"


def test_a_file_that_is_not_a_kubeconfig_is_a_clean_error(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/bin/false\n")
    message = error_text(session_with(dict(kubeconfig=str(passwd)), "dry_run", yaml=HARDENED))
    assert "no cluster configured:" in message and "not a kubeconfig" in message
    assert "\n" not in message.strip()


def session_with(server_args: dict[str, Any], name: str, **arguments: Any) -> CallToolResult:
    async def main() -> CallToolResult:
        async with Client(build_server(**server_args)) as client:
            return await client.call_tool(name, arguments)

    return anyio.run(main)


def test_fix_of_more_than_its_edit_bound_is_one_refusal_not_minutes() -> None:
    """An agent may send any amount of YAML: past kai fix's edit bound (kai.policy.fix.EditBudget)
    the tool refuses in one line before any round trip, as `kai fix` does."""
    from kai.policy.fix import MAX_EDIT_NODES

    pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p{i}\nspec:\n  containers:\n    - name: c\n      image: nginx:1.27\n"
    count = MAX_EDIT_NODES // 9 + 1  # a Pod like this is 9 nodes or more
    text = error_text(call("fix", yaml="---\n".join(pod.format(i=i) for i in range(count))))
    assert "refused:" in text and f"{count:,} documents" in text and "\n" not in text.strip()

"""What already works in `kai review --cluster`, `kai run` and `kai mcp`'s dry_run against a real
server, so it stays working (issue 11, item 5). The audit log shows every request kai made."""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
from kubernetes import client

from .conftest import Cluster
from .harness import as_body
from .util import deployment, dry_runs, one_line, present, writes

SECRET = "hunter2-do-not-print"


def _deploy(cluster: Cluster, namespace: str, name: str = "web", replicas: int = 1) -> None:
    cluster.create(namespace, deployment(name, namespace, replicas=replicas))


def test_review_cluster_never_reads_secrets(cluster: Cluster, namespace: str) -> None:
    _deploy(cluster, namespace)
    cluster.core.create_namespaced_secret(
        namespace,
        as_body(client.V1Secret, {"metadata": {"name": "db"}, "stringData": {"password": SECRET}}),
    )
    mark = cluster.audit_mark()
    r = cluster.kai("review", "--cluster", "-n", namespace)
    assert r.code in (0, 1), r
    assert f"Deployment/{namespace}/web" in one_line(r.out) or "Deployment" in r.out, r
    assert SECRET not in r.out + r.err
    events = cluster.audit_events(mark, user="admin")
    read = {(e["verb"], e["objectRef"].get("resource")) for e in events if e.get("objectRef")}
    assert ("list", "deployments") in read, read  # kai did read the namespace ...
    assert not [e for e in events if (e.get("objectRef") or {}).get("resource") == "secrets"], read
    assert writes(events) == []


def test_run_write_without_terminal_runs_nothing(cluster: Cluster, namespace: str) -> None:
    _deploy(cluster, namespace)
    mark = cluster.audit_mark()
    r = cluster.kai("run", "-c", "scale deploy/web --replicas=3", "-n", namespace)
    assert r.code == 2, r
    assert "nothing ran" in r.out, r
    assert writes(cluster.audit_events(mark, user="admin")) == []
    assert cluster.apps.read_namespaced_deployment("web", namespace).spec.replicas == 1


def test_run_write_with_yes_dry_runs_then_writes(cluster: Cluster, namespace: str) -> None:
    _deploy(cluster, namespace)
    mark = cluster.audit_mark()
    r = cluster.kai("run", "-c", "scale deploy/web --replicas=3", "-n", namespace, "--yes")
    assert r.code == 0, r
    events = cluster.audit_events(mark, user="admin")
    assert dry_runs(events), "the scale was not dry-run on the server first"
    assert [w for w in writes(events) if "deployments" in w], events
    assert cluster.apps.read_namespaced_deployment("web", namespace).spec.replicas == 3


def test_run_delete_wants_more_than_yes(cluster: Cluster, namespace: str) -> None:
    _deploy(cluster, namespace)
    mark = cluster.audit_mark()
    r = cluster.kai("run", "-c", "delete deploy web", "-n", namespace, "--yes")
    assert r.code == 2, r
    assert "--allow-destructive" in r.out, r
    assert writes(cluster.audit_events(mark, user="admin")) == []
    assert cluster.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/web") is not None

    both = cluster.kai(
        "run", "-c", "delete deploy web", "-n", namespace, "--yes", "--allow-destructive"
    )
    assert both.code == 0, both
    cluster.wait_for(
        lambda: cluster.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/web") is None,
        what="deployment deleted",
    )


def test_mcp_dry_run_never_writes(cluster: Cluster, namespace: str) -> None:
    from mcp import Client, StdioServerParameters

    first = cluster.home / f"{namespace}.yaml"
    first.write_text(deployment("web", namespace))
    assert cluster.kai("apply", str(first), "--yes", "--ignore-findings", "--no-watch").code == 0
    manifest = (
        deployment("web", namespace, image="nginx:1.28") + "---\n" + deployment("new", namespace)
    )
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "kai", "mcp"], env=cluster.env(), cwd=str(cluster.home)
    )

    async def main() -> Any:
        async with Client(params) as client:
            return await client.call_tool("dry_run", {"yaml": manifest})

    mark = cluster.audit_mark()
    result = anyio.run(main)
    assert not result.is_error, result.content
    data = json.loads(result.content[0].text)
    actions = {c["object"]: c["action"] for c in data["changes"]}
    assert actions == {
        f"Deployment/{namespace}/web": "update",
        f"Deployment/{namespace}/new": "create",
    }, data
    events = cluster.audit_events(mark, user="admin")
    assert len(dry_runs(events)) >= 2, events
    assert writes(events) == []
    assert cluster.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/new") is None
    live = cluster.apps.read_namespaced_deployment("web", namespace)
    assert present(present(live.spec).template.spec).containers[0].image == "nginx:1.27"

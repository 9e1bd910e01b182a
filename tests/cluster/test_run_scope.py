"""`kai run` against a real server: Secret reads in every spelling ask first, writes through
--raw are refused, a chosen namespace bounds what changes, and a namespace deletion's preview
counts everything in it (issue 11, item 2: Secrets and kubectl parity)."""

from __future__ import annotations

import sys
import uuid
from typing import Any

import pytest
from kubernetes import client

from .conftest import Cluster
from .harness import as_body
from .util import configmap, deployment, one_line, writes

VALUE = "pl4nted-run-secret-value"


def _secret(cluster: Cluster, namespace: str) -> None:
    cluster.core.create_namespaced_secret(
        namespace,
        as_body(client.V1Secret, {"metadata": {"name": "db"}, "stringData": {"password": VALUE}}),
    )


def _secret_reads(events: list[dict[str, Any]]) -> list[str]:
    return [
        e["requestURI"]
        for e in events
        if (e.get("objectRef") or {}).get("resource") == "secrets" and e["verb"] in ("get", "list")
    ]


@pytest.mark.parametrize(
    "line",
    [
        "get --raw /api/v1/namespaces/{ns}/secrets/db",
        "get --raw /api/v1/namespaces/{ns}/secrets",
        "get Secret db -o yaml",
        "get secrets.v1. db -o json",
        "get secret/db -o jsonpath-file={tmp}/path.txt",
        "get secret db -o go-template-file={tmp}/t.tmpl",
        "get secret db -o custom-columns-file={tmp}/cols.txt",
    ],
)
def test_reading_a_secret_asks_first(cluster: Cluster, namespace: str, line: str, tmp_path) -> None:
    _secret(cluster, namespace)
    (tmp_path / "path.txt").write_text("{.data.password}")
    (tmp_path / "t.tmpl").write_text("{{.data.password}}")
    (tmp_path / "cols.txt").write_text("PASSWORD\n.data.password\n")
    command = line.format(ns=namespace, tmp=tmp_path)
    # kubectl itself prints the value for every one of these lines
    ref = cluster.kubectl(*command.split(), "-n", namespace)
    assert ref.code == 0 and (VALUE in ref.out or "cGw0bnRlZC1ydW4tc2VjcmV0LXZhbHVl" in ref.out), (
        ref
    )
    mark = cluster.audit_mark()
    r = cluster.kai("run", "-c", command, "-n", namespace)
    assert r.code == 2, r
    assert "needs --yes" in one_line(r.out), r
    assert VALUE not in r.out + r.err and "cGw0bnRlZC1ydW4t" not in r.out + r.err
    assert _secret_reads(cluster.audit_events(mark, user="admin")) == []


def test_a_secret_read_runs_after_a_yes(cluster: Cluster, namespace: str) -> None:
    _secret(cluster, namespace)
    r = cluster.kai(
        "run",
        "-c",
        f"get --raw /api/v1/namespaces/{namespace}/secrets/db",
        "-n",
        namespace,
        "--yes",
    )
    assert r.code == 0 and '"name":"db"' in r.out.replace(" ", ""), r


@pytest.mark.parametrize(
    "line",
    [
        "delete --raw /api/v1/namespaces/{ns}/configmaps/cfg",
        "create --raw /api/v1/namespaces/{ns}/configmaps -f {tmp}/cm.json",
        "replace --raw /api/v1/namespaces/{ns}/configmaps/cfg -f {tmp}/cm.json",
    ],
)
def test_writes_through_raw_are_refused(
    cluster: Cluster, namespace: str, line: str, tmp_path
) -> None:
    cluster.create(namespace, configmap("cfg", namespace, k="v"))
    (tmp_path / "cm.json").write_text(
        '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg2"},"data":{"k":"w"}}'
    )
    mark = cluster.audit_mark()
    r = cluster.kai(
        "run", "-c", line.format(ns=namespace, tmp=tmp_path), "-n", namespace, "--yes",
        "--allow-destructive",
    )  # fmt: skip
    assert r.code == 1, r
    assert "--raw sends a request to the API that kai cannot dry-run" in one_line(r.out), r
    assert writes(cluster.audit_events(mark, user="admin")) == []
    assert cluster.get(f"/api/v1/namespaces/{namespace}/configmaps/cfg") is not None


def test_a_chosen_namespace_refuses_deleting_another(cluster: Cluster, namespace: str) -> None:
    other = f"other-team-{uuid.uuid4().hex[:5]}"
    cluster.core.create_namespace(as_body(client.V1Namespace, {"metadata": {"name": other}}))
    try:
        mark = cluster.audit_mark()
        for line in (f"delete namespace {other}", f"delete ns/{other}", "delete ns --all"):
            r = cluster.kai("run", "-n", namespace, "-c", line, "--yes", "--allow-destructive")
            assert r.code == 1, r
            assert f"but you chose '{namespace}'" in one_line(r.out), r
        r = cluster.kai(
            "run", "-n", namespace, "-c", "delete clusterrole view", "--yes", "--allow-destructive"
        )
        assert r.code == 1 and "cluster-scoped" in r.out, r
        assert writes(cluster.audit_events(mark, user="admin")) == []
        assert cluster.get(f"/api/v1/namespaces/{other}") is not None
        assert cluster.get("/apis/rbac.authorization.k8s.io/v1/clusterroles/view") is not None
    finally:
        cluster.core.delete_namespace(other)


NAMESPACE_CONTENT = """\
apiVersion: v1
kind: ServiceAccount
metadata: {{name: agent}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: agent}}
spec:
  rules:
    - host: agent.example.com
      http:
        paths:
          - {{path: /, pathType: Prefix, backend: {{service: {{name: agent, port: {{number: 80}}}}}}}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: deny}}
spec: {{podSelector: {{}}, policyTypes: [Ingress]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: reader}}
rules: [{{apiGroups: [""], resources: [pods], verbs: [get]}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: reader}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}}
subjects: [{{kind: ServiceAccount, name: agent, namespace: {ns}}}]
"""


def test_a_namespace_deletion_previews_everything_in_it(cluster: Cluster, namespace: str) -> None:
    import pexpect

    _secret(cluster, namespace)
    cluster.create(namespace, configmap("cfg", namespace, k="v"))
    cluster.create(namespace, deployment("web", namespace))
    cluster.create(namespace, NAMESPACE_CONTENT.format(ns=namespace))
    kinds = cluster.kubectl("api-resources", "--verbs=list", "--namespaced", "-o", "name")
    listable = [k for k in kinds.out.split() if k not in ("events", "events.events.k8s.io")]
    ref = cluster.kubectl("get", ",".join(listable), "-n", namespace, "-o", "name")
    expected = [x for x in ref.out.split() if x]
    for obj in (
        "secret/db",
        "configmap/cfg",
        "serviceaccount/agent",
        "persistentvolumeclaim/data",
        "ingress.networking.k8s.io/agent",
        "networkpolicy.networking.k8s.io/deny",
        "role.rbac.authorization.k8s.io/reader",
        "rolebinding.rbac.authorization.k8s.io/reader",
        "deployment.apps/web",
    ):
        assert obj in expected, ref
    mark = cluster.audit_mark()
    child = pexpect.spawn(
        sys.executable,
        ["-m", "kai", "run", "-n", namespace, "-c", f"delete namespace {namespace}"],
        env=cluster.env(),
        cwd=str(cluster.home),
        encoding="utf-8",
        timeout=120,
        dimensions=(50, 200),
    )
    child.expect("type '" + namespace + "' to run it")
    shown = child.before
    child.sendline("no")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130, shown
    assert f"it would affect {len(expected) + 1} objects" in one_line(shown), shown
    for obj in expected:
        assert f"  {obj}" in shown, (obj, shown)
    assert VALUE not in shown and "cGw0bnRlZC1ydW4t" not in shown
    events = cluster.audit_events(mark, user="admin")
    assert [u for u in _secret_reads(events) if "/secrets/" in u] == []  # listed by name only
    # kubectl's server dry run of a DELETE carries dryRun in the body, which the audit log at
    # Metadata level does not show: the namespace's phase says whether it was really deleted.
    assert [w for w in writes(events) if not w.startswith("delete namespaces/")] == []
    assert "(server dry run)" in shown
    live = cluster.get(f"/api/v1/namespaces/{namespace}")
    assert live is not None and live["status"]["phase"] == "Active", live

"""The harness itself: a real server, identities, the node stand-in, the audit log."""

from __future__ import annotations

from .conftest import Cluster
from .util import present

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: main
          image: {image}
"""


def test_server_version_and_identities(cluster: Cluster, namespace: str) -> None:
    assert cluster.version.startswith("v1.")
    who = cluster.kubectl("auth", "whoami", "-o", "json")
    assert who.code == 0, who
    assert who.json()["status"]["userInfo"]["username"] == "admin"
    # restricted may edit in the test namespace, not elsewhere, and cannot read cluster scope
    ok = cluster.kubectl(
        "auth", "can-i", "create", "deployments", "-n", namespace, context="restricted"
    )
    assert ok.out.strip() == "yes", ok
    no = cluster.kubectl(
        "auth", "can-i", "create", "deployments", "-n", "default", context="restricted"
    )
    assert no.out.strip() == "no", no
    assert cluster.kubectl("get", "nodes", context="restricted").code != 0
    none = cluster.kubectl("auth", "can-i", "get", "pods", "-n", namespace, context="limited")
    assert none.out.strip() == "no", none


def test_node_stand_in_runs_stalls_and_completes(cluster: Cluster, namespace: str) -> None:
    node = cluster.core.read_node("kai-node")
    addresses = present(present(node.status).addresses)
    assert [(a.type, a.address) for a in addresses] == [("InternalIP", "127.0.0.1")]
    cluster.create(namespace, DEPLOY.format(name="good", image="nginx:1.27"))
    cluster.create(namespace, DEPLOY.format(name="pull", image="example.com/imagepullbackoff:1"))
    cluster.create(namespace, DEPLOY.format(name="crash", image="example.com/crashloop:1"))
    cluster.wait_for(
        lambda: (
            (
                present(
                    cluster.apps.read_namespaced_deployment("good", namespace).status
                ).ready_replicas
                or 0
            )
            == 2
        ),
        what="deployment good ready",
    )

    def waiting(app: str) -> set[str]:
        pods = cluster.core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
        return {
            present(cs.state.waiting.reason)
            for p in pods
            for cs in present(p.status).container_statuses or []
            if cs.state and cs.state.waiting
        }

    assert cluster.wait_for(lambda: waiting("pull") == {"ImagePullBackOff"}, what="pull backoff")
    assert cluster.wait_for(lambda: waiting("crash") == {"CrashLoopBackOff"}, what="crashloop")
    pod = cluster.core.list_namespaced_pod(namespace, label_selector="app=good").items[0]
    status = present(pod.status)
    assert status.qos_class == "BestEffort" and status.pod_ip


def test_missing_secret_and_job(cluster: Cluster, namespace: str) -> None:
    cluster.create(
        namespace,
        """\
apiVersion: v1
kind: Pod
metadata: {name: needs-secret}
spec:
  containers:
    - name: main
      image: busybox
      env:
        - name: TOKEN
          valueFrom: {secretKeyRef: {name: absent, key: token}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: main, image: busybox}]
""",
    )

    def reason() -> str | None:
        p = cluster.core.read_namespaced_pod("needs-secret", namespace)
        statuses = present(p.status).container_statuses
        cs = statuses[0] if statuses else None
        return cs.state.waiting.reason if cs and cs.state and cs.state.waiting else None

    assert cluster.wait_for(lambda: reason() == "CreateContainerConfigError", what="config error")
    from kubernetes import client

    batch = client.BatchV1Api(cluster.api)
    cluster.wait_for(
        lambda: (present(batch.read_namespaced_job("once", namespace).status).succeeded or 0) == 1,
        timeout=90,
        what="job succeeded",
    )


def test_audit_log_names_the_requests_kai_and_kubectl_make(
    cluster: Cluster, namespace: str
) -> None:
    mark = cluster.audit_mark()
    assert cluster.kubectl("get", "configmaps", "-n", namespace).code == 0
    events = cluster.audit_events(mark, user="admin")
    assert any(
        e["verb"] == "list"
        and e["objectRef"]["resource"] == "configmaps"
        and e["objectRef"]["namespace"] == namespace
        for e in events
    ), events
    # the harness's own identities are left out
    assert not [e for e in cluster.audit_events(mark) if "kai-harness" in e["user"]["username"]]

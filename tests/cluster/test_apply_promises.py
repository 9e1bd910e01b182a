"""`kai apply` promises against a real API server (issue 11, "Promises that do not hold").

Each test failed before its fix: a Namespace or CRD applied in the same run as the objects that
need it; --rollback-on-failure; ReplicaFailure and FailedCreate in the watch; a Pod Security
warning from a namespace that enforces it; progress of the new revision; the create preflight.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import pytest

from .conftest import ROOT, Cluster
from .util import deployment, one_line, writes

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {plural}.{group}}}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: {plural}, singular: {singular}, kind: {kind}, listKind: {kind}List}}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {{type: integer}}
"""


def _delete_namespace(cluster: Cluster, name: str) -> None:
    with contextlib.suppress(Exception):  # best effort: the session cluster is thrown away
        cluster.core.delete_namespace(name)


def test_agent_hardened_applies_to_a_fresh_cluster_in_one_command(cluster: Cluster) -> None:
    assert cluster.get("/api/v1/namespaces/agent") is None, "namespace agent already exists"
    try:
        # --no-watch: the example reads Secret agent-secrets, "created out of band", so on a
        # fresh cluster its pods wait in CreateContainerConfigError (the watch says so)
        r = cluster.kai("apply", str(ROOT / "examples" / "agent-hardened"), "--yes", "--no-watch")
        assert r.code == 0, r
        out = one_line(r.out)
        # the diff the person confirms says what will be created, the namespace first
        assert "create 9, update 0, unchanged 0" in out, r
        assert "applied 9 objects" in out, r
        assert cluster.apps.read_namespaced_deployment("agent", "agent").metadata.name == "agent"
        # kubectl agrees: a second run has nothing to do
        again = cluster.kai("apply", str(ROOT / "examples" / "agent-hardened"), "--yes")
        assert again.code == 0 and "nothing to apply" in again.out, again
    finally:
        _delete_namespace(cluster, "agent")


def test_every_example_folder_applies_to_a_fresh_cluster(cluster: Cluster) -> None:
    """agent-draft is the draft kai review fails on purpose: it applies past --ignore-findings."""
    folders = sorted(
        p for p in (ROOT / "examples").iterdir() if p.is_dir() and list(p.glob("*.yaml"))
    )
    assert folders
    for folder in folders:
        if folder.name in ("agent-hardened", "tasks"):
            continue  # its own test above; tasks/ holds requests, not manifests
        ns = f"ex-{folder.name}-{uuid.uuid4().hex[:5]}"
        cluster.core.create_namespace({"metadata": {"name": ns}})
        try:
            r = cluster.kai(
                "apply", str(folder), "-n", ns, "--yes", "--ignore-findings", "--no-watch"
            )
            assert r.code == 0, r
        finally:
            _delete_namespace(cluster, ns)


def test_a_crd_and_its_resources_apply_in_one_run(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    group = f"k{uuid.uuid4().hex[:6]}.example.com"
    f = tmp_path / "widgets.yaml"
    f.write_text(
        CRD.format(group=group, plural="widgets", singular="widget", kind="Widget")
        + f"---\napiVersion: {group}/v1\nkind: Widget\nmetadata: {{name: w1, namespace: {namespace}}}\nspec: {{size: 3}}\n"
    )
    r = cluster.kai("apply", str(f), "--yes")
    assert r.code == 0, r
    out = one_line(r.out)
    assert "create 2, update 0, unchanged 0" in out, r
    assert f"create Widget/{namespace}/w1" in out and "size: 3" in r.out, r
    live = cluster.get(f"/apis/{group}/v1/namespaces/{namespace}/widgets/w1")
    assert live is not None and live["spec"]["size"] == 3
    # what kubectl sees
    kubectl = cluster.kubectl("get", f"widgets.{group}", "-n", namespace, "-o", "name")
    assert kubectl.out.strip() == f"widget.{group}/w1", kubectl


def test_a_later_object_that_fails_its_dry_run_stops_after_the_namespace(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The objects that waited are dry-run on the server before any of them is applied."""
    ns = f"late-{uuid.uuid4().hex[:6]}"
    f = tmp_path / "bad.yaml"
    f.write_text(
        f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\n"
        + f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: ok, namespace: {ns}}}\ndata: {{a: b}}\n---\n"
        + f"apiVersion: v1\nkind: Service\nmetadata: {{name: bad, namespace: {ns}}}\n"
        + "spec: {ports: [{port: 99999}], selector: {app: x}}\n"
    )
    try:
        r = cluster.kai("apply", str(f), "--yes", "--ignore-findings")
        assert r.code == 4, r
        out = one_line(r.out)
        assert f"failed Service/{ns}/bad" in out and "spec.ports[0].port" in out, r
        assert f"not applied ConfigMap/{ns}/ok" in out, r
        assert cluster.get(f"/api/v1/namespaces/{ns}/configmaps/ok") is None
    finally:
        _delete_namespace(cluster, ns)


def test_preflight_checks_create_for_new_objects(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    cluster.grant(
        namespace,
        "limited",
        [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "patch"]}],
    )
    f = tmp_path / "cm.yaml"
    f.write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings, namespace: {namespace}}}\ndata: {{a: b}}\n"
    )
    mark = cluster.audit_mark()
    r = cluster.kai("apply", str(f), "--yes", context="limited")
    assert r.code == 4, r
    out = one_line(r.out)
    assert f"not allowed create ConfigMap (v1) in namespace {namespace}" in out, r
    events = cluster.audit_events(mark, user="limited")
    assert not [e for e in events if e.get("verb") == "patch"], "dry run sent despite the preflight"


def _rollout(cluster: Cluster, ns: str, tmp_path: Path, image: str, *args: str, replicas: int = 1):
    f = tmp_path / f"web-{uuid.uuid4().hex[:4]}.yaml"
    f.write_text(deployment("web", ns, image=image, replicas=replicas))
    return cluster.kai("apply", str(f), "--yes", "--ignore-findings", *args)


def test_rollback_on_failure_restores_the_previous_revision(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    first = _rollout(cluster, namespace, tmp_path, "nginx:1.27", "--timeout", "60")
    assert first.code == 0, first
    r = _rollout(
        cluster,
        namespace,
        tmp_path,
        "registry.example/imagepullbackoff:2",
        "--timeout",
        "15",
        "--rollback-on-failure",
    )
    assert r.code == 4, r
    out = one_line(r.out)
    assert "ImagePullBackOff" in out, r
    assert "rolled back to revision 1" in out, r
    live = cluster.apps.read_namespaced_deployment("web", namespace)
    assert live.spec.template.spec.containers[0].image == "nginx:1.27"
    # kubectl sees revision 3 (the old template re-used), as after `kubectl rollout undo`
    history = cluster.kubectl("rollout", "history", "deploy/web", "-n", namespace)
    assert history.code == 0 and "3" in history.out, history
    # and kai owns the same fields: the next apply needs no --force-conflicts
    again = _rollout(cluster, namespace, tmp_path, "nginx:1.28", "--timeout", "60")
    assert again.code == 0, again


def test_rollback_of_a_first_revision_says_there_is_nothing_to_roll_back_to(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    r = _rollout(
        cluster,
        namespace,
        tmp_path,
        "registry.example/imagepullbackoff:1",
        "--timeout",
        "10",
        "--rollback-on-failure",
    )
    assert r.code == 4, r
    assert "nothing to roll back to" in one_line(r.out), r


def test_watch_shows_replica_failure_and_failed_create(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    cluster.create(
        namespace,
        "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: nopods}\nspec: {hard: {pods: '0'}}\n",
    )
    cluster.wait_for(
        lambda: (
            (cluster.get(f"/api/v1/namespaces/{namespace}/resourcequotas/nopods") or {})
            .get("status", {})
            .get("hard")
        ),
        what="quota status",
    )
    r = _rollout(cluster, namespace, tmp_path, "nginx:1.27", "--timeout", "30")
    assert r.code == 4, r
    out = one_line(r.out)
    assert "ReplicaFailure" in out and "exceeded quota" in out, r
    assert "FailedCreate" in out, r


def test_pod_security_warning_from_an_enforcing_namespace_is_an_error(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    cluster.core.patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    f = tmp_path / "root.yaml"
    f.write_text(
        deployment("root", namespace)
        .replace("runAsNonRoot: true, runAsUser: 10001, ", "")
        .replace("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true")
    )
    mark = cluster.audit_mark()
    r = cluster.kai("apply", str(f), "--yes", "--ignore-findings")
    assert r.code == 4, r
    out = one_line(r.out)
    assert "enforces Pod Security 'restricted'" in out and "would be rejected" in out, r
    assert writes(cluster.audit_events(mark, user="admin")) == []


@pytest.mark.parametrize("replicas", [2])
def test_progress_counts_the_new_revision(
    cluster: Cluster, namespace: str, tmp_path: Path, replicas: int
) -> None:
    first = _rollout(
        cluster, namespace, tmp_path, "nginx:1.27", "--timeout", "60", replicas=replicas
    )
    assert first.code == 0, first
    r = _rollout(
        cluster,
        namespace,
        tmp_path,
        "registry.example/notready:2",
        "--timeout",
        "12",
        replicas=replicas,
    )
    assert r.code == 4, r
    out = one_line(r.out)
    # old pods still serve (2 available), none of the new revision is ready
    assert f"(0/{replicas} ready" in out, r
    assert f"{replicas}/{replicas} ready" not in out, r
    # kubectl rollout status says the same about the new revision
    status = cluster.kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=1s")
    said = status.out.split("rollout to finish: ", 1)[-1].strip().rstrip(".")
    assert said and said in out, (status, r)

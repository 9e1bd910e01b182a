"""`kai apply` promises against a real API server (issue 11, "Promises that do not hold").

Each test failed before its fix: a Namespace or CRD applied in the same run as the objects that
need it; --rollback-on-failure; ReplicaFailure and FailedCreate in the watch; a Pod Security
warning from a namespace that enforces it; progress of the new revision; the create preflight.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from .conftest import ROOT, Cluster
from .harness import as_body
from .util import deployment, one_line, present, writes

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


def _manifest_folders() -> dict[Path, list[dict[str, Any]]]:
    """Every folder of examples/ that holds Kubernetes manifests, with its objects.

    A folder whose YAML documents are not objects must be the eval tasks (examples/tasks: one
    request and its expectations per file); a folder without YAML (examples/capstone: a spec and
    a walkthrough) holds no manifest. Anything else fails here, so a new example cannot be
    skipped by accident.
    """
    found: dict[Path, list[dict[str, Any]]] = {}
    for folder in sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir()):
        files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml"), *folder.glob("*.json")])
        docs = [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]
        if not docs:
            assert not files, f"{folder}: files without documents"
            continue
        if all(isinstance(d, dict) and "apiVersion" in d and "kind" in d for d in docs):
            found[folder] = docs
            continue
        assert folder.name == "tasks" and all("id" in d and "request" in d for d in docs), (
            f"{folder}: neither manifests nor eval tasks"
        )
    return found


def test_every_example_folder_applies_and_rolls_out_on_a_fresh_cluster(cluster: Cluster) -> None:
    """`kai apply FOLDER --yes`, watch included, for every manifest folder of examples/ (issue 11).

    A folder whose objects name their own namespace and ship it (agent-hardened) is applied as it
    is, its Namespace created by the same command; the others go into a fresh namespace with -n.
    A folder kai's review fails on purpose (agent-draft, the model's first draft) is refused
    without a write, then applies past --ignore-findings. Each must exit 0, every object must be
    on the server (kubectl get -f), every Deployment rolled out on the node stand-in
    (kubectl rollout status), and a second run must have nothing to apply.
    """
    folders = _manifest_folders()
    assert ROOT / "examples" / "agent-hardened" in folders and len(folders) >= 2, folders
    for folder, docs in folders.items():
        namespaces = [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"]
        own = [d.get("metadata", {}).get("namespace") for d in docs if d["kind"] != "Namespace"]
        created: list[str] = []
        if namespaces and all(n in namespaces for n in own):
            args: tuple[str, ...] = ()
            for n in namespaces:
                assert cluster.get(f"/api/v1/namespaces/{n}") is None, f"{n} already exists"
            created = namespaces
            ns = namespaces[0]
        else:
            assert not any(own), f"{folder.name}: objects in namespaces it does not ship"
            ns = f"ex-{folder.name}-{uuid.uuid4().hex[:5]}"
            cluster.core.create_namespace(as_body(client.V1Namespace, {"metadata": {"name": ns}}))
            created = [ns]
            args = ("-n", ns)
        try:
            extra: tuple[str, ...] = ()
            if cluster.kai("review", str(folder)).code != 0:
                mark = cluster.audit_mark()
                blocked = cluster.kai("apply", str(folder), *args, "--yes")
                assert blocked.code == 1 and "nothing applied" in blocked.out, blocked
                assert writes(cluster.audit_events(mark, user="admin")) == [], blocked
                extra = ("--ignore-findings",)
            r = cluster.kai("apply", str(folder), *args, "--yes", *extra, "--timeout", "120")
            assert r.code == 0, r
            out = one_line(r.out)
            assert f"create {len(docs)}, update 0, unchanged 0" in out, r
            assert f"applied {len(docs)} objects" in out, r
            on_server = cluster.kubectl("get", "-f", str(folder), *args, "-o", "name")
            assert on_server.code == 0, on_server
            assert len(on_server.out.split()) == len(docs), on_server
            for d in docs:
                if d["kind"] != "Deployment":
                    continue
                name = d["metadata"]["name"]
                # kai names an object as its file does: with the namespace only if it names one
                shown = "/".join(filter(None, ("Deployment", d["metadata"].get("namespace"), name)))
                assert f"rolled out {shown} (" in out, r
                status = cluster.kubectl(
                    "rollout", "status", f"deployment/{name}", "-n", ns, "--timeout=60s"
                )
                assert status.code == 0 and "successfully rolled out" in status.out, status
                pods = cluster.core.list_namespaced_pod(ns).items
                statuses = [present(p.status) for p in pods]
                assert pods and all(
                    s.phase == "Running"
                    and s.container_statuses
                    and all(c.ready for c in s.container_statuses)
                    for s in statuses
                ), [
                    (present(p.metadata).name, s.phase) for p, s in zip(pods, statuses, strict=True)
                ]
            again = cluster.kai("apply", str(folder), *args, "--yes", *extra)
            assert again.code == 0 and "nothing to apply" in again.out, again
        finally:
            for n in created:
                _delete_namespace(cluster, n)


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
    assert present(present(live.spec).template.spec).containers[0].image == "nginx:1.27"
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

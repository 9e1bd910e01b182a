"""kai apply against recorded kube-apiserver exchanges (vcrpy, record mode none): no cluster needed.

Each cassette in cassettes/cluster/ says where it comes from: "recorded from a real kube-apiserver
v1.36.2" (cassettes/record_cluster.py, against the cluster tier's control plane) or "authored"
(cassettes/build_cluster.py against cassettes/fake_apiserver.py) for what a real server cannot be
made to do on demand (a 5xx mid-apply, scripted rollouts). The cluster tier (tests/cluster) runs the
same stages against a live server.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import vcr
from conftest import EXAMPLES, ROOT

from kai.cluster.stages import KIND_ORDER, clean, diff

CASSETTES = Path(__file__).parent / "cassettes" / "cluster"
KUBECONFIG = str(ROOT / "tests" / "data" / "kubeconfig.yaml")
FIXTURES = ROOT / "tests" / "data" / "cluster"
HARDENED = str(EXAMPLES / "agent-hardened")
replay = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    match_on=["method", "scheme", "host", "port", "path", "query", "body"],
    filter_headers=["authorization"],
)


def apply(kai, cassette: str, *args: str):
    with replay.use_cassette(f"{cassette}.yaml") as tape:
        result = kai("apply", *args, "--kubeconfig", KUBECONFIG)
    return result, tape


def played(tape) -> list[Any]:
    """The requests kai actually made during the replay (the cassette may hold more)."""
    return [tape.requests[i] for i, n in sorted(tape.play_counts.items()) if n]


def _patches(tape, dry: bool) -> list[str]:
    return [
        r.path.rsplit("/", 2)[-2] + "/" + r.path.rsplit("/", 1)[-1]
        for r in played(tape)
        if r.method == "PATCH"
        and (
            "dryRun=All" in r.query_string
            if hasattr(r, "query_string")
            else ("dryRun", "All") in r.query
        )
        == dry
    ]


def test_clean_create_dry_runs_then_applies_in_dependency_order(kai) -> None:
    r, tape = apply(kai, "create_all", HARDENED, "--yes")
    assert r.code == 0, r.out
    assert "create 9, update 0, unchanged 0" in r.out and "applied 9 objects" in r.out
    dry = _patches(tape, True)
    real = _patches(tape, False)
    assert (
        dry
        == real
        == [
            "namespaces/agent",
            "serviceaccounts/agent",
            "configmaps/agent-config",
            "networkpolicies/agent",
            "services/agent",
            "deployments/agent",
            "horizontalpodautoscalers/agent",
            "poddisruptionbudgets/agent",
            "ingresses/agent",
        ]
    )
    first = next(q for q in tape.requests if q.method == "PATCH")
    assert ("fieldManager", "kai") in first.query and ("fieldValidation", "Strict") in first.query
    assert first.headers["Content-Type"] == "application/apply-patch+yaml"
    reviews = [q for q in played(tape) if q.path.endswith("selfsubjectaccessreviews")]
    # get and patch for each of the 9 kinds, and create for each object that does not exist yet
    assert len(reviews) == 27
    assert "rolled out Deployment/agent/agent (1/1 ready)" in r.out


def test_diff_shows_the_change_not_the_server_noise_and_refuses_without_a_tty(kai) -> None:
    r, tape = apply(kai, "update_refused_without_tty", HARDENED)
    assert r.code == 2 and "no terminal to confirm" in r.out
    assert "create 0, update 1, unchanged 8" in r.out
    assert (
        "-        image: ghcr.io/acme/agent:1.3.0" in r.out
        and "+        image: ghcr.io/acme/agent:1.4.0" in r.out
    )
    for noise in ("managedFields", "resourceVersion", "creationTimestamp", "uid:"):
        assert noise not in r.out
    assert _patches(tape, False) == []  # nothing applied


def test_partial_failure_says_what_was_and_was_not_applied(kai) -> None:
    r, tape = apply(kai, "partial_failure", HARDENED, "--yes")
    assert r.code == 4
    assert "failed Service/agent/agent: Internal error occurred" in r.out
    assert (
        "applied NetworkPolicy/agent/agent" in r.out
        and "not applied Deployment/agent/agent" in r.out
    )
    assert "not applied Ingress/agent/agent" in r.out
    assert _patches(tape, False)[-1] == "services/agent"


def test_missing_permissions_are_listed_before_anything_runs(kai) -> None:
    r, tape = apply(kai, "rbac_denied", HARDENED, "--yes")
    assert r.code == 4 and "not allowed patch Deployment (apps/v1) in namespace agent" in r.out
    assert _patches(tape, True) == []


def test_admission_warnings_become_findings(kai) -> None:
    # The Namespace of the same run enforces "restricted" and the Deployment sets no
    # seccompProfile: the real server warns on the Deployment's dry run, and a warning about the
    # level the namespace enforces means every pod would be rejected, so it is an error (issue
    # 11), after the Namespace itself was created (the Deployment waited for it) and before the
    # Deployment is applied. The warning-only path (KAI-SRV-001) is checked in tests/cluster.
    r, tape = apply(
        kai, "podsecurity_warning", str(FIXTURES / "enforcing"), "--yes", "--ignore-findings"
    )
    assert r.code == 4, r.out
    out = " ".join(r.out.split())
    assert "enforces Pod Security 'restricted'" in out
    assert 'would violate PodSecurity "restricted:latest": seccompProfile' in out
    assert _patches(tape, True) == ["namespaces/agent", "deployments/agent"]
    assert _patches(tape, False) == ["namespaces/agent"]


def test_conflict_explains_the_owner_then_force_takes_the_field(kai) -> None:
    args = (str(FIXTURES / "deployment.yaml"), "--yes", "--ignore-findings")
    r, _ = apply(kai, "conflict", *args)
    assert r.code == 4
    assert (
        '.spec.replicas is owned by "kubectl-client-side-apply"' in r.out
        and "--force-conflicts" in r.out
    )
    r, tape = apply(kai, "conflict_forced", *args, "--force-conflicts")
    assert r.code == 0 and all(
        ("force", "true") in q.query for q in played(tape) if q.method == "PATCH"
    )


@pytest.mark.parametrize(
    ("cassette", "fixture", "expected"),
    [
        ("invalid_422", "mismatch.yaml", "invalid: spec.template.metadata.labels: Invalid value"),
        ("unknown_field_ssa_500", "widget.yaml", ".spec.colour: field not declared in schema"),
        (
            "podsecurity_forbidden",
            "pod.yaml",
            'rejected by Pod Security admission: pods "debug" is forbidden',
        ),
        ("namespace_missing", "ghost.yaml", 'namespaces "ghost" not found'),
    ],
)
def test_server_errors_become_clear_messages(
    kai, cassette: str, fixture: str, expected: str
) -> None:
    r, tape = apply(kai, cassette, str(FIXTURES / fixture), "--yes", "--ignore-findings")
    assert r.code == 4 and expected in r.out
    assert _patches(tape, False) == []


def test_a_kind_whose_crd_is_missing(kai) -> None:
    r, _ = apply(kai, "crd_not_installed", str(FIXTURES / "gadget.yaml"), "--yes")
    assert (
        r.code == 4
        and "does not serve gadgets.example.com/v1 (is its CustomResourceDefinition installed?)"
        in r.err
    )


def test_failing_review_blocks_before_anything_is_sent(kai) -> None:
    r, tape = apply(kai, "draft_blocked", str(EXAMPLES / "agent-draft"), "--yes")
    assert r.code == 1 and "nothing applied" in r.out
    assert all(
        q.method == "GET" for q in played(tape)
    )  # only reads: discovery and the namespace's objects


def test_review_counts_what_already_runs_in_the_namespace(kai) -> None:
    """The Deployment alone lacks a NetworkPolicy, but the cluster already has one selecting it."""
    r, tape = apply(
        kai,
        "existing_networkpolicy",
        str(EXAMPLES / "agent-hardened" / "30-deployment.yaml"),
        "--yes",
    )
    assert r.code == 0, r.out
    assert "KAI-NET-001" not in r.out and "rolled out Deployment/agent/agent" in r.out
    assert any(q.path.endswith("/namespaces/agent/networkpolicies") for q in played(tape))


def test_unreachable_cluster_is_one_line_exit_4(kai, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib3
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    def refuse(self, method, url, *a, **k):
        pool = urllib3.HTTPConnectionPool("127.0.0.1", 16443)
        connection = urllib3.connection.HTTPConnection("127.0.0.1", 16443)
        raise MaxRetryError(pool, url, NewConnectionError(connection, "Connection refused"))

    monkeypatch.setattr(urllib3.PoolManager, "request", refuse)
    r = kai("apply", HARDENED, "--kubeconfig", KUBECONFIG, "--yes")
    assert r.code == 4
    assert "cannot reach the cluster (context recorded, server http://127.0.0.1:16443)" in r.err
    assert r.err.count("\n") == 1


def test_no_kubeconfig_is_a_cluster_error(
    kai, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    r = kai("apply", HARDENED, "--kubeconfig", str(tmp_path / "missing"), "--yes")
    assert r.code == 4 and "no cluster configured" in r.err


def test_noise_and_order_helpers() -> None:
    live: dict[str, Any] = {
        "kind": "ConfigMap",
        "metadata": {"name": "c", "uid": "1", "resourceVersion": "9", "managedFields": [{}]},
        "data": {"a": "1"},
        "status": {},
    }
    assert clean(live) == {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    assert (
        diff(live, {**live, "metadata": {**live["metadata"], "resourceVersion": "10"}}, "c") == ""
    )
    assert (
        KIND_ORDER["NetworkPolicy"] < KIND_ORDER["Deployment"] < KIND_ORDER["PodDisruptionBudget"]
    )


@pytest.mark.skipif(
    not os.environ.get("KAI_TEST_KUBECONFIG"),
    reason="set KAI_TEST_KUBECONFIG to a disposable cluster to run live apply tests",
)
@pytest.mark.live
def test_live_cluster_dry_run(kai) -> None:
    r = kai("apply", HARDENED, "--kubeconfig", os.environ["KAI_TEST_KUBECONFIG"])
    assert r.code in (0, 2) and "create" in r.out


def test_failed_rollout_shows_reasons_and_rolls_back(kai) -> None:
    import json

    r, tape = apply(
        kai,
        "rollout_failure_rolled_back",
        str(FIXTURES / "rollback.yaml"),
        "--yes",
        "--ignore-findings",
        "--rollback-on-failure",
        "--timeout",
        "120",
    )
    assert r.code == 4
    assert (
        'rollout failed Deployment/agent/agent: ReplicaSet "agent-79549f99d" has timed out '
        "progressing." in r.out
    )
    assert (
        "container agent ImagePullBackOff" in r.out
        and 'Failed to pull image "registry.example/acme/agent-imagepullbackoff:1.4.0"' in r.out
    )
    assert "rolled back to revision 1 (Deployment/agent/agent)" in r.out
    undo = [q for q in played(tape) if q.method == "PATCH"][-1]
    assert ("force", "true") in undo.query
    assert (
        json.loads(undo.body)["spec"]["template"]["spec"]["containers"][0]["image"]
        == "ghcr.io/acme/agent:1.3.0"
    )


def test_rollout_timeout_explains_pending_pods(kai) -> None:
    r, _ = apply(
        kai,
        "rollout_timeout",
        str(FIXTURES / "deployment.yaml"),
        "--yes",
        "--ignore-findings",
        "--timeout",
        "0",
    )
    assert r.code == 4 and "not ready after 0 s (0/2 ready; 0 out of 2 new replicas" in r.out
    assert "Pending: 0/3 nodes are available: 3 Insufficient memory" in r.out


def test_review_cluster_reads_a_namespace(kai) -> None:
    with replay.use_cassette("review_live_hardened.yaml") as tape:
        r = kai("review", "--cluster", "-n", "agent", "-o", "json", "--kubeconfig", KUBECONFIG)
    data = r.json()
    # the 8 namespaced objects of agent-hardened (the Namespace itself is not namespaced) and
    # what the controller-manager makes in every namespace: ServiceAccount default, ConfigMap
    # kube-root-ca.crt
    assert r.code == 0 and data["summary"]["objects"] == 10 and data["findings"] == [], data
    assert all(q.method == "GET" for q in played(tape))  # read-only
    assert not any(q.path.endswith("/secrets") for q in played(tape))  # Secrets are never read
    with replay.use_cassette("review_live_draft.yaml"):
        r = kai("review", "--cluster", "-n", "agent", "-o", "json", "--kubeconfig", KUBECONFIG)
    findings = r.json()["findings"]
    assert r.code == 1 and {"KAI-SEC-001", "KAI-NET-001", "KAI-IMG-001"} <= {
        f["rule"] for f in findings
    }
    assert findings[0]["file"] == "cluster:recorded/agent"


def test_review_needs_paths_or_cluster(kai) -> None:
    assert kai("review").code == 2
    assert kai("review", "x.yaml", "--cluster").code == 2

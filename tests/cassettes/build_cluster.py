"""Authors tests/cassettes/cluster/*.yaml: kai apply against fake_apiserver.py, through vcrpy.

python tests/cassettes/build_cluster.py

These exchanges are AUTHORED (a hand-made server, not a real one) and each cassette says so. They
stay for what the cluster tier (tests/cluster) cannot stage on demand: a 5xx mid-apply, exact
rollout timing, scripted rollouts. Everything a real server can answer is recorded from one by
record_cluster.py (names in RECORDED_FROM_A_REAL_SERVER; this script leaves those alone).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import vcr
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from fake_apiserver import Scenario, serve, status  # noqa: E402

from kai.cli import main  # noqa: E402

KUBECONFIG = str(ROOT / "tests" / "data" / "kubeconfig.yaml")
HARDENED = str(ROOT / "examples" / "agent-hardened")
OUT = HERE / "cluster"
FIXTURES = ROOT / "tests" / "data" / "cluster"


def hardened() -> list[dict]:
    return [
        d
        for f in sorted(Path(HARDENED).glob("*.yaml"))
        for d in yaml.safe_load_all(f.read_text())
        if d
    ]


RECORDED_FROM_A_REAL_SERVER = {
    "invalid_422",
    "podsecurity_forbidden",
    "namespace_missing",
    "crd_not_installed",
    "unknown_field_400",  # now unknown_field_ssa_500: the real server answers 500
    "conflict",
    "conflict_forced",
}
AUTHORED = (
    "# authored: a hand-made exchange (tests/cassettes/fake_apiserver.py via build_cluster.py),\n"
    "# not recorded from a real server; kept for what the cluster tier cannot stage.\n"
)


def record(name: str, scenario: Scenario, *args: str, command: str = "apply") -> None:
    if name in RECORDED_FROM_A_REAL_SERVER:
        return  # record_cluster.py records it from a real control plane
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.yaml"
    path.unlink(missing_ok=True)
    server = serve(scenario)
    recorder = vcr.VCR(
        record_mode="all", filter_headers=["authorization"], decode_compressed_response=True
    )
    try:
        with recorder.use_cassette(str(path)):
            try:
                main([command, *args, "--kubeconfig", KUBECONFIG])
            except SystemExit as e:
                print(name, "exit", e.code, file=sys.stderr)
    finally:
        server.shutdown()
    path.write_text(AUTHORED + path.read_text())


def ready(n: int, **extra: object) -> dict:
    return {
        "observedGeneration": 1,
        "replicas": n,
        "updatedReplicas": n,
        "readyReplicas": n,
        "availableReplicas": n,
        **extra,
    }


STARTING = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 0, "unavailableReplicas": 1}
DEADLINE = {
    "observedGeneration": 1,
    "replicas": 2,
    "updatedReplicas": 2,
    "unavailableReplicas": 2,
    "conditions": [
        {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": 'ReplicaSet "agent-7d9c6b5f4" has timed out progressing.',
        }
    ],
}
PULL_FAILING_POD = {
    "metadata": {"name": "agent-7d9c6b5f4-x2k8p", "namespace": "agent", "labels": {"app": "agent"}},
    "status": {
        "phase": "Pending",
        "containerStatuses": [
            {
                "name": "agent",
                "ready": False,
                "restartCount": 0,
                "image": "ghcr.io/acme/agent:1.4.0",
                "state": {
                    "waiting": {
                        "reason": "ImagePullBackOff",
                        "message": 'Back-off pulling image "ghcr.io/acme/agent:1.4.0"',
                    }
                },
            }
        ],
    },
}
UNSCHEDULABLE_POD = {
    "metadata": {"name": "agent-7d9c6b5f4-q9v2m", "namespace": "agent", "labels": {"app": "agent"}},
    "status": {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.",
            }
        ],
    },
}
PULL_EVENT = {
    "metadata": {"name": "agent-7d9c6b5f4-x2k8p.17f9a", "namespace": "agent"},
    "type": "Warning",
    "reason": "Failed",
    "involvedObject": {"kind": "Pod", "name": "agent-7d9c6b5f4-x2k8p", "namespace": "agent"},
    "message": 'Failed to pull image "ghcr.io/acme/agent:1.4.0": rpc error: code = NotFound desc = failed to resolve reference "ghcr.io/acme/agent:1.4.0": not found',
}


def replicaset(revision: int, image: str) -> dict:
    return {
        "metadata": {
            "name": f"agent-rev{revision}",
            "namespace": "agent",
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "agent", "controller": True}
            ],
        },
        "spec": {
            "replicas": 2,
            "template": {
                "metadata": {"labels": {"app": "agent", "pod-template-hash": f"h{revision}"}},
                "spec": {"containers": [{"name": "agent", "image": image}]},
            },
        },
    }


def main_build() -> None:
    import time

    time.sleep = lambda _s: None  # rollouts are recorded step by step, not in real time
    os.environ["COLUMNS"] = "200"
    FIXTURES.mkdir(parents=True, exist_ok=True)
    record("create_all", Scenario(rollout={"agent": [STARTING, ready(1)]}), HARDENED, "--yes")
    record(
        "rollout_failure_rolled_back",
        Scenario(
            rollout={"agent": [DEADLINE]},
            lists={
                "pods": [PULL_FAILING_POD],
                "events": [PULL_EVENT],
                "replicasets": [
                    replicaset(1, "ghcr.io/acme/agent:1.3.0"),
                    replicaset(2, "ghcr.io/acme/agent:1.4.0"),
                ],
            },
        ),
        str(FIXTURES / "deployment.yaml"),
        "--yes",
        "--ignore-findings",
        "--rollback-on-failure",
    )
    record(
        "rollout_timeout",
        Scenario(
            rollout={"agent": [{**STARTING, "replicas": 2}]},
            lists={"pods": [UNSCHEDULABLE_POD], "events": []},
        ),
        str(FIXTURES / "deployment.yaml"),
        "--yes",
        "--ignore-findings",
        "--timeout",
        "0",
    )
    live = hardened()
    for obj in live:
        if obj["kind"] == "Deployment":
            obj["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/agent:1.3.0"
    netpol = [d for d in hardened() if d["kind"] == "NetworkPolicy"]
    record(
        "existing_networkpolicy",
        Scenario(live=netpol, rollout={"agent": [ready(1)]}),
        str(Path(HARDENED) / "30-deployment.yaml"),
        "--yes",
    )
    record("draft_blocked", Scenario(), str(ROOT / "examples" / "agent-draft"), "--yes")
    record(
        "review_live_hardened",
        Scenario(live=hardened()),
        "--cluster",
        "-n",
        "agent",
        "-o",
        "json",
        command="review",
    )
    draft = [
        {**d, "metadata": {**d["metadata"], "namespace": "agent"}}
        for f in sorted((ROOT / "examples" / "agent-draft").glob("*.yaml"))
        for d in yaml.safe_load_all(f.read_text())
        if d
    ]
    record(
        "review_live_draft",
        Scenario(live=draft),
        "--cluster",
        "-n",
        "agent",
        "-o",
        "json",
        command="review",
    )
    record("update_refused_without_tty", Scenario(live=live), HARDENED)
    record(
        "partial_failure",
        Scenario(
            fail={
                ("Service", "agent", False): (
                    500,
                    status(
                        500,
                        "InternalError",
                        'Internal error occurred: failed calling webhook "validate.mesh.example.com": context deadline exceeded',
                    ),
                )
            }
        ),
        HARDENED,
        "--yes",
    )
    record("rbac_denied", Scenario(deny={("patch", "deployments")}), HARDENED, "--yes")
    record(
        "podsecurity_warning",
        Scenario(
            rollout={"agent": [ready(1)]},
            warn={
                "Deployment": [
                    'would violate PodSecurity "restricted:latest": seccompProfile (pod or container "agent" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
                ]
            },
        ),
        HARDENED,
        "--yes",
    )
    record(
        "conflict",
        Scenario(conflict={"agent": ("kubectl-client-side-apply", ".spec.replicas")}),
        str(FIXTURES / "deployment.yaml"),
        "--yes",
        "--ignore-findings",
    )
    record(
        "conflict_forced",
        Scenario(
            conflict={"agent": ("kubectl-client-side-apply", ".spec.replicas")},
            rollout={"agent": [ready(2)]},
        ),
        str(FIXTURES / "deployment.yaml"),
        "--yes",
        "--ignore-findings",
        "--force-conflicts",
    )
    invalid = status(
        422,
        "Invalid",
        'Deployment.apps "mismatch" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: `selector` does not match template `labels`',
        {
            "name": "mismatch",
            "group": "apps",
            "kind": "Deployment",
            "causes": [
                {
                    "reason": "FieldValueInvalid",
                    "message": 'Invalid value: map[string]string{"app":"other"}: `selector` does not match template `labels`',
                    "field": "spec.template.metadata.labels",
                }
            ],
        },
    )
    record(
        "invalid_422",
        Scenario(fail={("Deployment", "mismatch", True): (422, invalid)}),
        str(FIXTURES / "mismatch.yaml"),
        "--yes",
        "--ignore-findings",
    )
    unknown = status(
        400,
        "BadRequest",
        "failed to create typed patch object (agent/w; monitoring.example.com/v1, Kind=Widget): .spec.colour: field not declared in schema",
    )
    record(
        "unknown_field_400",
        Scenario(fail={("Widget", "w", True): (400, unknown)}),
        str(FIXTURES / "widget.yaml"),
        "--yes",
    )
    forbidden = status(
        403,
        "Forbidden",
        'pods "debug" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false), runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true)',
        {"name": "debug", "kind": "pods"},
    )
    record(
        "podsecurity_forbidden",
        Scenario(fail={("Pod", "debug", True): (403, forbidden)}),
        str(FIXTURES / "pod.yaml"),
        "--yes",
        "--ignore-findings",
    )
    record(
        "namespace_missing",
        Scenario(missing_namespaces={"ghost"}),
        str(FIXTURES / "ghost.yaml"),
        "--yes",
        "--ignore-findings",
    )
    record("crd_not_installed", Scenario(), str(FIXTURES / "gadget.yaml"), "--yes")


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:  # rebuild on a copy; exit 1 with a diff when stale
        import check_generated

        raise SystemExit(check_generated.main([__file__]))
    main_build()

"""Authors tests/cassettes/cluster/*.yaml: kai apply against fake_apiserver.py, through vcrpy.

python tests/cassettes/build_cluster.py

These exchanges are AUTHORED (a hand-made server, not a real one) and each cassette says so, with
the reason a real server cannot stage it (WHY_AUTHORED): a 5xx mid-apply, and a rollout's state at
the instant a wall-clock deadline expires. Everything a real server can answer is recorded from
the real control plane by record_cluster.py; this script builds only the names in WHY_AUTHORED.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import vcr

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


WHY_AUTHORED = {
    "partial_failure": (
        "a 500 from an admission webhook on one object mid-apply, after its dry run passed: a\n"
        "# real server cannot be made to fail only the real write on demand"
    ),
    "rollout_timeout": (
        "--timeout 0 reads the rollout once, at once: a real scheduler has not yet marked the\n"
        "# new pods Unschedulable at that instant; the real-server check is\n"
        "# tests/cluster/test_apply_works.py::test_rollout_watch_names_the_schedulers_pending_reason"
    ),
}


def record(name: str, scenario: Scenario, *args: str, command: str = "apply") -> None:
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
    header = (
        "# authored: a hand-made exchange (tests/cassettes/fake_apiserver.py via build_cluster.py),\n"
        f"# not recorded from a real server. Why: {WHY_AUTHORED[name]}.\n"
    )
    path.write_text(header + path.read_text())


def ready(n: int, **extra: object) -> dict[str, Any]:
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


def replicaset(revision: int, image: str) -> dict[str, Any]:
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


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:  # rebuild on a copy; exit 1 with a diff when stale
        import check_generated

        raise SystemExit(check_generated.main([__file__]))
    main_build()

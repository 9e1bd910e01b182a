"""Records tests/cassettes/cluster/*.yaml from a REAL control plane (the cluster tier's harness).

KAI_TEST_K8S_BIN=/tmp/kai-k8s-bin python tests/cassettes/record_cluster.py [NAME...]
python tests/cassettes/record_cluster.py --check   # offline: the cassettes say what answered

Starts etcd + kube-apiserver + controller-manager + scheduler and the node stand-in
(tests/cluster/harness.py), stages each scenario for real (a CRD, a conflicting field manager, a
namespace enforcing Pod Security, ...), runs `kai apply` through vcrpy in record mode, then rewrites
the server address to tests/data/kubeconfig.yaml's (http://127.0.0.1:16443) so the tests replay it
without a cluster. Each cassette starts with a comment naming the server version that answered.
Every scenario kai's replay tests use that a real server can answer is recorded here (a fresh
cluster, a Role that may not patch, an enforcing namespace, live namespaces for review --cluster,
...). What a real server cannot be made to do on demand (an outage, a 5xx mid-apply, an old server
version, a rollout's state at a wall-clock deadline) stays in build_cluster.py, labelled
"authored" with the reason in each cassette.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import vcr
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from cluster import harness  # noqa: E402

from kai.cli import main  # noqa: E402

OUT = HERE / "cluster"
FIXTURES = ROOT / "tests" / "data" / "cluster"
REPLAY_SERVER = "http://127.0.0.1:16443"

WIDGET_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.monitoring.example.com}
spec:
  group: monitoring.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
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
                size: {type: integer}
"""


class Recorder:
    def __init__(self, cp: harness.ControlPlane) -> None:
        self.cp = cp
        self.kubeconfig = cp.workdir / "record.kubeconfig"
        cfg = yaml.safe_load(cp.kubeconfig.read_text())
        for ctx in cfg["contexts"]:
            ctx["context"]["namespace"] = "agent"
        self.kubeconfig.write_text(yaml.safe_dump(cfg))
        venv_bin = Path(sys.executable).parent
        self.kubectl_bin = (
            str(venv_bin / "kubectl") if (venv_bin / "kubectl").exists() else "kubectl"
        )

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        proc = subprocess.run(
            [self.kubectl_bin, "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode:
            raise RuntimeError(f"kubectl {' '.join(args)}: {proc.stderr}")
        return proc.stdout

    def reset(self) -> None:
        """A fresh namespace `agent` (the recorded kubeconfig's namespace)."""
        subprocess.run(
            [
                self.kubectl_bin,
                "--kubeconfig",
                str(self.kubeconfig),
                "delete",
                "namespace",
                "agent",
                "--ignore-not-found",
                "--wait=true",
                "--timeout=120s",
            ],
            capture_output=True,
            timeout=150,
        )
        self.kubectl("create", "namespace", "agent")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "default" in self.kubectl("get", "serviceaccounts", "-n", "agent", "-o", "name"):
                return
            time.sleep(0.5)

    def record(
        self,
        name: str,
        setup: Callable[[], None],
        *args: str,
        context: str = "admin",
        command: str = "apply",
    ) -> None:
        self.reset()
        setup()
        path = OUT / f"{name}.yaml"
        path.unlink(missing_ok=True)
        cfg = yaml.safe_load(self.kubeconfig.read_text())
        cfg["current-context"] = context
        kubeconfig = self.cp.workdir / f"record-{context}.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(cfg))
        recorder = vcr.VCR(
            record_mode="all", filter_headers=["authorization"], decode_compressed_response=True
        )
        code: object = 0
        stdin = sys.stdin
        with recorder.use_cassette(str(path)), open(os.devnull) as no_terminal:
            sys.stdin = no_terminal  # as in the replaying tests: no TTY to confirm on
            try:
                main([command, *args, "--kubeconfig", str(kubeconfig)])
            except SystemExit as e:
                code = e.code
            finally:
                sys.stdin = stdin
        text = path.read_text().replace(self.cp.server, REPLAY_SERVER)
        text = re.sub(r"(?m)^(\s+)- Bearer .*$", r"\1- Bearer filtered", text)
        header = (
            f"# recorded from a real kube-apiserver {self.cp.version} (etcd, controller-manager, "
            f"scheduler; node stand-in) by tests/cassettes/record_cluster.py;\n"
            f"# the server address is rewritten to tests/data/kubeconfig.yaml's. "
            f"`kai {command}` (as {context}) exited {code}.\n"
        )
        path.write_text(header + text)
        print(name, "exit", code, file=sys.stderr)


HARDENED = ROOT / "examples" / "agent-hardened"
DRAFT = ROOT / "examples" / "agent-draft"

# user `limited` may read everything and create or patch every kind of agent-hardened but may
# only create Deployments, not patch them (rbac_denied)
LIMITED_GRANTS = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: record-limited-namespaces}
rules:
  - {apiGroups: [""], resources: [namespaces], verbs: [get, list, watch, create, patch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: record-limited-namespaces}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: record-limited-namespaces}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: limited}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: record-limited, namespace: agent}
rules:
  - {apiGroups: ["*"], resources: ["*"], verbs: [get, list, watch]}
  - apiGroups: ["", networking.k8s.io, autoscaling, policy]
    resources: [serviceaccounts, configmaps, services, ingresses, networkpolicies,
                horizontalpodautoscalers, poddisruptionbudgets]
    verbs: [create, patch]
  - {apiGroups: [apps], resources: [deployments], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: record-limited, namespace: agent}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: record-limited}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: limited}]
"""


def scenarios(r: Recorder) -> dict[str, Callable[[], None]]:
    dep = str(FIXTURES / "deployment.yaml")

    def nothing() -> None:
        pass

    def no_namespace() -> None:
        # a fresh cluster: the run creates namespace agent itself (Namespace first, issue 11)
        r.kubectl("delete", "namespace", "agent", "--wait=true", "--timeout=120s")

    def client_side_owner() -> None:
        # kubectl's client-side apply owns spec.replicas (3) before kai applies 2
        text = (FIXTURES / "deployment.yaml").read_text().replace("replicas: 2", "replicas: 3")
        r.kubectl("apply", "-f", "-", stdin=text)

    def enforce_restricted() -> None:
        r.kubectl("label", "namespace", "agent", "pod-security.kubernetes.io/enforce=restricted")

    def widget_crd() -> None:
        r.kubectl("apply", "-f", "-", stdin=WIDGET_CRD)
        r.kubectl("wait", "--for=condition=Established", "crd/widgets.monitoring.example.com")

    def limited_may_not_patch_deployments() -> None:
        r.kubectl("apply", "-f", "-", stdin=LIMITED_GRANTS)

    def hardened_live() -> None:
        r.kubectl("apply", "--server-side", "--field-manager=kai", "-f", str(HARDENED))

    def hardened_at_1_3_0() -> None:
        # what an earlier `kai apply` left: the same objects, owned by kai, the previous image
        text = "\n---\n".join(f.read_text() for f in sorted(HARDENED.glob("*.yaml")))
        text = text.replace("ghcr.io/acme/agent:1.4.0", "ghcr.io/acme/agent:1.3.0")
        r.kubectl("apply", "--server-side", "--field-manager=kai", "-f", "-", stdin=text)

    def draft_live() -> None:
        r.kubectl("apply", "-n", "agent", "-f", str(DRAFT))

    def its_neighbours() -> None:
        # the Deployment's ServiceAccount and ConfigMap, and a NetworkPolicy selecting its pods
        for name in ("10-serviceaccount.yaml", "20-configmap.yaml", "80-networkpolicy.yaml"):
            r.kubectl("apply", "-f", str(HARDENED / name))

    def revision_1_running() -> None:
        text = (FIXTURES / "rollback.yaml").read_text()
        text = text.replace(
            "registry.example/acme/agent-imagepullbackoff:1.4.0", "ghcr.io/acme/agent:1.3.0"
        )
        r.kubectl("apply", "--server-side", "--field-manager=kai", "-f", "-", stdin=text)
        r.kubectl("rollout", "status", "deployment/agent", "--timeout=120s")

    return {
        "rollout_failure_rolled_back": lambda: r.record(
            "rollout_failure_rolled_back",
            revision_1_running,
            str(FIXTURES / "rollback.yaml"),
            "--yes",
            "--ignore-findings",
            "--rollback-on-failure",
            "--timeout",
            "120",
        ),
        "create_all": lambda: r.record("create_all", no_namespace, str(HARDENED), "--yes"),
        "draft_blocked": lambda: r.record("draft_blocked", nothing, str(DRAFT), "--yes"),
        "existing_networkpolicy": lambda: r.record(
            "existing_networkpolicy",
            its_neighbours,
            str(HARDENED / "30-deployment.yaml"),
            "--yes",
        ),
        "update_refused_without_tty": lambda: r.record(
            "update_refused_without_tty", hardened_at_1_3_0, str(HARDENED)
        ),
        "rbac_denied": lambda: r.record(
            "rbac_denied",
            limited_may_not_patch_deployments,
            str(HARDENED),
            "--yes",
            context="limited",
        ),
        "podsecurity_warning": lambda: r.record(
            "podsecurity_warning",
            no_namespace,
            str(FIXTURES / "enforcing"),
            "--yes",
            "--ignore-findings",
        ),
        "review_live_hardened": lambda: r.record(
            "review_live_hardened",
            hardened_live,
            "--cluster",
            "-n",
            "agent",
            "-o",
            "json",
            command="review",
        ),
        "review_live_draft": lambda: r.record(
            "review_live_draft",
            draft_live,
            "--cluster",
            "-n",
            "agent",
            "-o",
            "json",
            command="review",
        ),
        "invalid_422": lambda: r.record(
            "invalid_422", nothing, str(FIXTURES / "mismatch.yaml"), "--yes", "--ignore-findings"
        ),
        "podsecurity_forbidden": lambda: r.record(
            "podsecurity_forbidden",
            enforce_restricted,
            str(FIXTURES / "pod.yaml"),
            "--yes",
            "--ignore-findings",
        ),
        "namespace_missing": lambda: r.record(
            "namespace_missing", nothing, str(FIXTURES / "ghost.yaml"), "--yes", "--ignore-findings"
        ),
        "crd_not_installed": lambda: r.record(
            "crd_not_installed", nothing, str(FIXTURES / "gadget.yaml"), "--yes"
        ),
        # server-side apply answers an unknown field with 500 "failed to create typed patch
        # object" (kubernetes#122480), not the 400 the authored recording had
        "unknown_field_ssa_500": lambda: r.record(
            "unknown_field_ssa_500", widget_crd, str(FIXTURES / "widget.yaml"), "--yes"
        ),
        "conflict": lambda: r.record(
            "conflict", client_side_owner, dep, "--yes", "--ignore-findings"
        ),
        "conflict_forced": lambda: r.record(
            "conflict_forced",
            client_side_owner,
            dep,
            "--yes",
            "--ignore-findings",
            "--force-conflicts",
        ),
    }


def main_record(names: list[str]) -> None:
    bin_dir, why = harness.bin_dir_from_env()
    if bin_dir is None:
        sys.exit(why)
    os.environ["COLUMNS"] = "200"
    os.environ.pop("KUBECONFIG", None)
    cp = harness.ControlPlane.start(
        bin_dir, timeout=float(os.environ.get("KAI_TEST_K8S_TIMEOUT", 180))
    )
    # the stand-in runs in its own process: vcrpy patches every connection pool in this one
    node = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "cluster" / "harness.py"),
            str(cp.workdir),
            cp.version,
        ],
        preexec_fn=harness._die_with_parent,
    )
    try:
        r = Recorder(cp)
        todo = scenarios(r)
        for name in names or list(todo):
            todo[name]()
    finally:
        node.terminate()
        node.wait(timeout=30)
        cp.stop()


def check() -> int:
    """No server here: check what can be checked offline. Every scenario's cassette exists and
    its first line names the real kube-apiserver version that answered, and every other cassette
    in cassettes/cluster/ says it is authored. (The replaying tests, tests/test_apply.py, check
    that kai still sends what was recorded.)"""
    problems = []
    recorded = set(scenarios(None))  # type: ignore[arg-type]
    for name in sorted(recorded):
        path = OUT / f"{name}.yaml"
        first = path.read_text().splitlines()[0] if path.exists() else ""
        if not re.match(r"# recorded from a real kube-apiserver v\d+\.\d+\.\d+ ", first):
            problems.append(f"{path.name}: not labelled as recorded from a real kube-apiserver")
    for path in sorted(OUT.glob("*.yaml")):
        if path.stem not in recorded and not path.read_text().startswith("# authored: "):
            problems.append(f"{path.name}: neither recorded by this script nor labelled authored")
    print(
        "\n".join(problems)
        or f"{len(recorded)} recorded cluster cassettes labelled; the rest authored"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        raise SystemExit(check())
    main_record(sys.argv[1:])

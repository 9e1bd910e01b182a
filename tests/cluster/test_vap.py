"""`kai policies export --format vap` on a real kube-apiserver (issue 13, item 5).

The whole export must be accepted by the API server; applied with --action deny, the exported
KAI-SEC-001 policy denies a Deployment whose pods run as root in an ordinary namespace and leaves
kube-system alone (the default namespace exclusion).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import yaml

from .conftest import Cluster, Result
from .util import deployment, one_line

POLICY = "kai-sec-001"


def _root(name: str, namespace: str) -> str:
    """A Deployment whose pods run as root (runAsUser 0, no runAsNonRoot): KAI-SEC-001 fails it."""
    text = deployment(name, namespace)
    return text.replace(
        "securityContext: {runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: RuntimeDefault}}",
        "securityContext: {runAsUser: 0, seccompProfile: {type: RuntimeDefault}}",
    )


def _create(cluster: Cluster, manifest: str, tmp_path: Path, *flags: str) -> Result:
    path = tmp_path / f"m-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(manifest)
    return cluster.kubectl("create", "-f", str(path), *flags)


def test_exported_policy_denies_root_in_a_namespace_and_leaves_kube_system_alone(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    out = tmp_path / "vap.yaml"
    r = cluster.kai("policies", "export", "--format", "vap", "--action", "deny", "--out", str(out))
    assert r.code == 0, r
    assert "Deny rejects every violating request" in one_line(r.err), r
    assert "excluded namespaces: kube-system, kube-node-lease, kube-public" in one_line(r.err)

    # The API server accepts every exported object as it is (schema, names, CEL).
    whole = cluster.kubectl("apply", "--dry-run=server", "-f", str(out))
    assert whole.code == 0, whole.err[-3000:]
    docs = [d for d in yaml.safe_load_all(out.read_text()) if d]
    assert whole.out.count("(server dry run)") == len(docs), whole

    # Enforce one exported policy (only it: the cluster is shared with the other tests).
    one = [d for d in docs if d["metadata"]["name"] == POLICY]
    assert [d["kind"] for d in one] == [
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    policy_file = tmp_path / "sec-001.yaml"
    policy_file.write_text(yaml.safe_dump_all(one))
    applied = cluster.kubectl("apply", "-f", str(policy_file))
    assert applied.code == 0, applied
    try:
        # The policy is live once the server denies a (dry-run) root Deployment in the namespace.
        denied = cluster.wait_for(
            lambda: (
                d
                if (
                    d := _create(cluster, _root("probe", namespace), tmp_path, "--dry-run=server")
                ).code
                else None
            ),
            timeout=60,
            what="the exported policy to deny a root Deployment",
        )
        r = _create(cluster, _root("root-app", namespace), tmp_path)
        assert r.code != 0, r
        message = one_line(r.err)
        assert f"ValidatingAdmissionPolicy '{POLICY}'" in message, r
        assert "denied request" in message and "KAI-SEC-001" in message, r
        assert cluster.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/root-app") is None
        assert denied is not None and denied.code != 0

        # A non-root Deployment in the same namespace is admitted.
        ok = _create(cluster, deployment("non-root", namespace), tmp_path)
        assert ok.code == 0, ok

        # kube-system is excluded: the same root Deployment is admitted there.
        name = f"kai-vap-root-{uuid.uuid4().hex[:5]}"
        system = _create(cluster, _root(name, "kube-system"), tmp_path)
        assert system.code == 0, system
        assert cluster.get(f"/apis/apps/v1/namespaces/kube-system/deployments/{name}") is not None
        cluster.kubectl("delete", "deployment", name, "-n", "kube-system", "--wait=false")
    finally:
        cluster.kubectl("delete", "-f", str(policy_file), "--ignore-not-found")
        # Leave the shared cluster as found: wait until root is admitted again (dry run).
        cluster.wait_for(
            lambda: (
                _create(cluster, _root("after", namespace), tmp_path, "--dry-run=server").code == 0
            ),
            timeout=60,
            what="the policy to be gone",
        )

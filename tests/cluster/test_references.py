"""Reference rules against a real API server: the live namespace decides whether a ConfigMap a
workload needs exists (KAI-REF-001, KAI-REF-003), and a Secret kai never reads is unknown
(KAI-REF-002), never an error."""

from __future__ import annotations

from pathlib import Path

from .conftest import Cluster
from .util import configmap, deployment

# Container-level fields appended to the util Deployment's only container.
REFS = """\
          envFrom:
            - configMapRef: {name: web-config}
          env:
            - name: LEVEL
              valueFrom:
                configMapKeyRef: {name: web-config, key: LEVEL}
            - name: TOKEN
              valueFrom:
                secretKeyRef: {name: web-token, key: token}
"""


def _rules(review: object) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {}
    for f in review.json()["findings"]:  # type: ignore[attr-defined]
        out.setdefault(f["rule"], []).append(f)
    return out


def test_live_configmap_decides_the_reference(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    web = deployment("web", namespace, extra_spec=REFS)
    cluster.create(namespace, web)

    missing = _rules(cluster.kai("review", "--cluster", "-n", namespace, "-o", "json"))
    assert [f["unknown"] for f in missing.get("KAI-REF-001", [])] == [False], missing
    assert "web-config" in str(missing["KAI-REF-001"][0]["message"])
    # kai never reads Secrets from a cluster: the Secret reference cannot be decided there
    secret = missing.get("KAI-REF-002", [])
    assert secret and all(f["unknown"] for f in secret), missing
    assert "never reads Secret" in str(secret[0]["message"])

    cluster.create(namespace, configmap("web-config", namespace, OTHER="x"))
    present = _rules(cluster.kai("review", "--cluster", "-n", namespace, "-o", "json"))
    assert "KAI-REF-001" not in present, present
    # the live ConfigMap exists but lacks the key the env var takes from it
    keys = present.get("KAI-REF-003", [])
    assert len(keys) == 1 and "no key LEVEL" in str(keys[0]["message"]), present

    # the same Deployment reviewed as a file, without the cluster: kai cannot see the ConfigMap
    f = tmp_path / "web.yaml"
    f.write_text(web)
    offline = _rules(cluster.kai("review", str(f), "-o", "json"))
    assert "KAI-REF-001" in offline and not offline["KAI-REF-001"][0]["unknown"], offline

"""Every per-object CEL rule, enabled by default or not, exports a ValidatingAdmissionPolicy that
a real kube-apiserver accepts (CEL type-checking, cost estimation, the regular expressions).

The RES/PRB rules were once rejected (cel.bind inside a comprehension); the rules of issue 12
(ephemeral storage, ConfigMap credentials by content, ports, PDB eviction policy) are new.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

from kai.policy.catalog import load_rules
from kai.policy.export import export_vap

from .conftest import Cluster


def test_every_cel_rule_exports_a_policy_the_api_server_accepts(
    cluster: Cluster, tmp_path: Path
) -> None:
    rules = [replace(r, enabled=True) for r in load_rules() if r.cel is not None]
    objects, skipped = export_vap(rules)
    assert [r.id for r in skipped] == []
    path = tmp_path / "vap-all.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    r = cluster.kubectl("apply", "--dry-run=server", "-f", str(path))
    assert r.code == 0, r.err[-3000:]
    assert r.out.count("(server dry run)") == len(objects) == 2 * len(rules), r.out[-2000:]

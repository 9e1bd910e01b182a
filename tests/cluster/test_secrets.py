"""Secret values against a real server: `kai apply`'s diff masks them as `kubectl diff` does, and
`kai mcp`'s dry_run (the diff as JSON) too (issue 11, item 2, Secrets)."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import anyio

from .conftest import Cluster
from .util import writes

OLD = "old-pl4nted-secret-value"
NEW = "new-pl4nted-secret-value"
KEEP = "kept-pl4nted-user-name"


def _secret(namespace: str, password: str, extra: str = "") -> str:
    return f"""\
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: {namespace}
type: Opaque
stringData:
  password: {password}
  user: {KEEP}
{extra}"""


def _values() -> list[str]:
    plain = [OLD, NEW, KEEP]
    return plain + [base64.b64encode(v.encode()).decode() for v in plain]


def test_apply_diff_of_a_changed_secret_shows_no_value(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    path = tmp_path / "secret.yaml"
    path.write_text(_secret(namespace, OLD))
    # Created by kubectl's client-side apply: the live object also carries the
    # last-applied-configuration annotation, a second copy of the values.
    created = cluster.kubectl("apply", "-f", str(path))
    assert created.code == 0, created
    path.write_text(_secret(namespace, NEW, "  token: added-pl4nted-token\n"))
    mark = cluster.audit_mark()
    r = cluster.kai("apply", str(path))  # no terminal: shows the diff, applies nothing
    assert r.code == 2, r
    shown = r.out + r.err
    assert "update Secret" in shown, r
    assert [v for v in [*_values(), "added-pl4nted-token"] if v in shown] == [], r
    assert "password: '*** (before)'" in shown and "password: '*** (after)'" in shown, r
    assert "+  token: '***'" in shown and "  user: '***'" in shown, r
    assert writes(cluster.audit_events(mark, user="admin")) == []
    # kubectl diff, the reference, masks the same Secret the same way.
    ref = cluster.kubectl("diff", "-f", str(path))
    assert ref.code == 1 and "*** (before)" in ref.out and OLD not in ref.out, ref


def test_mcp_dry_run_diff_of_a_secret_shows_no_value(cluster: Cluster, namespace: str) -> None:
    from mcp import Client, StdioServerParameters

    created = cluster.kai("apply", "--yes", "--no-watch", "-", stdin=_secret(namespace, OLD))
    assert created.code == 0, created
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "kai", "mcp"], env=cluster.env(), cwd=str(cluster.home)
    )

    async def main() -> Any:
        async with Client(params) as client:
            return await client.call_tool("dry_run", {"yaml": _secret(namespace, NEW)})

    result = anyio.run(main)
    assert not result.is_error, result.content
    text = result.content[0].text
    data = json.loads(text)
    assert [c["action"] for c in data["changes"]] == ["update"], data
    assert "*** (before)" in data["changes"][0]["diff"], data
    assert [v for v in _values() if v in text] == [], text

"""kai fix never loses data: atomic writes, the file's own layout kept, JSON written back as JSON."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import yaml

from kai.manifests import load_text

POD = """apiVersion: v1
kind: Pod
metadata:
  name: p
  labels: {app: p}
spec:
  containers:
    - name: c
      image: nginx:1.25
"""
HEADER = "# Copyright 2026 Example Corp.\n# SPDX-License-Identifier: Apache-2.0\n\n---\n"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\n"


def _pod_sc(text: str, file: str = "x.yaml") -> dict[str, object]:
    pods = [m.obj for m in load_text(text, file)[0] if m.ref.kind == "Pod"]
    assert len(pods) == 1
    sc = pods[0]["spec"]["securityContext"]
    assert isinstance(sc, dict)
    return sc


def test_licence_header_before_leading_separator_is_kept(kai, tmp_path: Path) -> None:
    f = tmp_path / "pod.yaml"
    f.write_text(HEADER + POD, encoding="utf-8")
    r = kai("fix", str(f), "--in-place")
    assert r.code in (0, 1), r.err
    text = f.read_text(encoding="utf-8")
    assert text.startswith(HEADER), text[:200]
    assert _pod_sc(text)["runAsNonRoot"] is True


def test_end_markers_are_kept(kai, tmp_path: Path) -> None:
    f = tmp_path / "two.yaml"
    f.write_text(POD + "...\n---\n" + CONFIGMAP + "...\n", encoding="utf-8")
    kai("fix", str(f), "--in-place")
    text = f.read_text(encoding="utf-8")
    assert text.rstrip().endswith("\n...")
    assert "...\n---\n" in text
    assert [d["kind"] for d in yaml.safe_load_all(text) if d][:2] == ["Pod", "ConfigMap"]
    assert _pod_sc(text)["runAsNonRoot"] is True


def test_crlf_line_endings_and_bom_are_kept(kai, tmp_path: Path) -> None:
    f = tmp_path / "crlf.yaml"
    f.write_bytes(b"\xef\xbb\xbf" + ("# keep me\n" + POD).replace("\n", "\r\n").encode())
    kai("fix", str(f), "--in-place")
    raw = f.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf# keep me\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")  # every line ends CRLF, none bare LF
    assert b"runAsNonRoot: true\r\n" in raw


def test_json_manifest_is_fixed_and_written_back_as_json(kai, tmp_path: Path) -> None:
    f = tmp_path / "pod.json"
    pod = yaml.safe_load(POD)
    pod["metadata"]["labels"] = {}  # no labels: no NetworkPolicy, the object stays one object
    f.write_text(json.dumps(pod, indent=4) + "\n", encoding="utf-8")
    r = kai("fix", str(f), "--in-place")
    assert r.code in (0, 1), r.err
    text = f.read_text(encoding="utf-8")
    fixed = json.loads(text)  # JSON, not YAML
    assert fixed["kind"] == "Pod" and fixed["spec"]["securityContext"]["runAsNonRoot"] is True
    assert fixed["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert text.startswith('{\n    "apiVersion"')  # the file's own indent
    again = kai("fix", str(f), "--check")
    assert again.code == 0, again.err  # fixing twice equals fixing once


def test_json_that_gains_objects_becomes_a_list(kai, tmp_path: Path) -> None:
    f = tmp_path / "deploy.json"
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]},
            },
        },
    }
    f.write_text(json.dumps(deploy), encoding="utf-8")
    kai("fix", str(f), "--in-place")
    fixed = json.loads(f.read_text(encoding="utf-8"))
    assert fixed["kind"] == "List"
    kinds = [i["kind"] for i in fixed["items"]]
    assert kinds[0] == "Deployment" and "PodDisruptionBudget" in kinds
    assert [m.ref.kind for m in load_text(f.read_text(), str(f))[0]] == kinds


def test_json_is_fixed_as_data_without_a_yaml_round_trip(
    kai, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSON file has no comments to keep: its documents are fixed as data (a ruamel round
    trip of 60,000 Deployments took over 120 s)."""
    import kai.policy.fix as fix

    def no_round_trip(text: str) -> None:
        raise AssertionError("a JSON file went through the YAML round trip")

    monkeypatch.setattr(fix, "_yaml", no_round_trip)
    pod = yaml.safe_load(POD)
    pod["metadata"]["labels"] = {}
    items = [{**pod, "metadata": {"name": f"p{i}", "labels": {}}} for i in range(3)]
    f = tmp_path / "pods.json"
    f.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=1))
    r = kai("fix", str(f), "--in-place")
    fixed = json.loads(f.read_text(encoding="utf-8"))
    assert fixed["kind"] == "List" and [i["metadata"]["name"] for i in fixed["items"]][:3] == [
        "p0",
        "p1",
        "p2",
    ]
    assert all(i["spec"]["securityContext"]["runAsNonRoot"] is True for i in fixed["items"][:3])
    assert r.code in (0, 1), r.err


def test_malformed_json_error_points_into_the_users_file(kai, tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text('{\n  "kind": "Pod",\n  "metadata": {"name": "p",}\n}\n', encoding="utf-8")
    r = kai("fix", str(f), "--in-place")
    assert r.code == 2
    assert f"{f}:3:" in r.err and "invalid JSON" in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_chart_folder_is_refused_with_the_reason(kai, tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    tpl = chart / "templates" / "pod.yaml"
    tpl.write_text(POD)
    for target in (chart, tpl, tmp_path):
        r = kai("fix", str(target), "--in-place")
        assert r.code == 2, (target, r.err)
        assert "kai fix does not edit Helm templates" in r.err and "source manifests" in r.err
    assert tpl.read_text() == POD


def test_still_failing_exits_1_and_says_what(kai, tmp_path: Path) -> None:
    f = tmp_path / "root.yaml"
    text = POD.replace(
        "      image: nginx:1.25\n",
        "      image: nginx:1.25\n      securityContext: {runAsUser: 0}\n",
    )
    f.write_text(text)
    r = kai("fix", str(f), "--in-place")
    assert r.code == 1
    assert "still failing:" in r.err and "KAI-SEC-001 Pod/p" in r.err


def test_json_still_failing_names_the_files_own_line(kai, tmp_path: Path) -> None:
    """A JSON List fixed as data: what still fails is reported at line 1, where kai review
    places a JSON file's objects (not at the document's index inside the List)."""
    pod = yaml.safe_load(POD)
    pod["metadata"]["labels"] = {}
    ok = {**pod, "metadata": {"name": "ok", "labels": {}}}
    root = yaml.safe_load(json.dumps(pod))
    root["metadata"] = {"name": "root", "labels": {}}
    root["spec"]["containers"][0]["securityContext"] = {"runAsUser": 0}
    f = tmp_path / "pods.json"
    f.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [ok, ok, root]}))
    r = kai("fix", str(f), "--in-place")
    assert r.code == 1, r.err
    assert "still failing:" in r.err and "KAI-SEC-001 Pod/root" in r.err
    f.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [ok, ok, root]}))
    from kai.config import Config
    from kai.models import Severity
    from kai.pipeline import rules_for
    from kai.policy.fixfile import fix_files

    (result,) = fix_files([str(f)], rules_for(Config()), fail_on=Severity.ERROR)
    review = kai("review", str(f), "-o", "json")
    assert {x["line"] for x in review.json()["findings"]} == {1}
    assert result.remaining and {x.line for x in result.remaining} == {1}


def test_exit_0_when_nothing_at_fail_on_remains(kai, tmp_path: Path) -> None:
    f = tmp_path / "pod.yaml"
    f.write_text(
        POD.replace(
            "image: nginx:1.25\n", "image: nginx:1.25\n      ports: [{containerPort: 80}]\n"
        )
    )
    r = kai("fix", str(f), "--in-place")
    assert r.code == 0, r.err
    assert "still failing" not in r.err
    assert _pod_sc(f.read_text())["runAsNonRoot"] is True


def test_check_writes_nothing_and_exits_1_when_a_fix_would_change(kai, tmp_path: Path) -> None:
    f = tmp_path / "pod.yaml"
    f.write_text(POD)
    before = os.stat(f)
    r = kai("fix", str(f), "--check")
    assert r.code == 1 and f"would fix {f}" in r.err
    assert f.read_text() == POD and os.stat(f).st_mtime_ns == before.st_mtime_ns
    kai("fix", str(f), "--in-place")
    fixed = f.read_text()
    r = kai("fix", str(f), "--check")
    assert r.code == 0 and "0 of 1 file would be fixed" in r.err
    assert f.read_text() == fixed


def test_mode_is_kept_and_a_symlink_stays_a_symlink(kai, tmp_path: Path) -> None:
    real = tmp_path / "real.yaml"
    real.write_text(POD)
    real.chmod(0o640)
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    kai("fix", str(link), "--in-place")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert "runAsNonRoot" in real.read_text()
    assert (real.stat().st_mode & 0o777) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir() if ".kai-tmp" in p.name) == []


@pytest.mark.parametrize("where", ["in-place", "out", "review-fix"])
def test_full_disk_leaves_the_original_intact(
    kai, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    f = tmp_path / "pod.yaml"
    f.write_text(HEADER + POD)
    out = tmp_path / "out.yaml"
    out.write_text("previous output\n")
    real_write = os.write
    calls = {"n": 0}

    def full_disk(fd: int, data: bytes | memoryview) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data)[:10])  # a short write, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("kai.policy.fixfile.os.write", full_disk)
    args = {
        "in-place": ("fix", str(f), "--in-place"),
        "out": ("fix", str(f), "--out", str(out)),
        "review-fix": ("review", str(f), "--fix"),
    }[where]
    r = kai(*args)
    assert calls["n"] == 2  # the write really was attempted and failed mid-way
    assert r.code == 2
    assert "cannot write: no space left on device; the file is unchanged" in r.err
    assert r.err.strip().splitlines()[-1].startswith("error:")
    assert "Traceback" not in r.err
    assert f.read_text() == HEADER + POD
    assert out.read_text() == "previous output\n"
    assert [p.name for p in tmp_path.iterdir() if ".kai-tmp" in p.name] == []


def test_write_atomic_permission_denied_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kai.errors import InputError
    from kai.policy.fixfile import write_atomic

    f = tmp_path / "x.yaml"
    f.write_text("a: 1\n")

    def denied(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("kai.policy.fixfile.tempfile.mkstemp", denied)
    with pytest.raises(
        InputError, match=r"x.yaml: cannot write: Permission denied; the file is unchanged$"
    ):
        write_atomic(f, "a: 2\n")
    assert f.read_text() == "a: 1\n"


def test_owner_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kai.policy.fixfile import write_atomic

    f = tmp_path / "owned.yaml"
    f.write_text("a: 1\n")
    calls: list[tuple[int, int]] = []
    if os.getuid() == 0:
        os.chown(f, 4321, 4322)
    else:  # only root may give a file away: check kai asks for the original owner
        real = os.stat(f)
        fake = os.stat_result((real.st_mode, *real[1:4], 4321, 4322, *real[6:]))
        monkeypatch.setattr("kai.policy.fixfile.Path.stat", lambda self: fake)
        monkeypatch.setattr("kai.policy.fixfile.os.fchown", lambda fd, u, g: calls.append((u, g)))
    write_atomic(f, "a: 2\n")
    assert f.read_text() == "a: 2\n"
    if os.getuid() == 0:
        assert (f.stat().st_uid, f.stat().st_gid) == (4321, 4322)
    else:
        assert calls == [(4321, 4322)]


ODD_CONFIGMAP = """\
# the team's settings, formatted by hand
apiVersion:   v1
kind: ConfigMap
metadata: { name: settings }
data:
  list:    "a,b"     # aligned
  text: |
    ---
    not a separator: indented inside a block scalar
"""


def test_only_the_documents_a_fix_changes_are_rewritten(kai, tmp_path: Path) -> None:
    """A round trip would respace the ConfigMap ruamel's way; it needs no fix, so it stays byte
    for byte, separators and their comments included, while the Pod around it is fixed."""
    f = tmp_path / "mixed.yaml"
    text = (
        f"--- # first\n{POD}--- # second\n{ODD_CONFIGMAP}---\n{POD.replace('name: p', 'name: q')}"
    )
    f.write_text(text)
    r = kai("fix", str(f), "--in-place")
    assert r.code in (0, 1), r.err
    fixed = f.read_text()
    assert f"--- # second\n{ODD_CONFIGMAP}---\n" in fixed
    assert fixed.startswith("--- # first\n")
    objects = {m.ref.display(): m.obj for m in load_text(fixed, "mixed.yaml")[0]}
    assert objects["ConfigMap/settings"]["data"]["text"].startswith("---\nnot a separator")
    for name in ("Pod/p", "Pod/q"):
        assert objects[name]["spec"]["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("form", ["yaml", "json"])
def test_a_file_past_the_edit_bound_is_refused_up_front_and_kept(
    kai, tmp_path: Path, form: str
) -> None:
    f = tmp_path / f"many.{form}"
    pods = [POD.replace("name: p", f"name: p{i}") for i in range(30)]
    if form == "yaml":
        text = "".join(f"---\n{pod}" for pod in pods)
    else:
        text = json.dumps([yaml.safe_load(pod) for pod in pods], indent=2)
    f.write_text(text)
    r = kai("fix", str(f), "--in-place", "--edit-limit", "60")
    assert r.code == 2
    (line,) = r.err.strip().splitlines()
    assert "refused: 30 documents" in line and "--edit-limit" in line and " 60 " in line
    assert f.read_text() == text
    r = kai("fix", str(f), "--in-place", "--edit-limit", "2000")
    assert r.code in (0, 1), r.err
    assert f.read_text() != text


def test_each_file_has_its_own_edit_bound(tmp_path: Path) -> None:
    """A big folder takes as long as its files; only a file too big to edit is refused."""
    from kai.config import Config
    from kai.errors import InputError
    from kai.pipeline import rules_for
    from kai.policy.fixfile import fix_files

    files = []  # a Pod here is 10 nodes (kai.policy.fix._nodes)
    for i in range(3):
        files.append(tmp_path / f"p{i}.yaml")
        files[-1].write_text(POD)
    fixed = fix_files([str(f) for f in files], rules_for(Config()), edit_limit=15)
    assert [r.changed for r in fixed] == [True, True, True]
    (tmp_path / "p1.yaml").write_text(POD + "---\n" + POD.replace("name: p", "name: q"))
    with pytest.raises(InputError, match=r"p1\.yaml: refused: 2 documents"):
        fix_files([str(f) for f in files], rules_for(Config()), edit_limit=15)


def test_later_passes_stop_at_twice_the_bound_and_keep_what_is_fixed() -> None:
    from kai.errors import InputError
    from kai.policy.fix import EditBudget

    budget = EditBudget(limit=100)
    assert budget.spend("f", 1, 90, first=True)
    assert budget.spend("f", 1, 100, first=False)  # kai's own additions: up to twice
    assert not budget.spend("f", 1, 20, first=False)
    assert budget.spent == 190
    with pytest.raises(InputError, match="refused: 2 documents"):
        EditBudget(limit=100).spend("f", 2, 101, first=True)


def test_the_help_names_the_default_edit_bound(kai) -> None:
    from kai.policy.fix import MAX_EDIT_NODES

    assert f"{MAX_EDIT_NODES:,}" in " ".join(kai("fix", "--help").out.split())

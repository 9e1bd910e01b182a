"""Hostile input through every command and every MCP tool: never a crash, exit 70, traceback or
write to the input; a one-line error (exit 2) or a clean result (exit 0/1).

The corpus is tests/data/hostile/ (recursive aliases, odd keys, tags, deep nesting, duplicate
keys, invalid UTF-8, wrong types in every field, names with escapes). Big sizes are measured by
benchmarks/hostile.py, not here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CORPUS = ROOT / "tests" / "data" / "hostile"
FILES = sorted(p.name for p in CORPUS.iterdir())
# Terminal escaping of names taken from input is issue 13 item 4 (another branch): until it
# lands, the control-character check skips the file that exists to test it.
ESCAPES: set[str] = set()  # every output escapes control characters (render.console)
COMMANDS = {
    "review": ["review"],
    "validate": ["validate"],
    "fix": ["fix", "--dry-run"],
    "explain": ["explain", "--offline"],
    "critique": ["critique", "--offline", "--answers", "{answers}"],
    "package": ["package", "helm", "--name", "chart", "-o", "{out}"],
}
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean(code: int, out: str, err: str, check_control: bool = True) -> None:
    assert code in (0, 1, 2), (code, err[-500:])
    assert "Traceback" not in out + err and "internal error" not in err, err[-500:]
    if check_control:
        assert not RAW_CONTROL.search(out + err), (out + err)[-300:]
    if code == 2:
        lines = [x for x in err.strip().splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), err


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_survives_the_corpus(kai, tmp_path: Path, command: str) -> None:
    answers = tmp_path / "answers.txt"
    answers.write_text("the image is not pinned\n")
    for name in FILES:
        src = tmp_path / name
        original = (CORPUS / name).read_bytes()
        src.write_bytes(original)
        argv = [
            a.format(answers=answers, out=tmp_path / f"chart-{name}") for a in COMMANDS[command]
        ]
        r = kai(*argv, str(src))
        try:
            _clean(r.code, r.out, r.err, check_control=name not in ESCAPES)
        except AssertionError as e:
            raise AssertionError(f"{command} {name}: {e}") from None
        assert src.read_bytes() == original, f"{command} wrote to {name}"


EXPECTED = {
    "alias-self-data.yaml": r"alias-self-data.yaml:5: refused: a YAML alias refers to a node that contains it",
    "alias-self-metadata.yaml": r":3: refused: a YAML alias refers to a node that contains it",
    "key-complex.yaml": r":6: refused: a mapping key is a list",
    "keys-bool-null.yaml": r":5: refused: a mapping key is null",
    "binary.yaml": r":6: refused: the !!binary tag",
    "deep.json": r"refused: nested 129 levels deep, over the limit of 128",
    "deep-block.yaml": r"refused: nested 129 levels deep, over the limit of 128",
    "duplicate-keys.yaml": r":7: duplicate key 'metadata' \(first at line 3, again at line 7\)",
    "concatenated.yaml": r":6: duplicate key 'apiVersion' \(first at line 1, again at line 6\)",
    "duplicate.json": r"duplicate key 'metadata' \(twice on line 1, columns 43 and 70\)",
    "invalid-utf8.yaml": r"not UTF-8 text \(byte 50",
    "tags.yaml": r":4: refused: the !!python/name:os.system tag",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_review_refuses_with_the_reason_and_the_line(kai, name: str) -> None:
    r = kai("review", str(CORPUS / name))
    assert r.code == 2
    assert re.search(EXPECTED[name], r.err), r.err


def test_number_and_boolean_keys_become_strings_like_kubernetes() -> None:
    from kai.manifests import load_text

    (m,), _ = load_text((CORPUS / "keys-int.yaml").read_text(), "k.yaml")
    assert m.obj["data"] == {"1": "one", "2.5": "two"}
    (m,), _ = load_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, labels: {true: false}}\n", "b.yaml"
    )
    assert m.obj["metadata"]["labels"] == {"true": False}


def test_lone_surrogates_become_the_replacement_character() -> None:
    from kai.manifests import load_text

    (m,), _ = load_text((CORPUS / "surrogate.json").read_text(), "s.json")
    assert m.obj["metadata"]["name"] == "s\ufffd"
    assert m.obj["data"] == {"k\ufffd": "\ufffd"}


def test_anchors_that_do_not_recurse_still_load() -> None:
    from kai.manifests import load_text

    (m,), _ = load_text((CORPUS / "anchors-ok.yaml").read_text(), "a.yaml")
    assert m.obj["metadata"]["annotations"] == {"app": "a"}


def _kai(
    *args: str, stdin: int | bytes | None = None, **kw: Any
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "KAI_NO_CACHE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "kai", *args],
        capture_output=stdin is None or isinstance(stdin, bytes),
        input=stdin if isinstance(stdin, bytes) else None,
        timeout=120,
        env=env,
        **kw,
    )


def test_closed_and_binary_stdin_are_one_line_errors(tmp_path: Path) -> None:
    closed = subprocess.run(
        f"{sys.executable} -m kai review - <&-",
        shell=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"},
        timeout=120,
    )
    assert closed.returncode == 2, closed.stderr
    assert b"standard input" in closed.stderr and b"Traceback" not in closed.stderr
    binary = _kai("review", "-", stdin=bytes(range(256)))
    assert binary.returncode == 2 and b"not UTF-8" in binary.stderr, binary.stderr


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/urandom", "fifo"])
def test_non_regular_files_are_refused_without_reading(kai, tmp_path: Path, path: str) -> None:
    if path == "fifo":
        path = str(tmp_path / "pipe.yaml")
        os.mkfifo(path)  # nothing ever writes to it: reading it would hang
    r = kai("review", path)
    assert r.code == 2 and "not a regular file" in r.err, r.err


def test_reading_stops_at_the_limit_plus_one_byte(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import kai.manifests as manifests
    from kai.errors import InputError

    monkeypatch.setattr(manifests, "MAX_INPUT_BYTES", 10)
    f = tmp_path / "a.yaml"
    f.write_text("a: 1\n")
    assert manifests.read_file(f) == "a: 1\n"
    f.write_text("a: 12345678\n")
    with pytest.raises(InputError, match="over the 10-byte input limit"):
        manifests.read_file(f)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('defaults:\n  runAsUser: "root"\n', "defaults.runAsUser: Input should be a valid integer"),
        ("defaults:\n  runAsUser: 0\n", "defaults.runAsUser: 0 is root"),
        ("defaults:\n  resources:\n    requests: {cpu: -1}\n", "requests.cpu: -1 is negative"),
        ("namspace: agent\n", "namspace: unknown key"),
        ("review:\n  disabled: [KAI-SEC-001]\n", "review.disabled: unknown key"),
        ("namespace: a\nnamespace: b\n", "duplicate key 'namespace'"),
        ("a: &a [*a]\n", "recursive structure"),
    ],
)
def test_kai_yaml_is_validated_and_names_the_wrong_key(
    kai, tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / ".kai.yaml").write_text(text)
    (tmp_path / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    r = kai("fix", "--dry-run", str(tmp_path / "cm.yaml"))
    assert r.code == 2 and message in r.err, r.err


def test_a_home_kai_cannot_read_is_no_user_config(
    kai, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(
        Path, "home", classmethod(lambda cls: (_ for _ in ()).throw(RuntimeError("no home")))
    )
    from kai.config import load_config, user_config_path

    assert user_config_path() is None
    assert load_config().source is None


# ---------- every MCP tool ----------

MCP_TOOLS = ("review", "validate", "fix", "explain", "dry_run")


def test_every_mcp_tool_survives_the_corpus(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mcp import Client
    from mcp.types import TextContent

    from kai.mcp_server import build_server

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / ".config"))
    monkeypatch.setenv("KAI_NO_CACHE", "1")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    texts = {n: (CORPUS / n).read_bytes().decode("utf-8", "replace") for n in FILES}
    texts["lone-surrogate"] = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: "a\ud800"}\n'

    async def main() -> list[str]:
        problems = []
        async with Client(build_server()) as client:
            for name, text in texts.items():
                for tool in MCP_TOOLS:
                    result = await client.call_tool(tool, {"yaml": text})
                    body = ""
                    if result.content:
                        assert isinstance(result.content[0], TextContent), result.content[0]
                        body = result.content[0].text
                    if "Traceback" in body or "internal error" in body:
                        problems.append(f"{tool} {name}: {body[:200]}")
            listed = await client.list_tools()  # the server is still alive
            assert listed.tools
        return problems

    assert anyio.run(main) == []


# ---------- property-based ----------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)
_FIELDS = (
    ("metadata",),
    ("metadata", "name"),
    ("metadata", "labels"),
    ("spec",),
    ("spec", "selector"),
    ("spec", "replicas"),
    ("spec", "template"),
    ("spec", "template", "spec", "containers"),
    ("spec", "template", "spec", "containers", 0, "image"),
    ("spec", "template", "spec", "containers", 0, "securityContext"),
    ("spec", "template", "spec", "containers", 0, "resources"),
    ("spec", "template", "spec", "securityContext"),
    ("spec", "rules"),
    ("spec", "jobTemplate"),
    ("spec", "scaleTargetRef"),
)


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"app": "d"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
            },
        },
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["Deployment", "CronJob", "Ingress", "HorizontalPodAutoscaler", "Pod"]),
    field=st.sampled_from(_FIELDS),
    value=_values,
)
def test_wrong_types_in_any_field_never_crash_the_stages(
    kind: str, field: tuple[str | int, ...], value: object
) -> None:
    """Load, evaluate, validate, explain and package an object with one field replaced by anything."""
    import json

    from kai.errors import KaiError
    from kai.helm.chart import build_chart
    from kai.learn.explain import evaluate_all
    from kai.learn.explain import explain as walk
    from kai.manifests import load_text
    from kai.pipeline import SchemaOptions, validate
    from kai.policy.catalog import load_rules

    obj = _deployment()
    obj["kind"] = kind
    target: Any = obj
    for key in field[:-1]:
        nxt = target.get(key) if isinstance(target, dict) else target[key]
        if not isinstance(nxt, (dict, list)):
            break
        target = nxt
    else:
        key = field[-1]
        if isinstance(target, dict):
            target[key] = value
        elif isinstance(target, list) and target:
            assert isinstance(key, int), field  # a list is indexed by position
            target[key] = value
    text = json.dumps(obj, allow_nan=True)
    rules = load_rules([])
    try:
        manifests, notes = load_text(text, "obj.json")
        report = evaluate_all(manifests, notes, rules, "default", None)
        walk(manifests, report, rules, None)
        validate(manifests, rules, SchemaOptions())
        if manifests:
            build_chart([m.obj for m in manifests], "chart")
    except KaiError:
        pass  # a one-line refusal is fine; anything else fails the test


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#\n ,?%@`01~\t")), max_size=80))
def test_random_yaml_text_loads_or_is_refused(text: str) -> None:
    from kai.errors import KaiError
    from kai.manifests import load_text

    try:
        load_text(text, "random.yaml")
    except KaiError as e:
        assert "\n" not in e.message

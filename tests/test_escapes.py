"""Nothing from input escapes to the terminal (issue 13, item 4; kubectl's CVE-2021-25743).

Names, images, messages and paths are shown with their control characters escaped (\\x1b) in every
human-facing mode, rich markup in them is printed literally, and JSON / YAML / SARIF carry them as
escapes of the same value.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from kai import render

ESC = "\x1b[2J\x1b[31m\x1b]0;title\x07"
CSI8 = "\x9b31m"  # an 8-bit CSI (C1)
BIDI = "\u202egnp.exe"
MARKUP = "[red]x[/red][link=http://evil.example]y[/link]"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

# YAML's own escapes (\e, \x9b, \u202e) in double quotes: valid YAML, hostile values.
POD = r"""apiVersion: v1
kind: Pod
metadata:
  name: "p\e[2J\e[31m\e]0;title\a"
  labels: {app: "a"}
spec:
  containers:
    - name: "c\x9b31m[red]x[/red][link=http://evil.example]y[/link]"
      image: "nginx:latest\u202egnp.exe"
"""
assert yaml.safe_load(POD)["metadata"]["name"] == f"p{ESC}"
assert yaml.safe_load(POD)["spec"]["containers"][0]["name"] == f"c{CSI8}{MARKUP}"


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    f = tmp_path / "pod.yaml"
    f.write_text(POD, encoding="utf-8")
    return f


def _no_raw(text: str) -> None:
    found = RAW.search(text)
    assert found is None, (
        f"raw {found.group()!r} in output: {text[max(0, found.start() - 40) : found.end() + 40]!r}"
    )


def test_sanitize_escapes_controls_keeps_newline_and_tab() -> None:
    assert render.sanitize("a\tb\nc") == "a\tb\nc"
    assert render.sanitize("\x1b[2J") == "\\x1b[2J"
    assert render.sanitize("\x9b\x7f\x00\r") == "\\x9b\\x7f\\x00\\x0d"
    assert render.sanitize("\u202e\u2066") == "\\u202e\\u2066"
    assert render.sanitize("héllo ✓") == "héllo ✓"


def test_review_table_escapes_names_and_prints_markup_literally(kai, hostile: Path) -> None:
    r = kai("review", str(hostile))
    assert r.code == 1
    _no_raw(r.out)
    _no_raw(r.err)
    assert "\\x1b[2J" in r.out  # shown, not sent
    assert "[red]x[/red]" in r.out  # the container name's markup is text, not a style


@pytest.mark.parametrize("mode", ["json", "sarif"])
def test_json_modes_carry_the_same_value_as_escapes(kai, hostile: Path, mode: str) -> None:
    r = kai("review", str(hostile), "-o", mode)
    _no_raw(r.out)
    assert "\\u001b[2J" in r.out
    data = json.loads(r.out)
    text = json.dumps(data, ensure_ascii=False)
    assert (
        ESC.replace("\x07", "\\u0007").replace("\x1b", "\\u001b") in text
    )  # the value round-trips


def test_review_json_round_trips_the_exact_name(kai, hostile: Path) -> None:
    data = json.loads(kai("review", str(hostile), "-o", "json").out)
    names = {f["object"]["name"] for f in data["findings"]}
    assert f"p{ESC}" in names


def test_yaml_mode_escapes_controls_and_bidi(kai, hostile: Path) -> None:
    r = kai("review", str(hostile), "-o", "yaml")
    _no_raw(r.out)
    data = yaml.safe_load(r.out)
    assert f"p{ESC}" in {f["object"]["name"] for f in data["findings"]}
    assert any(f"c{CSI8}{MARKUP}" in f["message"] for f in data["findings"])


def test_fix_diff_and_messages_are_escaped(kai, hostile: Path) -> None:
    r = kai("fix", str(hostile), "--dry-run")
    _no_raw(r.out)
    _no_raw(r.err)
    assert "fixed" in r.out and "\\x1b" in r.out


def test_validate_and_explain_are_escaped(kai, hostile: Path) -> None:
    for args in (("validate", str(hostile)), ("explain", str(hostile), "--offline")):
        r = kai(*args)
        assert r.code in (0, 1), (args, r.err)
        _no_raw(r.out)
        _no_raw(r.err)


def test_errors_on_stderr_are_escaped(kai, tmp_path: Path) -> None:
    r = kai("review", str(tmp_path / f"missing{ESC}{MARKUP}.yaml"))
    assert r.code == 2
    _no_raw(r.err)
    assert "\\x1b[2J" in r.err and "[red]x[/red]" in r.err
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"a: [\n# {BIDI}\n", encoding="utf-8")
    r = kai("review", str(bad))
    assert r.code == 2
    _no_raw(r.err)


def test_the_console_escapes_renderables_too() -> None:
    import io

    from rich.table import Table
    from rich.text import Text

    buf = io.StringIO()
    c = render.console(file=buf, force_terminal=True, width=200)
    table = Table("name")
    table.add_row(Text(f"p{ESC}{CSI8}{BIDI}"))
    c.print(table)
    c.print("[bold]kai's own style[/]")
    out = buf.getvalue()
    assert "\\x1b[2J" in out and "\\x9b31m" in out and "\\u202e" in out
    assert "\x1b[1m" in out  # kai's own bold is still rendered as a style
    assert "\x1b[2J" not in out and "\x9b" not in out and "\u202e" not in out


def test_the_fast_paths_of_sanitize_and_one_line_change_nothing() -> None:
    """sanitize and _one_line skip their regex or split for printable text: every character up
    to U+3100 (controls, C1, bidi marks, every kind of space) alone and between letters, and
    spaces at the ends, give what the full definitions give."""
    from kai.render import _UNSAFE, _one_line, _visible, sanitize

    texts = [
        t for c in map(chr, range(0x3100)) for t in (c, f"a{c}b", f" {c}", f"{c} ", f"a{c}{c}b")
    ]
    texts += ["", " ", "  ", "a  b", "a b", "plain text", "ünïcode ok"]
    for text in texts:
        assert sanitize(text) == _UNSAFE.sub(_visible, text), repr(text)
        assert _one_line(text) == " ".join(text.split()), repr(text)

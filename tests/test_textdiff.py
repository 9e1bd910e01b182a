"""kai.textdiff: difflib's unified diff, anchored on unique lines for big texts, still a correct
patch (applying it to the old text gives the new one, hunk headers included)."""

from __future__ import annotations

import difflib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kai import textdiff

HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@$")


def apply(a: list[str], diff: list[str]) -> list[str]:
    """The new text from the old one and a unified diff; checks each hunk's header and context."""
    out: list[str] = []
    at = 0  # lines of `a` consumed
    k = 2 if diff else 0
    assert not diff or (diff[0].startswith("--- ") and diff[1].startswith("+++ "))
    while k < len(diff):
        m = HUNK.match(diff[k].rstrip("\n"))
        assert m, diff[k]
        start, length = int(m.group(1)), int(m.group(2) or 1)
        new_length = int(m.group(4) or 1)
        begin = start - 1 if length else start
        out += a[at:begin]
        at = begin
        k += 1
        old_seen = new_seen = 0
        while k < len(diff) and not diff[k].startswith("@@"):
            tag, line = diff[k][0], diff[k][1:]
            if tag in " -":
                assert a[at] == line, (at, a[at], line)
                at += 1
                old_seen += 1
            if tag in " +":
                out.append(line)
                new_seen += 1
            k += 1
        assert (old_seen, new_seen) == (length, new_length)
    return out + a[at:]


lines = st.lists(
    st.sampled_from(["}\n", "  - name: c\n", "a\n", "b\n"])
    | st.integers(0, 40).map(lambda i: f"name: d{i}\n"),
    max_size=60,
)


@given(lines, lines)
def test_the_anchored_diff_is_a_patch_from_old_to_new(a: list[str], b: list[str]) -> None:
    old = textdiff.ANCHOR_AT
    textdiff.ANCHOR_AT = 0  # the anchored matching on every size
    try:
        diff = list(textdiff.unified_diff(a, b, "a/f", "b/f"))
    finally:
        textdiff.ANCHOR_AT = old
    assert apply(a, diff) == b
    assert (not diff) == (a == b)


@given(lines, lines)
def test_small_texts_get_difflibs_own_diff(a: list[str], b: list[str]) -> None:
    assert list(textdiff.unified_diff(a, b, "x", "y")) == list(difflib.unified_diff(a, b, "x", "y"))


@pytest.mark.parametrize("count", [3000])
def test_a_big_fixed_file_diffs_as_a_patch(count: int) -> None:
    """The shape that made difflib quadratic: thousands of objects, each gaining lines."""
    a = [f"{s}\n" for i in range(count) for s in ("{", f' "name": "d{i}",', ' "spec": {}', "}")]
    b = [
        f"{s}\n"
        for i in range(count)
        for s in ("{", f' "name": "d{i}",', ' "spec": {', '  "runAsNonRoot": true', " }", "}")
    ]
    assert len(a) + len(b) > textdiff.ANCHOR_AT
    diff = list(textdiff.unified_diff(a, b, "a/f", "b/f"))
    assert apply(a, diff) == b
    assert sum(d.startswith("+") for d in diff[2:]) == 3 * count  # only what changed, per object


def test_names_repeated_in_added_objects_still_anchor() -> None:
    """kai fix adds a NetworkPolicy and a PDB named as their workload: the workload's name line
    is then no longer unique in the new text, and must still anchor (else the matching falls
    back to difflib over the whole file: 12 s for 200 Deployments)."""
    count = 1500
    a = [f"{s}\n" for i in range(count) for s in ("---", f"  name: d{i}", "  x: 1")]
    b = [f"{s}\n" for i in range(count) for s in ("---", f"  name: d{i}", "  x: 1", "  y: 2")]
    b += [f"{s}\n" for i in range(count) for s in ("---", "kind: PDB", f"  name: d{i}")]
    assert len(textdiff._anchors(a, b)) == count
    diff = list(textdiff.unified_diff(a, b, "a/f", "b/f"))
    assert apply(a, diff) == b

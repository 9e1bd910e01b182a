"""Unified diffs that stay fast on big files: difflib's, anchored on unique lines when large.

difflib.SequenceMatcher is quadratic on long texts with many repeated lines (`}` and `- name: c`
in a big JSON or YAML file): the diff of a fixed file of 2,000 Deployments took 21 s. Past a few
thousand lines the matching is anchored first on lines that occur once in each text (the
"patience" idea git's --patience uses), and difflib matches only the short gaps between anchors.
Below that size the output is difflib's, unchanged.
"""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Iterator, Sequence

ANCHOR_AT = 4000  # lines in both texts together from which the matching is anchored
MAX_REPEATS = 4  # a line of the old text anchors when the new one has it at most this often
BIG_GAP = 2000  # a gap between anchors this long is matched with difflib's own junk heuristic


class _AnchoredMatcher(difflib.SequenceMatcher[str]):
    def __init__(self, a: Sequence[str], b: Sequence[str]) -> None:
        super().__init__(None, a, b, autojunk=False)
        self._lines = (a, b)
        self._anchored: list[difflib.Match] | None = None

    def get_matching_blocks(self) -> list[difflib.Match]:
        if self._anchored is not None:
            return self._anchored
        a, b = self._lines
        blocks: list[tuple[int, int, int]] = []
        prev_i = prev_j = 0
        for i, j in [*_anchors(a, b), (len(a), len(b))]:
            big = (i - prev_i) + (j - prev_j) >= BIG_GAP  # few anchors: as difflib would
            gap = difflib.SequenceMatcher(None, a[prev_i:i], b[prev_j:j], autojunk=big)
            for gi, gj, size in gap.get_matching_blocks():
                if size:
                    blocks.append((prev_i + gi, prev_j + gj, size))
            if i < len(a):
                blocks.append((i, j, 1))
            prev_i, prev_j = i + 1, j + 1
        merged: list[tuple[int, int, int]] = []
        for i, j, size in blocks:  # adjacent blocks as one, as SequenceMatcher reports them
            if merged and merged[-1][0] + merged[-1][2] == i and merged[-1][1] + merged[-1][2] == j:
                merged[-1] = (merged[-1][0], merged[-1][1], merged[-1][2] + size)
            else:
                merged.append((i, j, size))
        self._anchored = [difflib.Match(*m) for m in merged]
        self._anchored.append(difflib.Match(len(a), len(b), 0))
        return self._anchored


def _anchors(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int]]:
    """Pairs (i, j) of equal lines, the longest run in the same order in both texts, among lines
    that occur once in `a` and at most MAX_REPEATS times in `b` (a fixed file repeats a name in
    the objects kai adds: NetworkPolicy and PDB of the same name as their workload)."""
    count_a: dict[str, int] = {}
    for line in a:
        count_a[line] = count_a.get(line, 0) + 1
    where_b: dict[str, list[int]] = {}
    for j, line in enumerate(b):
        if count_a.get(line) == 1:
            where_b.setdefault(line, []).append(j)
    pairs = [
        (i, j)
        for i, line in enumerate(a)
        if count_a[line] == 1 and 0 < len(where_b.get(line, ())) <= MAX_REPEATS
        for j in reversed(where_b[line])  # descending: at most one j of an i in a run
    ]
    # longest increasing subsequence of the j's (patience sorting), O(n log n)
    tails: list[int] = []  # the j ending the best run of each length
    tail_at: list[int] = []  # its index in pairs
    back: list[int] = [-1] * len(pairs)
    for k, (_, j) in enumerate(pairs):
        pos = bisect.bisect_left(tails, j)
        if pos == len(tails):
            tails.append(j)
            tail_at.append(k)
        else:
            tails[pos] = j
            tail_at[pos] = k
        back[k] = tail_at[pos - 1] if pos else -1
    out: list[tuple[int, int]] = []
    k = tail_at[-1] if tail_at else -1
    while k >= 0:
        out.append(pairs[k])
        k = back[k]
    return out[::-1]


def unified_diff(
    a: Sequence[str], b: Sequence[str], fromfile: str = "", tofile: str = "", n: int = 3
) -> Iterator[str]:
    """difflib.unified_diff(a, b, fromfile, tofile, n=n) (lines with their endings)."""
    if len(a) + len(b) < ANCHOR_AT:
        yield from difflib.unified_diff(a, b, fromfile, tofile, n=n)
        return
    started = False
    for group in _AnchoredMatcher(a, b).get_grouped_opcodes(n):
        if not started:
            started = True
            yield f"--- {fromfile}\n"
            yield f"+++ {tofile}\n"
        first, last = group[0], group[-1]
        yield f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@\n"
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                yield from (" " + line for line in a[i1:i2])
                continue
            if tag in ("replace", "delete"):
                yield from ("-" + line for line in a[i1:i2])
            if tag in ("replace", "insert"):
                yield from ("+" + line for line in b[j1:j2])


def _range(start: int, stop: int) -> str:
    """A hunk's range as difflib writes it (1-based start; a length of 1 left out)."""
    length = stop - start
    beginning = start + 1
    if length == 1:
        return f"{beginning}"
    if not length:
        beginning -= 1
    return f"{beginning},{length}"

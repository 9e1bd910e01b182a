"""The fix stage over files: what `kai fix` reads, how it writes, and what it refuses.

kai/policy/fix.py edits YAML text; this module keeps everything around that edit the user's:
a licence header before a leading `---`, `...` end markers, CRLF line endings, a byte-order
mark, JSON files (fixed as YAML, written back as JSON), and the file itself (written atomically:
a temporary file in the same directory, fsync, rename; mode and owner kept). A failed write leaves
the original untouched and is one line.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kai.errors import InputError
from kai.models import Rule, Severity

if TYPE_CHECKING:
    from kai.policy.engine import Engine
    from kai.policy.fix import EditBudget, FileFix

BOM = "\ufeff"
CHART_MESSAGE = (
    "{path}: is a Helm chart: kai fix does not edit Helm templates; fix the source manifests "
    "(and regenerate the chart with kai package helm), or review the rendered chart with kai review"
)


@dataclass(slots=True)
class Layout:
    """What the YAML round-trip would lose, recorded before the edit and put back after it."""

    newline: str = "\n"
    bom: bool = False
    header: str = ""  # comments (and directives) before a leading `---`, with that `---` line
    end_marker: bool = False  # the file ends with `...`
    marker_between: bool = False  # every `---` separator is preceded by `...`
    json: str | None = None  # "object", "array" or "list": the JSON shape to write back
    json_indent: int | None = 2
    json_list: dict[str, Any] | None = None  # the List wrapper (apiVersion, kind, metadata)


# ---------- refusing what kai fix cannot edit ----------


def _chart_root(path: Path, stop: Path | None = None) -> Path | None:
    """The chart directory holding `path` (itself included), if any."""
    for d in [path, *path.parents] if path.is_dir() else list(path.parents):
        if (d / "Chart.yaml").is_file():
            return d
        if stop is not None and d == stop:
            break
    return None


def refuse_charts(paths: Sequence[str]) -> None:
    """kai fix edits manifests, not Helm templates: say so for a chart (or a file inside one)."""
    for p in paths:
        if p == "-":
            continue
        path = Path(p)
        root = _chart_root(path.resolve())
        if root is not None:
            raise InputError(CHART_MESSAGE.format(path=p))
        if path.is_dir():
            for chart in sorted(path.rglob("Chart.yaml")):
                rel = chart.relative_to(path).parts
                if not any(part.startswith(".") for part in rel):
                    raise InputError(CHART_MESSAGE.format(path=chart.parent))


# ---------- layout: record, strip, restore ----------

_HEADER_LINE = re.compile(r"(?:\s*|#.*|%.*)")


def _split_header(text: str) -> tuple[str, str]:
    """(header, body): the comment lines before a leading `---`, that `---` included."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        stripped = line.rstrip("\n")
        if stripped == "---" or stripped.startswith("--- "):
            if i == 0 or not any(lines[j].strip() for j in range(i)):
                return "", text  # nothing but `---` (fix.py keeps a bare leading `---`)
            if stripped != "---":
                return "", text  # `--- {inline: doc}`: not a plain separator
            return "".join(lines[: i + 1]), "".join(lines[i + 1 :])
        if not _HEADER_LINE.fullmatch(stripped):
            return "", text
    return "", text


def _markers(body: str) -> tuple[bool, bool]:
    lines = [line.rstrip() for line in body.splitlines()]
    content = [line for line in lines if line]
    end = bool(content) and content[-1] == "..."
    separators = [i for i, line in enumerate(lines) if line == "---" and i > 0]
    between = bool(separators) and all(
        next((p for p in reversed(lines[:i]) if p), "") == "..." for i in separators
    )
    return end, between


def _restore_markers(text: str, layout: Layout) -> str:
    lines = text.splitlines(keepends=True)
    if layout.marker_between:
        out: list[str] = []
        for i, line in enumerate(lines):
            if line.rstrip() == "---" and i > 0:
                previous = next((p for p in reversed(out) if p.strip()), "")
                if previous.rstrip() != "...":
                    out.append("...\n")
            out.append(line)
        lines = out
    text = "".join(lines)
    if layout.end_marker and text.rstrip().splitlines()[-1:] != ["..."]:
        text = text.rstrip("\n") + "\n...\n"
    return text


def _json_docs(text: str, file: str, layout: Layout) -> list[Any] | None:
    """A JSON file's documents, its shape and indent kept in `layout` (None: flow-style YAML).
    Read as kai review reads it (kai.manifests.json_value): one parse."""
    from kai.manifests import json_value

    data = json_value(text, file)
    if data is None:
        return None
    indent = re.search(r"\n([ \t]+)\S", text)
    layout.json_indent = (
        len(indent.group(1)) if indent else (None if "\n" not in text.strip() else 2)
    )
    if isinstance(data, list):
        layout.json, docs = "array", data
    elif (
        isinstance(data, dict)
        and isinstance(data.get("items"), list)
        and str(data.get("kind", "")).endswith("List")
    ):
        layout.json = "list"
        layout.json_list = {k: v for k, v in data.items() if k != "items"}
        docs = data["items"]
    else:
        layout.json, docs = "object", [data]
    if not all(isinstance(d, dict) for d in docs):
        raise InputError(f"{file}: cannot fix: the JSON holds values that are not objects")
    return docs


def _json_text(docs: list[Any], layout: Layout) -> str:
    data: Any
    if layout.json == "object" and len(docs) == 1:
        data = docs[0]
    elif layout.json == "array":
        data = docs
    else:  # a List, or one object that gained a NetworkPolicy or PDB: kubectl takes a List
        data = {**(layout.json_list or {"apiVersion": "v1", "kind": "List"}), "items": docs}
    out = json.dumps(data, indent=layout.json_indent, ensure_ascii=False)
    return out + "\n"


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def fix_one(
    text: str,
    file: str,
    rules: Sequence[Rule],
    defaults: dict[str, Any],
    namespace: str,
    layout: Layout,
    fail_on: Severity | None = None,
    engine: Engine | None = None,
    budget: EditBudget | None = None,
) -> FileFix:
    """Fix one file's text (line endings already known to `layout`), its layout kept.

    Parsed round-trip only when a fixable finding exists; `remaining` comes from the fixer's
    own last evaluation of the text as written back (fix_text), not from another pass.
    """
    from kai.manifests import load_text, looks_json
    from kai.policy.fix import fix_engine, fix_objects, fix_text

    if engine is None:
        engine = fix_engine(rules, fail_on)

    original = (BOM if layout.bom else "") + (
        text.replace("\n", layout.newline) if layout.newline != "\n" else text
    )
    docs = _json_docs(text, file, layout) if looks_json(text, file) else None
    if docs is not None:  # JSON: fixed as data (no comments to keep), written back as JSON
        docs, result = fix_objects(docs, file, rules, defaults, namespace, fail_on, engine, budget)
        fixed = _json_text(docs, layout) if result.changes else text
    else:
        layout.header, body = _split_header(text)
        layout.end_marker, layout.marker_between = _markers(body)
        result = fix_text(body, file, rules, defaults, namespace, fail_on, engine, budget)
        fixed = text
        if result.changed:
            # a lone \uD800 escape comes back from the round trip as a surrogate no UTF-8 file
            # can hold: U+FFFD, as the API server (Go's decoder) reads it
            fixed = layout.header + _LONE_SURROGATE.sub(
                "\ufffd", _restore_markers(result.fixed, layout)
            )
    if result.remaining and (layout.header or layout.marker_between):
        # the findings' lines as they are in the file written back (after the header)
        manifests, notes = load_text(fixed, file)
        report = engine.evaluate(manifests, notes, default_namespace=namespace)
        rank = fail_on.rank if fail_on is not None else 0
        result.remaining = [
            f for f in report.findings if not f.suppressed and f.severity.rank >= rank
        ]
    if layout.newline != "\n":
        fixed = fixed.replace("\n", layout.newline)
    result.original = original
    result.fixed = (BOM if layout.bom else "") + fixed
    result.file = file
    return result


def _peek_layout(path: Path) -> Layout:
    """Line endings and byte-order mark, from the first bytes of the file."""
    try:
        with path.open("rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return Layout()
    return Layout(newline="\r\n" if b"\r\n" in head else "\n", bom=head.startswith(b"\xef\xbb\xbf"))


def fix_files(
    paths: Sequence[str],
    rules: Sequence[Rule],
    defaults: dict[str, Any] | None = None,
    namespace: str = "default",
    fail_on: Severity | None = None,
    edit_limit: int | None = None,
) -> list[FileFix]:
    """Fix every file (charts refused up front); nothing is written here. `edit_limit` bounds the
    YAML round-tripped in each file (kai.policy.fix.EditBudget): a big file is refused, a big
    folder takes as long as its files."""
    from kai.manifests import discover, read_file
    from kai.policy.fix import EditBudget, fix_engine

    refuse_charts(paths)
    engine = fix_engine(rules, fail_on)  # once for all files
    results = []
    for f in discover(paths):
        if f == "-":
            text, layout = sys.stdin.read(), Layout()
        else:
            text = read_file(Path(f))
            layout = _peek_layout(Path(f))
        budget = EditBudget() if edit_limit is None else EditBudget(limit=edit_limit)
        results.append(
            fix_one(text, f, rules, defaults or {}, namespace, layout, fail_on, engine, budget)
        )
    return results


# ---------- writing ----------


def write_atomic(path: str | Path, text: str) -> None:
    """Replace `path` with `text` or leave it as it was: temp file, fsync, rename; mode and owner kept.

    A symlink is followed (its target is rewritten, the link stays). Any failure, a full disk
    included, removes the temporary file and raises a one-line InputError.
    """
    target = Path(os.path.realpath(path))
    data = text.encode("utf-8")
    tmp: str | None = None
    try:
        try:
            st: os.stat_result | None = target.stat()
        except FileNotFoundError:
            st = None
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".kai-tmp", dir=target.parent)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if st is not None:
                os.fchmod(fd, st.st_mode & 0o7777)
                if hasattr(os, "fchown") and (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
                    # only root may give a file away; the mode is still kept
                    with contextlib.suppress(PermissionError):
                        os.fchown(fd, st.st_uid, st.st_gid)
            else:
                umask = os.umask(0)
                os.umask(umask)
                os.fchmod(fd, 0o666 & ~umask)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        tmp = None
        try:
            dir_fd = os.open(target.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)
    except OSError as e:
        reason = e.strerror or str(e)
        if e.errno == errno.ENOSPC:
            reason = "no space left on device"
        unchanged = "the file is unchanged" if target.exists() else "nothing written"
        raise InputError(f"{path}: cannot write: {reason}; {unchanged}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

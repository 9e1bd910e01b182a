"""Safe multi-document YAML/JSON loading and object identity.

Loading never executes tags, never expands an alias bomb, and reports malformed
input as one line with file, line and column.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kai.errors import InputError
from kai.models import Manifest, Note, ObjectRef, Source

# Larger inputs are refused up front rather than risking memory: tens of MB are fine.
MAX_INPUT_BYTES = int(os.environ.get("KAI_MAX_INPUT_BYTES", str(256 * 1024 * 1024)))
YAML_SUFFIXES = (".yaml", ".yml", ".json")


def object_ref(obj: dict[str, Any]) -> ObjectRef:
    """The identity of an object; tolerant of missing or mistyped metadata."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    ns = meta.get("namespace")
    return ObjectRef(
        apiVersion=str(obj.get("apiVersion") or ""),
        kind=str(obj.get("kind") or ""),
        namespace=str(ns) if ns not in (None, "") else None,
        name=str(meta.get("name") or meta.get("generateName") or ""),
    )


_YAML_TYPE = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    list: "list",
    bytes: "binary value",
}


# The same limit as the careful path (kai.yamlio.MAX_DEPTH), without importing PyYAML here.
MAX_DEPTH = 128

_fast: Any
try:  # a Rust YAML parser, ~10x faster than PyYAML's Python-side construction
    import yaml_rs as _fast
except ImportError:  # pragma: no cover - optional speed-up
    _fast = None

# A document marker alone on its line (optionally with a comment): content after it goes slow.
_MARKER = re.compile(r"^---[ \t]*(?:#.*)?$", re.M)
# What the fast parser must not see, because it reads YAML 1.2 while Kubernetes (like PyYAML)
# reads YAML 1.1, or because only the careful path guards it: anchors and aliases, tags, merge
# keys, directives, content on a marker line, 1.1-only octals, deep nesting. Cheap substring
# tests come first; a regex confirms only when one hits. 1.1-only booleans are caught after
# parsing (see _has_1_1_words), since "no" and "on" are everywhere in a text.
_SPECIAL = re.compile(r"[&*!]")
_MARKER_CONTENT = re.compile(r"^(?:---|\.\.\.)[ \t]*[^\s#]|^%", re.M)
_OCTAL_1_1 = re.compile(r"(?:[:\[,]|^[ \t]*-)[ \t]+[-+]?0(?:[0-7_]+|b[01_]+)[ \t]*(?:#.*)?$", re.M)
_OCTAL_HINTS = tuple(f" 0{c}" for c in "01234567_b")
_DEEP = re.compile(r"(?:-[ \t]+){32}|^[ \t]{200}", re.M)
_WORDS_1_1 = frozenset(
    v for w in ("yes", "no", "on", "off", "y", "n") for v in (w, w.upper(), w.capitalize())
)


def _node_property(text: str) -> bool:
    """An anchor, alias or tag: &name, *name or !tag at the start of a node."""
    for m in _SPECIAL.finditer(text):
        i = m.start()
        prev = text[i - 1] if i else "\n"
        nxt = text[i + 1 : i + 2]
        if prev in " \t\n[{," and (
            nxt.isalnum() or nxt in "_.-" or (m.group() == "!" and nxt in "!<")
        ):
            return True
    return False


def _needs_careful_path(text: str) -> bool:
    if "<<" in text or _node_property(text):
        return True
    if ("---" in text or "..." in text or "%" in text) and _MARKER_CONTENT.search(text):
        return True
    if any(h in text for h in _OCTAL_HINTS) and _OCTAL_1_1.search(text):
        return True
    return ("- - - -" in text or " " * 200 in text) and bool(_DEEP.search(text))


def _fast_declines(data: Any) -> bool:
    """What the fast parser's result cannot be trusted with; the careful path decides instead.

    A plain yes/no/on/off is a boolean to Kubernetes (the fast parser made it a string); a
    number, boolean or null key, or nesting past the depth limit, gets the careful path's
    conversion or its refusal with a line number. One walk, no recursion.
    """
    stack = [(data, 1)]
    limit = MAX_DEPTH
    words = _WORDS_1_1
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        depth += 1
        if type(item) is dict:
            for k, v in item.items():
                if type(k) is not str or k in words:
                    return True
                if type(v) is dict or type(v) is list:
                    stack.append((v, depth))
                elif v in words:
                    return True
        else:
            for v in item:
                if type(v) is dict or type(v) is list:
                    stack.append((v, depth))
                elif v in words:
                    return True
    return False


def _too_deep(data: Any) -> int:
    """The nesting depth of decoded JSON if it is over MAX_DEPTH, else 0."""
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return depth
        children = item.values() if type(item) is dict else item
        stack.extend((v, depth + 1) for v in children if type(v) is dict or type(v) is list)
    return 0


# A \uD800-\uDFFF escape: a lone one decodes to a surrogate that no UTF-8 output can carry.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]|\\U0000[dD][89a-fA-F]")
_RAW_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _replace_surrogates(data: Any) -> Any:
    """Lone surrogates become U+FFFD, as Go's encoding/json (the API server) decodes them."""

    def fix(v: Any) -> Any:
        return _SURROGATE.sub("\ufffd", v) if isinstance(v, str) else v

    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            pairs = [(fix(k), fix(v)) for k, v in item.items()]
            item.clear()
            item.update(pairs)
            stack.extend(v for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            item[:] = [fix(v) for v in item]
            stack.extend(v for v in item if isinstance(v, (dict, list)))
    return fix(data)


class _DuplicateKey(Exception):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        raise _DuplicateKey
    return d


def _json_documents(text: str, file: str) -> list[tuple[int, Any]]:
    """JSON text; a duplicate key is refused with both lines (the careful YAML path finds them)."""
    try:
        data = json.loads(text, object_pairs_hook=_pairs)
    except _DuplicateKey:
        list(_careful_documents(text, file))  # raises with the key and both lines
        raise InputError(f"{file}: duplicate key in a JSON object") from None
    except RecursionError:
        raise InputError(f"{file}: refused: JSON nested too deeply") from None
    if isinstance(data, (dict, list)):
        depth = _too_deep(data)
        if depth:
            raise InputError(
                f"{file}: refused: nested {depth} levels deep, over the limit of {MAX_DEPTH}"
            )
    return [(1, data)]


def _first_content_line(text: str, start_line: int) -> int:
    for offset, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and stripped != "...":
            return start_line + offset
    return start_line


def _fast_documents(text: str) -> list[tuple[int, Any]] | None:
    """Parse plain Kubernetes YAML quickly; None means "use the careful path"."""
    if _fast is None or _needs_careful_path(text):
        return None
    docs: list[tuple[int, Any]] = []
    pos, line = 0, 1
    bounds = [(m.start(), m.end()) for m in _MARKER.finditer(text)] + [(len(text), len(text))]
    for start, end in bounds:
        chunk = text[pos:start]
        if chunk.strip():
            try:
                data = _fast.loads(chunk, parse_datetime=False)
            except Exception:  # any disagreement: the careful path gives the authoritative error
                return None
            if data is not None:
                if isinstance(data, (dict, list)) and _fast_declines(data):
                    return None
                docs.append((_first_content_line(chunk, line), data))
        line += text.count("\n", pos, end) + (1 if end < len(text) else 0)
        pos = end + 1
    return docs


def _careful_documents(text: str, file: str) -> Iterable[tuple[int, Any]]:
    from kai.yamlio import iter_documents  # PyYAML only when the fast path declines

    return iter_documents(text, file)


def _is_list(data: dict[str, Any]) -> bool:
    kind = data.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and isinstance(data.get("items"), list)


def split_objects(data: Any, file: str, line: int) -> tuple[list[Manifest], list[Note]]:
    """Turn one decoded document into manifests, expanding List kinds; report non-objects."""
    manifests: list[Manifest] = []
    notes: list[Note] = []
    stack: list[Any] = [data]
    while stack:
        item = stack.pop()
        if item is None:
            continue  # an empty document, as Helm often renders
        if not isinstance(item, dict):
            kind = _YAML_TYPE.get(type(item), type(item).__name__)
            notes.append(
                Note(
                    file=file,
                    line=line,
                    message=f"skipped: document is a {kind}, not a Kubernetes object",
                )
            )
            continue
        if _is_list(item):
            stack.extend(reversed(item["items"]))
            continue
        if not item.get("kind") or not item.get("apiVersion"):
            missing = " and ".join(k for k in ("apiVersion", "kind") if not item.get(k))
            notes.append(
                Note(
                    file=file,
                    line=line,
                    message=f"skipped: document has no {missing}; not a Kubernetes object",
                )
            )
            continue
        manifests.append(Manifest(object_ref(item), Source(file, line), item))
    return manifests, notes


def load_text(text: str, file: str) -> tuple[list[Manifest], list[Note]]:
    """Load every Kubernetes object from YAML or JSON text."""
    manifests: list[Manifest] = []
    notes: list[Note] = []
    if not text.isascii() and _SURROGATE.search(text):  # only text handed over as str has them
        text = _SURROGATE.sub("\ufffd", text)
    bad = _RAW_CONTROL.search(text)
    if bad:  # YAML and JSON allow them only escaped; PyYAML and the API server refuse them too
        line = text.count("\n", 0, bad.start()) + 1
        raise InputError(
            f"{file}:{line}: refused: a raw control character (U+{ord(bad.group()):04X}); "
            "YAML and JSON allow one only escaped in a quoted string"
        )
    docs: Iterable[tuple[int, Any]]
    if file.endswith(".json") or text.lstrip()[:1] in ("{", "["):
        try:
            docs = _json_documents(text, file)
        except json.JSONDecodeError as e:
            if file.endswith(".json"):
                raise InputError(f"{file}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
            docs = _careful_documents(text, file)  # flow-style YAML, not JSON
    else:
        docs = _fast_documents(text) or _careful_documents(text, file)
    surrogates = "\\" in text and _SURROGATE_ESCAPE.search(text) is not None
    for line, data in docs:
        if surrogates:
            data = _replace_surrogates(data)
        if isinstance(data, list) and file.endswith(".json"):
            for item in data:
                m, n = split_objects(item, file, line)
                manifests += m
                notes += n
            continue
        m, n = split_objects(data, file, line)
        manifests += m
        notes += n
    return manifests, notes


def _decode(data: bytes, where: str) -> str:
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(
            f"{where}: refused: over the {MAX_INPUT_BYTES:,}-byte input limit (KAI_MAX_INPUT_BYTES)"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(
            f"{where}: not UTF-8 text (byte {e.start + 1} is not valid UTF-8)"
        ) from None
    # universal newlines, as a text-mode read gives: kai fix keeps the file's own line endings
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def read_file(path: Path) -> str:
    """A manifest file as text: a regular file only, size-limited, UTF-8, one-line errors.

    A FIFO, a device (/dev/zero, /dev/urandom) or a socket is refused before it is read, and
    no more than the size limit plus one byte is ever read (a file that grows while read, or
    /proc files whose size says 0).
    """
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{path}: is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path}: refused: not a regular file (a FIFO, device or socket)")
        if st.st_size > MAX_INPUT_BYTES:
            raise InputError(
                f"{path}: refused: {st.st_size:,} bytes is over the {MAX_INPUT_BYTES:,}-byte "
                "input limit (KAI_MAX_INPUT_BYTES)"
            )
        chunks = []
        left = MAX_INPUT_BYTES + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    finally:
        os.close(fd)
    return _decode(b"".join(chunks), str(path))


def read_stdin() -> str:
    """Standard input as text: at most the size limit plus one byte, UTF-8, one-line errors."""
    stream = sys.stdin
    if stream is None:
        raise InputError("-: cannot read standard input: it is closed")
    try:
        raw = getattr(stream, "buffer", None)
        if raw is None:  # a text stream without bytes underneath (tests, embedding)
            text = stream.read(MAX_INPUT_BYTES + 1)
            if len(text) > MAX_INPUT_BYTES:
                raise InputError(
                    f"-: refused: standard input is over the {MAX_INPUT_BYTES:,}-byte input limit"
                )
            return str(text)
        data = raw.read(MAX_INPUT_BYTES + 1)
    except (OSError, ValueError) as e:  # a closed descriptor: EBADF, or "I/O on closed file"
        raise InputError(
            f"-: cannot read standard input: {getattr(e, 'strerror', None) or e}"
        ) from None
    except UnicodeDecodeError as e:
        raise InputError(f"-: not UTF-8 text (byte {e.start + 1} is not valid UTF-8)") from None
    return _decode(data or b"", "-")


def discover(paths: Iterable[str]) -> list[str]:
    """Expand directories recursively into YAML/JSON files, in a stable order."""
    files: list[str] = []
    for p in paths:
        if p == "-":
            files.append(p)
            continue
        path = Path(p)
        if path.is_dir():
            found = sorted(
                str(f)
                for f in path.rglob("*")
                if f.suffix in YAML_SUFFIXES
                and f.is_file()
                and not any(part.startswith(".") for part in f.relative_to(path).parts)
            )
            files.extend(found)
        elif path.exists():
            files.append(str(path))
        else:
            raise InputError(f"{p}: no such file or directory")
    return files


# The text of every file loaded in this run, so later stages can point at a field's line.
_SOURCES: dict[str, str] = {}


def source_text(file: str) -> str | None:
    return _SOURCES.get(file)


def read_source(file: str, stdin_text: str | None = None) -> str:
    """The text of one discovered file ("-" is standard input), kept for later line lookups."""
    if file == "-":
        text = stdin_text if stdin_text is not None else read_stdin()
        if len(text) > MAX_INPUT_BYTES:
            raise InputError(
                f"-: refused: standard input is over the {MAX_INPUT_BYTES:,}-byte input limit"
            )
    else:
        text = read_file(Path(file))
    _SOURCES[file] = text
    return text


def dump_yaml(objs: Iterable[dict[str, Any]]) -> str:
    """Plain multi-document YAML, key order preserved."""
    from kai.yamlio import dump_all

    return dump_all(objs)

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

# One reader, with the API server's semantics (kai.yamlio: go-yaml v2.4 + sigs.k8s.io/yaml +
# encoding/json). yaml-rs gives the speed: it parses each document (YAML 1.2), and one walk over
# its result (_go_values) turns it into what Kubernetes reads: floats that JSON writes as
# integers become integers, number and boolean keys strings. Where a YAML 1.2 value cannot tell
# what go-yaml made of the text (the string "on" may have been plain, so true, or quoted; 777
# may have been written 0777, which go-yaml reads as octal 511; a tag; `<<`), that one document
# is decoded by kai.yamlio.go_documents instead, which reads the source itself. Both give the
# same value for every input (tests/test_properties.py), so which one ran never shows.

# Document boundaries: a marker at the start of a line (YAML forbids one inside any scalar).
_BOUNDARY = re.compile(r"^(?:---|\.\.\.)(?=[ \t]|$)", re.M)
# Per document: what only the source can tell. A tag, or a plain number with a leading 0 or _.
_TAG_START = re.compile(r"(?:^|[\s\[{,])!", re.M)
_ANCHOR = re.compile(r"(?:^|[\s\[{,])&[^\s,\]}]", re.M)  # aliases need one: refusals decide
_OCTAL_OR_UNDERSCORE = re.compile(r"[\s\[{,:][-+]?(?:0[0-7_]|_)")
_OCTAL_AT_START = re.compile(r"[-+]?(?:0[0-7_]|_)")
_DIRECTIVE = re.compile(r"^%", re.M)
# Plain scalars go-yaml reads as booleans and YAML 1.2 as strings, and the merge key.
_GO_ONLY_WORDS = frozenset(
    (
        "y",
        "Y",
        "yes",
        "Yes",
        "YES",
        "n",
        "N",
        "no",
        "No",
        "NO",
        "on",
        "On",
        "ON",
        "off",
        "Off",
        "OFF",
    )
)
_GO_ONLY_KEYS = _GO_ONLY_WORDS | {"<<"}
# Where such a word could stand as a plain scalar: a value, a list item, a flow entry or a key.
# When the document has none, every one of those strings was quoted (or inside a longer text).
_PLAIN_WORD = re.compile(
    r"(?:^|[:?\[{,-])[ \t]*(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)[ \t]*(?:$|[#,\]}:])",
    re.M,
)
_NUMBER_START = frozenset("+-.0123456789")
_INT64 = 1 << 63


class _Undecided(Exception):
    """The YAML 1.2 value does not tell what go-yaml made of the text."""


_QUOTED_NUMBER: dict[str, bool] = {}


def _ambiguous_number_text(v: str) -> bool:
    """A string that go-yaml reads as a number when plain, and YAML 1.2 as a string when plain.

    ("8080" is not: YAML 1.2 reads a plain 8080 as a number too, so a string was quoted.)
    """
    known = _QUOTED_NUMBER.get(v)
    if known is None:
        from kai.goyaml import go_resolve

        known = type(go_resolve(v)) is not str
        if known:
            try:
                known = type(_fast.loads("a: " + v, parse_datetime=False)["a"]) is str
            except Exception:
                known = True
        if len(_QUOTED_NUMBER) < 65536:
            _QUOTED_NUMBER[v] = known
    return known


def _number(v: Any) -> Any:
    """A YAML 1.2 number as the API server reads it after go-yaml and encoding/json."""
    if type(v) is int:
        if -_INT64 <= v < _INT64:
            return v
        if 0 <= v < 2 * _INT64:
            return float(v)  # a uint64: JSON digits the server reads as a float
        raise _Undecided  # past 64 bits: go-yaml keeps 0x... as a string, digits as a float
    if v != v or v in (float("inf"), float("-inf")):
        raise _Undecided  # refused, or `.iNf` (a string to go-yaml): the source decides
    if v == int(v) and abs(v) < 1e21 and -_INT64 <= int(v) < _INT64:
        return int(v)
    return v


def _key(k: Any) -> str:
    from kai.goyaml import json_key

    if type(k) is bool or type(k) is int or type(k) is float:
        if type(k) is float and (k != k or k in (float("inf"), float("-inf"))):
            raise _Undecided
        if type(k) is int and not -_INT64 <= k < _INT64:
            raise _Undecided
        s = json_key(k)
        if s is not None:
            return s
    raise _Undecided  # a null or complex key: the careful reader refuses it with its line


def _go_values(data: Any, chunk: str) -> Any:
    """yaml-rs's YAML 1.2 result, in place, as Kubernetes reads the same text; or _Undecided.

    One walk, no recursion, nesting limited to MAX_DEPTH. `chunk` is the document's text: a
    string such as "on" is read as a string only when the text has no plain `on` anywhere.
    """
    plain_words: list[bool] = []

    def word(v: str) -> bool:
        if not plain_words:
            plain_words.append(_PLAIN_WORD.search(chunk) is not None)
        return plain_words[0]

    if type(data) is not dict and type(data) is not list:
        if type(data) is str:
            if (data in _GO_ONLY_WORDS and word(data)) or (
                data and data[0] in _NUMBER_START and _ambiguous_number_text(data)
            ):
                raise _Undecided
            return data
        return _number(data) if type(data) is int or type(data) is float else data
    words, keys, starts = _GO_ONLY_WORDS, _GO_ONLY_KEYS, _NUMBER_START
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if depth >= MAX_DEPTH and (depth > MAX_DEPTH or item):
            raise _Undecided  # a level past the limit: refused with its line
        depth += 1
        if type(item) is dict:
            renamed = False
            for k, v in item.items():
                if type(k) is not str:
                    renamed = True
                elif (k in keys and (k == "<<" or word(k))) or (
                    k and k[0] in starts and _ambiguous_number_text(k)
                ):
                    raise _Undecided
                t = type(v)
                if t is str:
                    if (v in words and word(v)) or (
                        v and v[0] in starts and _ambiguous_number_text(v)
                    ):
                        raise _Undecided
                elif t is dict or t is list:
                    stack.append((v, depth))
                elif t is int or t is float:
                    n = _number(v)
                    if n is not v:
                        item[k] = n
            if renamed:
                pairs = [(k if type(k) is str else _key(k), v) for k, v in item.items()]
                item.clear()
                for k, v in pairs:
                    if k in item:
                        raise _Undecided  # `1: a` and `"1": b`: refused with the lines
                    item[k] = v
        else:
            for i, v in enumerate(item):
                t = type(v)
                if t is str:
                    if (v in words and word(v)) or (
                        v and v[0] in starts and _ambiguous_number_text(v)
                    ):
                        raise _Undecided
                elif t is dict or t is list:
                    stack.append((v, depth))
                elif t is int or t is float:
                    n = _number(v)
                    if n is not v:
                        item[i] = n
    return data


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


def _needs_source(chunk: str) -> bool:
    """What only the source of this document can tell (see _go_values for the rest)."""
    if "!" in chunk and _TAG_START.search(chunk):
        return True
    if "&" in chunk and _ANCHOR.search(chunk):
        return True
    if _OCTAL_AT_START.match(chunk):
        return True
    return _OCTAL_OR_UNDERSCORE.search(chunk) is not None


def _documents(text: str, file: str) -> list[tuple[int, Any]]:
    """Every non-empty document of YAML text: (first content line, value as Kubernetes reads it)."""
    if _fast is None or ("%" in text and _DIRECTIVE.search(text)):
        return list(_careful_documents(text, file))
    docs: list[tuple[int, Any]] = []
    pos, line = 0, 1  # where the current document's text starts, and its line
    marks = [(m.start(), m.group()) for m in _BOUNDARY.finditer(text)] + [(len(text), "")]
    for start, marker in marks:
        chunk = text[pos:start]
        if chunk.strip():
            data: Any = None
            try:
                if _needs_source(chunk):
                    raise _Undecided
                data = _go_values(_fast.loads(chunk, parse_datetime=False), chunk)
            except InputError:
                raise
            except Exception:  # _Undecided, or anything yaml-rs refuses: the source decides
                careful = list(_careful_documents(chunk, file, line))
                docs += careful
                data = None
            else:
                if data is not None:
                    docs.append((_first_content_line(chunk, line), data))
        line += text.count("\n", pos, start)
        pos = start + 3  # after `---` the rest of the line belongs to the next document
        if marker == "...":
            end = text.find("\n", pos)
            rest = text[pos : end if end >= 0 else len(text)].strip()
            if rest and not rest.startswith("#"):
                list(_careful_documents(text[start:], file, line))  # the error, with its line
            pos = end if end >= 0 else len(text)
    return docs


def _careful_documents(text: str, file: str, line0: int = 1) -> Iterable[tuple[int, Any]]:
    from kai.yamlio import go_documents  # PyYAML only for what the source must decide

    return go_documents(text, file, line0)


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


def _checked(text: str, file: str) -> str:
    """The text with lone surrogates as U+FFFD; a raw control character is refused."""
    if not text.isascii() and _SURROGATE.search(text):  # only text handed over as str has them
        text = _SURROGATE.sub("\ufffd", text)
    bad = _RAW_CONTROL.search(text)
    if bad:  # YAML and JSON allow them only escaped; PyYAML and the API server refuse them too
        line = text.count("\n", 0, bad.start()) + 1
        raise InputError(
            f"{file}:{line}: refused: a raw control character (U+{ord(bad.group()):04X}); "
            "YAML and JSON allow one only escaped in a quoted string"
        )
    return text


def looks_json(text: str, file: str) -> bool:
    return file.endswith(".json") or text.lstrip()[:1] in ("{", "[")


def json_value(text: str, file: str) -> Any | None:
    """A JSON file's one value as load_text reads it (duplicate keys, depth and raw control
    characters refused, lone surrogate escapes as U+FFFD); None for text that is not JSON in a
    file not named .json (flow-style YAML). Invalid JSON in a .json file: its line and column."""
    text = _checked(text, file)
    try:
        ((_, data),) = _json_documents(text, file)
    except json.JSONDecodeError as e:
        if file.endswith(".json"):
            raise InputError(f"{file}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
        return None
    if "\\" in text and _SURROGATE_ESCAPE.search(text) is not None:
        data = _replace_surrogates(data)
    return data


def load_text(text: str, file: str) -> tuple[list[Manifest], list[Note]]:
    """Load every Kubernetes object from YAML or JSON text."""
    manifests: list[Manifest] = []
    notes: list[Note] = []
    text = _checked(text, file)
    docs: Iterable[tuple[int, Any]]
    if looks_json(text, file):
        try:
            docs = _json_documents(text, file)
        except json.JSONDecodeError as e:
            if file.endswith(".json"):
                raise InputError(f"{file}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
            docs = _careful_documents(text, file)  # flow-style YAML, not JSON
    else:
        docs = _documents(text, file)
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


def release_sources(files: Iterable[str]) -> None:
    """Forget the text of `files` once their lines are resolved (kai.pipeline.review)."""
    for f in files:
        _SOURCES.pop(f, None)


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

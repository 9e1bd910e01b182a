"""kai's own renderer: the Go-template subset of kai-generated charts, lexed, parsed and
interpreted; anything outside the subset is refused (helm renders it instead).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from kai.errors import InputError
from kai.helm.chart import _SafeDumper, go_quote


class _Unsupported(Exception):
    pass


_FUNCS = frozenset(
    {"include", "toYaml", "nindent", "indent", "quote", "default", "not", "trunc", "trimSuffix"}
)
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\\n]|\\.)*")
    | (?P<raw>`[^`]*`)
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<punct>[|()])
    | (?P<other>\S+?)(?=\s|$|[|()]|-?}}))""",
    re.X,
)


_SPACE = re.compile(r"\s*")


@dataclass
class _Action:
    tokens: list[tuple[str, str]]
    line: int


@dataclass
class _Node:
    kind: str  # text, action, if, with, define
    text: str = ""
    pipe: list[list[tuple[str, str]]] = field(default_factory=list)
    body: list[_Node] = field(default_factory=list)
    orelse: list[_Node] = field(default_factory=list)
    line: int = 0


def _lex(src: str, file: str) -> list[str | _Action]:
    """Text and actions, with {{- and -}} trimming applied."""
    items: list[str | _Action] = []
    pos, trim_next = 0, False
    while True:
        i = src.find("{{", pos)
        text = src[pos:] if i < 0 else src[pos:i]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if i < 0:
            items.append(text)
            return items
        line = src.count("\n", 0, i) + 1
        j = i + 2
        if src.startswith("-", j) and src[j + 1 : j + 2] in (" ", "\t", "\r", "\n"):
            text = text.rstrip(" \t\r\n")
            j += 1
        items.append(text)
        k = j
        while k < len(src) and src[k] in " \t\r\n":
            k += 1
        if src.startswith("/*", k):  # a comment
            end = src.find("*/", k + 2)
            if end < 0:
                raise InputError(f"{file}:{line}: unclosed comment")
            close = src.find("}}", end)
            between = src[end + 2 : close].strip() if close >= 0 else "x"
            if close < 0 or between not in ("", "-"):
                raise InputError(f"{file}:{line}: comment not followed by }}}}")
            trim_next = between == "-"
            pos = close + 2
            continue
        tokens: list[tuple[str, str]] = []
        trim_next = False
        while True:
            k = _SPACE.match(src, k).end()  # type: ignore[union-attr]
            if src.startswith("}}", k):
                pos = k + 2
                break
            if src.startswith("-}}", k) and src[k - 1] in " \t\r\n":
                trim_next, pos = True, k + 3
                break
            if k >= len(src):
                raise InputError(f"{file}:{line}: unclosed action")
            tm = _TOKEN.match(src, k)
            if not tm or tm.end() == k:
                raise InputError(f"{file}:{line}: cannot read template action")
            kind = tm.lastgroup or "other"
            value = tm.group(kind)
            tokens.append((kind, value))
            k = tm.end()
        items.append(_Action(tokens, line))


def _parse(items: list[str | _Action], file: str) -> tuple[list[_Node], dict[str, list[_Node]]]:
    defines: dict[str, list[_Node]] = {}
    pos = 0

    def block(top: bool) -> tuple[list[_Node], str, int]:
        nonlocal pos
        nodes: list[_Node] = []
        while pos < len(items):
            item = items[pos]
            pos += 1
            if isinstance(item, str):
                if item:
                    nodes.append(_Node("text", text=item))
                continue
            toks = item.tokens
            if not toks:
                raise InputError(f"{file}:{item.line}: empty action")
            head = toks[0][1] if toks[0][0] == "ident" else ""
            if head in ("end", "else"):
                if top:
                    raise InputError(f"{file}:{item.line}: unexpected {{{{ {head} }}}}")
                if len(toks) != 1:
                    raise _Unsupported(
                        f"{file}:{item.line}: {{{{ {' '.join(t[1] for t in toks)} }}}}"
                    )
                return nodes, head, item.line
            if head in ("if", "with"):
                node = _Node(head, pipe=_pipeline(toks[1:], file, item.line), line=item.line)
                node.body, how, _ = block(False)
                if how == "else":
                    node.orelse, how, _ = block(False)
                    if how != "end":
                        raise InputError(f"{file}:{item.line}: {head} has two else branches")
                nodes.append(node)
            elif head == "define":
                if not top or len(toks) != 2 or toks[1][0] != "str":
                    raise InputError(f"{file}:{item.line}: define must be top-level with a name")
                body, how, _ = block(False)
                if how != "end":
                    raise InputError(f"{file}:{item.line}: define ends with else")
                defines[json.loads(toks[1][1])] = body
            elif head in ("range", "template", "block", "break", "continue") or head == "nil":
                raise _Unsupported(f"{file}:{item.line}: {{{{ {head} }}}}")
            else:
                nodes.append(_Node("action", pipe=_pipeline(toks, file, item.line), line=item.line))
        if not top:
            raise InputError(f"{file}: missing {{{{ end }}}}")
        return nodes, "", 0

    nodes, _, _ = block(True)
    return nodes, defines


def _pipeline(toks: list[tuple[str, str]], file: str, line: int) -> list[list[tuple[str, str]]]:
    """Split a pipeline into commands; parenthesised sub-pipelines stay as ("paren", ...)."""
    for kind, value in toks:
        if kind == "other":
            raise _Unsupported(f"{file}:{line}: `{value}`")
        if kind == "ident" and value not in _FUNCS and value not in ("true", "false"):
            raise _Unsupported(f"{file}:{line}: function `{value}`")
    cmds: list[list[tuple[str, str]]] = [[]]
    depth = 0
    for kind, value in toks:
        if kind == "punct" and value == "|" and depth == 0:
            cmds.append([])
            continue
        if kind == "punct":
            depth += 1 if value == "(" else -1 if value == ")" else 0
            if depth < 0:
                raise InputError(f"{file}:{line}: unbalanced parentheses")
        cmds[-1].append((kind, value))
    if depth != 0 or any(not c for c in cmds):
        raise InputError(f"{file}:{line}: malformed pipeline")
    return cmds


@dataclass
class _Root:
    values: dict[str, Any]
    release: dict[str, Any]
    chart: dict[str, Any]


_ALLOWED = {"Release": ("Name",), "Chart": ("Name", "Version", "AppVersion")}


def _truth(v: Any) -> bool:
    return v not in (None, False, 0, "") and not (isinstance(v, (dict, list)) and not v)


def _strval(v: Any, where: str) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
        return str(int(v))
    if isinstance(v, (str, int, float)):
        return str(v)
    raise _Unsupported(f"{where}: printing a {type(v).__name__} (use toYaml)")


def _to_yaml(v: Any) -> str:
    return (
        str(
            yaml.dump(
                v, Dumper=_SafeDumper, default_flow_style=False, allow_unicode=True, width=1_000_000
            )
        )
        .removesuffix("\n")
        .removesuffix("\n...")
    )


class _Renderer:
    def __init__(self, defines: dict[str, list[_Node]], file: str) -> None:
        self.defines = defines
        self.file = file
        self.depth = 0

    def render(self, nodes: list[_Node], dot: Any) -> str:
        out: list[str] = []
        for n in nodes:
            if n.kind == "text":
                out.append(n.text)
            elif n.kind == "action":
                out.append(_strval(self.pipe(n.pipe, dot, n.line), f"{self.file}:{n.line}"))
            else:
                v = self.pipe(n.pipe, dot, n.line)
                if _truth(v):
                    out.append(self.render(n.body, v if n.kind == "with" else dot))
                else:
                    out.append(self.render(n.orelse, dot))
        return "".join(out)

    def pipe(self, cmds: list[list[tuple[str, str]]], dot: Any, line: int) -> Any:
        value: Any = _NOTHING
        for cmd in cmds:
            value = self.command(cmd, dot, line, value)
        return value

    def command(self, cmd: list[tuple[str, str]], dot: Any, line: int, piped: Any) -> Any:
        where = f"{self.file}:{line}"
        args = self.operands(cmd, dot, line)
        kind, value = cmd[0]
        if kind != "ident" or value in ("true", "false"):
            if len(args) != 1 or piped is not _NOTHING:
                raise InputError(f"{where}: can't give an argument to a non-function")
            return args[0]
        params = args[1:] + ([] if piped is _NOTHING else [piped])
        return self.call(value, params, where)

    def operands(self, cmd: list[tuple[str, str]], dot: Any, line: int) -> list[Any]:
        out: list[Any] = []
        i = 0
        while i < len(cmd):
            kind, value = cmd[i]
            if kind == "punct" and value == "(":
                depth, j = 1, i + 1
                while depth:
                    depth += {"(": 1, ")": -1}.get(cmd[j][1], 0) if cmd[j][0] == "punct" else 0
                    j += 1
                inner = _pipeline(cmd[i + 1 : j - 1], self.file, line)
                out.append(self.pipe(inner, dot, line))
                i = j
                continue
            if kind == "str":
                out.append(json.loads(value))
            elif kind == "raw":
                out.append(value[1:-1])
            elif kind == "num":
                out.append(float(value) if "." in value else int(value))
            elif kind == "field":
                out.append(self.field(value, dot, line))
            elif kind == "ident":
                if i and value not in ("true", "false"):
                    raise _Unsupported(f"{self.file}:{line}: `{value}` as an argument")
                out.append({"true": True, "false": False}.get(value, value))
            i += 1
        return out

    def field(self, chain: str, dot: Any, line: int) -> Any:
        if chain == ".":
            return dot
        names = chain[1:].split(".")
        value = dot
        for i, name in enumerate(names):
            if isinstance(value, _Root):
                if name == "Values":
                    value = value.values
                elif name in _ALLOWED and len(names) > i + 1 and names[i + 1] in _ALLOWED[name]:
                    value = (value.release if name == "Release" else value.chart).get(names[i + 1])
                    if len(names) > i + 2:
                        raise InputError(f"{self.file}:{line}: {chain}: not a map")
                    return value
                else:
                    raise _Unsupported(f"{self.file}:{line}: {chain}")
            elif isinstance(value, dict):
                value = value.get(name)
            elif value is None:
                raise InputError(
                    f"{self.file}:{line}: nil pointer evaluating {chain} (a missing value)"
                )
            else:
                raise InputError(
                    f"{self.file}:{line}: {chain}: can't read .{name} of a {type(value).__name__}"
                )
        return value

    def call(self, fn: str, a: list[Any], where: str) -> Any:
        def need(n: int) -> None:
            if len(a) != n:
                raise InputError(f"{where}: {fn} takes {n} arguments, got {len(a)}")

        if fn == "include":
            need(2)
            body = self.defines.get(str(a[0]))
            if body is None:
                raise InputError(f"{where}: no template {a[0]!r} is defined")
            self.depth += 1
            if self.depth > 50:
                raise InputError(f"{where}: include nested too deeply")
            try:
                return self.render(body, a[1])
            finally:
                self.depth -= 1
        if fn == "toYaml":
            need(1)
            return _to_yaml(a[0])
        if fn in ("nindent", "indent"):
            need(2)
            pad = " " * _int(a[0], where)
            text = pad + _strval(a[1], where).replace("\n", "\n" + pad)
            return "\n" + text if fn == "nindent" else text
        if fn == "quote":
            return " ".join(go_quote(_strval(v, where)) for v in a if v is not None)
        if fn == "default":
            if len(a) not in (1, 2):
                raise InputError(f"{where}: default takes 2 arguments")
            return a[1] if len(a) == 2 and _truth(a[1]) else a[0]
        if fn == "not":
            need(1)
            return not _truth(a[0])
        if fn == "trunc":
            need(2)
            s, n = _strval(a[1], where), _int(a[0], where)
            return s[:n] if n >= 0 else s[n:]
        if fn == "trimSuffix":
            need(2)
            return _strval(a[1], where).removesuffix(_strval(a[0], where))
        raise _Unsupported(f"{where}: function `{fn}`")


_NOTHING = object()


def _int(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(f"{where}: expected a number, got {v!r}")
    return int(v)


def merge_values(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge overrides into values; a dotted key (agent.image.tag) is a path, like --set."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        target = out
        parts = key.split(".")
        for p in parts[:-1]:
            if not isinstance(target.get(p), dict):
                target[p] = {}
            target = target[p]
        if isinstance(value, dict) and isinstance(target.get(parts[-1]), dict):
            target[parts[-1]] = merge_values(target[parts[-1]], value)
        else:
            target[parts[-1]] = copy.deepcopy(value)
    return out

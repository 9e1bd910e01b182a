"""PyYAML, kept off the fast path: the careful loader, line lookups, and dumping."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import yaml

from kai.errors import InputError
from kai.goyaml import MERGE, NotJSON, go_resolve, json_key, json_number

# An alias may be used many times; what matters is the size of the expanded tree.
MAX_EXPANDED_NODES = 2_000_000
YAMLError = yaml.YAMLError

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class KaiLoader(_BaseLoader):  # type: ignore[misc]
    """A safe loader that, like Kubernetes, keeps timestamps as plain strings."""


KaiLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}


def load_one(text: str, check: Callable[[yaml.Node], bool] | None = None) -> Any:
    """One YAML document (rule files, configuration), timestamps kept as strings.

    `check` (such as check_node) sees the node tree before anything is constructed; when it
    returns True, number and boolean keys are turned into strings.
    """
    if check is None:
        return yaml.load(text, Loader=KaiLoader)
    loader = KaiLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        convert = check(node)
        data = loader.construct_document(node)
        return string_keys(data, "configuration", node.start_mark.line + 1) if convert else data
    finally:
        loader.dispose()


# Deeper than this is refused: no Kubernetes object comes close (a deep CRD schema is ~40), and
# kai's validator and CEL runtime have recursion limits of their own around 256.
MAX_DEPTH = 128
# Tags whose values JSON can carry; Kubernetes reads YAML as JSON (sigs.k8s.io/yaml).
_TAG = "tag:yaml.org,2002:"
_JSON_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "map", "seq"))
_MERGE = _TAG + "merge"
_KEY_KIND = {_TAG + "null": "null", _TAG + "binary": "binary"}


def _where(file: str, node: yaml.Node, line0: int = 1) -> str:
    return f"{file}:{node.start_mark.line + line0}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(value: str) -> str:
    """Text from the input, safe in a one-line message: control characters as escapes."""
    return _CONTROL.sub(
        lambda m: m.group().encode("unicode_escape", "backslashreplace").decode(), value
    )


def _short(value: str) -> str:
    return printable(value if len(value) <= 60 else value[:57] + "...")


def check_node(
    root: yaml.Node,
    file: str,
    max_nodes: int = MAX_EXPANDED_NODES,
    line0: int = 1,
    keys: bool = True,
) -> bool:
    """Refuse what Kubernetes would not read, before anything is constructed.

    Iterative (no Python recursion) over the node graph: a recursive alias (a node inside
    itself), nesting deeper than MAX_DEPTH, aliases expanding past `max_nodes`, a duplicate
    key (kubectl and the API server reject them, sigs.k8s.io/yaml strict decoding), a null or
    complex key (sigs.k8s.io/yaml: "unsupported map key"), and tags JSON cannot carry
    (!!binary, !!set, !!timestamp, ...). Returns whether some key is a non-string scalar
    (a number or boolean, which Kubernetes turns into its string). With keys=False the keys
    are left to construct_go (the manifest reader), which resolves them first.
    """
    sizes: dict[int, tuple[int, int]] = {}  # id -> (expanded size, height), once finished
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    other_keys = False
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            found = [sizes[id(c)] for c in _children(node)]
            size = 1 + sum(s for s, _ in found)
            height = 1 + max((h for _, h in found), default=0)
            if height > MAX_DEPTH:
                raise InputError(
                    f"{_where(file, node, line0)}: refused: nested {height} levels deep, "
                    f"over the limit of {MAX_DEPTH}"
                )
            if size > max_nodes:
                raise InputError(
                    f"{_where(file, node, line0)}: refused: YAML aliases expand to more than "
                    f"{max_nodes:,} nodes (an alias bomb?)"
                )
            sizes[key] = (size, height)
            continue
        if key in sizes:
            continue  # an alias of a node already checked
        if key in on_path:
            raise InputError(
                f"{_where(file, node, line0)}: refused: a YAML alias refers to a node that contains it "
                "(a recursive structure)"
            )
        tag = node.tag
        if isinstance(node, yaml.ScalarNode):
            if tag not in _GO_TAGS and tag != _MERGE:
                raise InputError(f"{_where(file, node, line0)}: refused: {_tag_reason(tag)}")
            sizes[key] = (1, 1)
            continue
        if tag not in _JSON_TAGS:
            raise InputError(f"{_where(file, node, line0)}: refused: {_tag_reason(tag)}")
        on_path.add(key)
        stack.append((node, True))
        if keys and isinstance(node, yaml.MappingNode):
            other_keys |= _check_keys(node, file)
        for c in reversed(_children(node)):
            # a scalar child is checked here rather than visited (most nodes are scalars)
            if type(c) is yaml.ScalarNode and c.tag in _GO_TAGS:
                sizes[id(c)] = _LEAF
            else:
                stack.append((c, False))
    return other_keys


_LEAF = (1, 1)  # a scalar's (expanded size, height)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _tag_reason(tag: str) -> str:
    name = "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag
    return (
        f"the {_short(name)} tag: Kubernetes reads YAML as JSON, which has no such type "
        "(write the value as a plain string, number, list or mapping)"
    )


def _check_keys(node: yaml.MappingNode, file: str) -> bool:
    """Duplicate, null and complex keys of one mapping; True if a key is a number or boolean."""
    seen: dict[tuple[str, str], yaml.Node] = {}
    other = False
    for k, _ in node.value:
        if not isinstance(k, yaml.ScalarNode):
            what = "mapping" if isinstance(k, yaml.MappingNode) else "list"
            raise InputError(
                f"{_where(file, k)}: refused: a mapping key is a {what}; Kubernetes keys must "
                "be strings (numbers and booleans are turned into strings)"
            )
        if k.tag == _MERGE:
            continue
        if k.tag in _KEY_KIND:
            raise InputError(
                f"{_where(file, k)}: refused: a mapping key is {_KEY_KIND[k.tag]}; Kubernetes "
                "keys must be strings (numbers and booleans are turned into strings)"
            )
        if k.tag != _TAG + "str":
            other = True
        ident = (k.tag, k.value)
        first = seen.get(ident)
        if first is not None:
            a, b = first.start_mark, k.start_mark
            where = (
                f"first at line {a.line + 1}, again at line {b.line + 1}"
                if a.line != b.line
                else f"twice on line {a.line + 1}, columns {a.column + 1} and {b.column + 1}"
            )
            raise InputError(
                f"{_where(file, k)}: duplicate key {_short(k.value)!r} ({where}); "
                "kubectl and the API server reject duplicate fields"
            )
        seen[ident] = k
    return other


def string_keys(data: Any, file: str, line: int) -> Any:
    """Every mapping key as a string, as Kubernetes turns YAML into JSON; refuses collisions."""
    stack = [data]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            if any(type(k) is not str for k in item):
                converted: dict[str, Any] = {}
                for k, v in item.items():
                    s = k if isinstance(k, str) else json_key(k)
                    if s is None:
                        raise InputError(
                            f"{file}:{line}: refused: a mapping key of type "
                            f"{type(k).__name__}; Kubernetes keys must be strings"
                        )
                    if s in converted:
                        raise InputError(
                            f"{file}:{line}: duplicate key {_short(s)!r} once numbers and "
                            "booleans are written as strings, as Kubernetes does"
                        )
                    converted[s] = v
                item.clear()
                item.update(converted)
            stack.extend(v for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend(v for v in item if isinstance(v, (dict, list)))
    return data


def iter_documents(text: str, file: str) -> Iterator[tuple[int, Any]]:
    """Yield (1-based line, data) for each non-empty YAML document in `text`, as Kubernetes reads it."""
    return go_documents(text, file)


def dump_all(objs: Iterable[dict[str, Any]]) -> str:
    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump_all(list(objs), Dumper=dumper, sort_keys=False, default_flow_style=False))


def dump(data: Any) -> str:
    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True))


# ---------- the manifest reader: go-yaml v2.4 + sigs.k8s.io/yaml + encoding/json semantics ----------
#
# kubectl and the API server read YAML with sigs.k8s.io/yaml: go-yaml v2.4 (a YAML 1.1-style
# resolver) decodes into interface{}, sigs.k8s.io/yaml turns keys into strings, encoding/json
# writes JSON, and the unstructured decoder reads numbers back (an integer when it parses as
# int64, else a float). Everything below reproduces that chain for plain scalars:
#   y/Y/yes/Yes/YES/on/On/ON/true/True/TRUE -> true (n/no/off/false likewise false);
#   ""/~/null/Null/NULL -> null; .inf/.nan (and case variants in go-yaml's table) -> refused,
#   as json.Marshal refuses them; 0777 -> 511 (a leading 0 is octal), 0o777 -> 511, 0x1F -> 31,
#   0b101 -> 5, underscores ignored; 1e3 and 0E0 -> floats, which JSON writes as 1000 and 0 and
#   the server reads as integers; integers past int64 -> floats; timestamps stay strings; a
#   merge key `<<` copies the keys of a mapping (or a list of them) at its place, a later key
#   overwriting an earlier one; keys become strings (true, 1, 1.5), null and other keys refused.

PLAIN = "kai:plain"  # the tag given to an untagged plain scalar, resolved the Go way below
_STR = _TAG + "str"
_INT64 = 1 << 63


def _go_scalar(node: yaml.ScalarNode) -> Any:
    """A scalar node's go-yaml value (before JSON)."""
    tag, text = node.tag, node.value
    if tag == PLAIN:
        return go_resolve(text)
    if tag == _STR:
        return text
    value: Any = go_resolve(text) if text or tag == _TAG + "null" else None
    want = tag[len(_TAG) :]
    ok = {
        "int": type(value) is int,
        "float": type(value) in (int, float),
        "bool": type(value) is bool,
        "null": value is None,
        "merge": value is MERGE,
    }.get(want, False)
    if not ok:
        raise InputError(f"cannot decode {_short(text)!r} as a !!{want}")
    return float(value) if want == "float" else value


class GoLoader(_BaseLoader):  # type: ignore[misc]
    """libyaml's composer; plain scalars keep the PLAIN tag for the Go resolver."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode:
            return PLAIN if implicit[0] else _STR
        return _TAG + ("map" if kind is yaml.MappingNode else "seq")


_GO_TAGS = _JSON_TAGS | {PLAIN}


def _go_key(node: yaml.Node, file: str, line0: int) -> Any:
    """A mapping key as sigs.k8s.io/yaml writes it (a string), or MERGE."""
    if not isinstance(node, yaml.ScalarNode):
        what = "mapping" if isinstance(node, yaml.MappingNode) else "list"
        raise InputError(
            f"{file}:{node.start_mark.line + line0}: refused: a mapping key is a {what}; "
            "Kubernetes keys must be strings (numbers and booleans are turned into strings)"
        )
    try:
        raw = _go_scalar(node)
    except InputError as e:
        raise InputError(f"{file}:{node.start_mark.line + line0}: {e.message}") from None
    if raw is MERGE or type(raw) is str:
        return raw
    key = json_key(raw) if raw is not None and not (type(raw) is int and raw >= _INT64) else None
    if key is None:
        what = "null" if raw is None else "an unsigned 64-bit number"
        raise InputError(
            f"{file}:{node.start_mark.line + line0}: refused: a mapping key is {what}; "
            "Kubernetes keys must be strings (numbers and booleans are turned into strings)"
        )
    return key


def _duplicate(file: str, key: str, first: yaml.Node, again: yaml.Node, line0: int) -> InputError:
    a, b = first.start_mark, again.start_mark
    where = (
        f"first at line {a.line + line0}, again at line {b.line + line0}"
        if a.line != b.line
        else f"twice on line {a.line + line0}, columns {a.column + 1} and {b.column + 1}"
    )
    return InputError(
        f"{file}:{b.line + line0}: duplicate key {_short(key)!r} ({where}); "
        "kubectl and the API server reject duplicate fields"
    )


def construct_go(root: yaml.Node, file: str, line0: int = 1) -> Any:
    """Build the JSON value of a checked node graph (see check_node) the way Kubernetes reads it."""
    done: dict[int, Any] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, ready = stack.pop()
        key = id(node)
        if key in done:
            continue
        if isinstance(node, yaml.ScalarNode):
            done[key] = _scalar_value(node, file, line0)
            continue
        if not ready:
            stack.append((node, True))
            if isinstance(node, yaml.MappingNode):
                children = [v for _, v in reversed(node.value)]
            else:
                children = node.value[::-1]
            for c in children:
                # a scalar child is built here rather than visited (most nodes are scalars)
                if type(c) is yaml.ScalarNode:
                    if id(c) not in done:
                        done[id(c)] = _scalar_value(c, file, line0)
                else:
                    stack.append((c, False))
            continue
        if isinstance(node, yaml.SequenceNode):
            done[key] = [done[id(c)] for c in node.value]
            continue
        out: dict[str, Any] = {}
        explicit: dict[str, yaml.Node] = {}
        for k, v in node.value:
            name = _go_key(k, file, line0)
            if name is MERGE:
                sources = v.value if isinstance(v, yaml.SequenceNode) else [v]
                if not all(isinstance(s, yaml.MappingNode) for s in sources):
                    raise InputError(
                        f"{file}:{v.start_mark.line + line0}: invalid YAML: a merge key `<<` "
                        "needs a mapping or a list of mappings"
                    )
                for s in reversed(sources):  # earlier mappings take precedence (go-yaml)
                    out.update(done[id(s)])
                continue
            first = explicit.get(name)
            if first is not None:
                raise _duplicate(file, name, first, k, line0)
            explicit[name] = k
            out[name] = done[id(v)]
        done[key] = out
    return done[id(root)]


def _scalar_value(node: yaml.ScalarNode, file: str, line0: int) -> Any:
    try:
        value = _go_scalar(node)
        if type(value) is int or type(value) is float:
            value = json_number(value)
        return "<<" if value is MERGE else value
    except NotJSON:
        raise InputError(
            f"{file}:{node.start_mark.line + line0}: refused: {_short(node.value)!r} is "
            "not a number JSON can carry (kubectl: json: unsupported value)"
        ) from None
    except InputError as e:
        raise InputError(f"{file}:{node.start_mark.line + line0}: {e.message}") from None


def go_documents(text: str, file: str, line0: int = 1) -> Iterator[tuple[int, Any]]:
    """Yield (line, JSON value) for each non-empty document, decoded as Kubernetes does.

    The careful reader: libyaml composes the nodes (with marks for line numbers), check_node
    refuses recursion, alias bombs, depth and tags JSON cannot carry, construct_go resolves.
    """
    loader = GoLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            line = node.start_mark.line + line0
            check_node(node, file, line0=line0, keys=False)
            yield line, construct_go(node, file, line0)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{file}:{mark.line + line0}:{mark.column + 1}" if mark else file
        problem = e.problem or e.context or "malformed YAML"
        if "maximum nesting depth" in problem:
            problem = f"nested more than {MAX_DEPTH} levels deep"
            raise InputError(f"{where}: refused: {problem}") from None
        raise InputError(f"{where}: invalid YAML: {_short(problem)}") from None
    except yaml.YAMLError as e:
        raise InputError(f"{file}: invalid YAML: {_short(str(e).splitlines()[0])}") from None
    except RecursionError:
        raise InputError(f"{file}: refused: YAML nested too deeply") from None
    finally:
        loader.dispose()

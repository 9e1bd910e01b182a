"""PyYAML, kept off the fast path: the careful loader, line lookups, and dumping."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import yaml

from kai.errors import InputError

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


def _where(file: str, node: yaml.Node) -> str:
    return f"{file}:{node.start_mark.line + 1}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(value: str) -> str:
    """Text from the input, safe in a one-line message: control characters as escapes."""
    return _CONTROL.sub(
        lambda m: m.group().encode("unicode_escape", "backslashreplace").decode(), value
    )


def _short(value: str) -> str:
    return printable(value if len(value) <= 60 else value[:57] + "...")


def check_node(root: yaml.Node, file: str, max_nodes: int = MAX_EXPANDED_NODES) -> bool:
    """Refuse what Kubernetes would not read, before anything is constructed.

    Iterative (no Python recursion) over the node graph: a recursive alias (a node inside
    itself), nesting deeper than MAX_DEPTH, aliases expanding past `max_nodes`, a duplicate
    key (kubectl and the API server reject them, sigs.k8s.io/yaml strict decoding), a null or
    complex key (sigs.k8s.io/yaml: "unsupported map key"), and tags JSON cannot carry
    (!!binary, !!set, !!timestamp, ...). Returns whether some key is a non-string scalar
    (a number or boolean, which Kubernetes turns into its string).
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
            children = _children(node)
            size = 1 + sum(sizes[id(c)][0] for c in children)
            height = 1 + max((sizes[id(c)][1] for c in children), default=0)
            if height > MAX_DEPTH:
                raise InputError(
                    f"{_where(file, node)}: refused: nested {height} levels deep, "
                    f"over the limit of {MAX_DEPTH}"
                )
            if size > max_nodes:
                raise InputError(
                    f"{_where(file, node)}: refused: YAML aliases expand to more than "
                    f"{max_nodes:,} nodes (an alias bomb?)"
                )
            sizes[key] = (size, height)
            continue
        if key in sizes:
            continue  # an alias of a node already checked
        if key in on_path:
            raise InputError(
                f"{_where(file, node)}: refused: a YAML alias refers to a node that contains it "
                "(a recursive structure)"
            )
        tag = node.tag
        if isinstance(node, yaml.ScalarNode):
            if tag not in _JSON_TAGS and tag != _MERGE:
                raise InputError(f"{_where(file, node)}: refused: {_tag_reason(tag)}")
            sizes[key] = (1, 1)
            continue
        if tag not in _JSON_TAGS:
            raise InputError(f"{_where(file, node)}: refused: {_tag_reason(tag)}")
        on_path.add(key)
        stack.append((node, True))
        if isinstance(node, yaml.MappingNode):
            other_keys |= _check_keys(node, file)
        stack.extend((c, False) for c in reversed(_children(node)))
    return other_keys


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


def json_key(key: Any) -> str | None:
    """A non-string key as Kubernetes writes it (sigs.k8s.io/yaml), None if it has no string form."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        if key != key:
            return ".nan"
        if key in (float("inf"), float("-inf")):
            return ".inf" if key > 0 else "-.inf"
        import struct

        # Go formats float keys with 32-bit precision: the shortest text that reads back the same.
        single = struct.unpack("f", struct.pack("f", key))[0]
        for digits in range(1, 10):
            text = f"{single:.{digits}g}"
            if struct.unpack("f", struct.pack("f", float(text)))[0] == single:
                return text.replace("e+0", "e+").replace("e-0", "e-")
        return repr(single)
    return None


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
    """Yield (1-based line, data) for each non-empty YAML document in `text`."""
    loader = KaiLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            line = node.start_mark.line + 1
            other_keys = check_node(node, file)
            data = loader.construct_document(node)
            yield line, string_keys(data, file, line) if other_keys else data
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
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


def dump_all(objs: Iterable[dict[str, Any]]) -> str:
    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump_all(list(objs), Dumper=dumper, sort_keys=False, default_flow_style=False))


def dump(data: Any) -> str:
    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True))

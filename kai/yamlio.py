"""PyYAML, kept off the fast path: the careful loader, line lookups, and dumping."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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


def load_one(text: str) -> Any:
    """One YAML document (rule files, configuration), timestamps kept as strings."""
    return yaml.load(text, Loader=KaiLoader)


def _expanded_size(node: yaml.Node, limit: int) -> int:
    """Size of the node tree with every alias expanded, stopping once past `limit`."""
    memo: dict[int, int] = {}

    def size(n: yaml.Node, depth: int) -> int:
        key = id(n)
        if key in memo:
            return memo[key]
        memo[key] = 1  # guards against recursive (self-referencing) structures
        total = 1
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                total += size(k, depth + 1) + size(v, depth + 1)
                if total > limit:
                    break
        elif isinstance(n, yaml.SequenceNode):
            for v in n.value:
                total += size(v, depth + 1)
                if total > limit:
                    break
        memo[key] = total
        return total

    return size(node, 0)


def _might_alias(text: str) -> bool:
    return "&" in text and "*" in text


def iter_documents(text: str, file: str) -> Iterator[tuple[int, Any]]:
    """Yield (1-based line, data) for each non-empty YAML document in `text`."""
    loader = KaiLoader(text)
    check_aliases = _might_alias(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            line = node.start_mark.line + 1
            if check_aliases and _expanded_size(node, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES:
                raise InputError(
                    f"{file}:{line}: refused: YAML aliases expand to more than "
                    f"{MAX_EXPANDED_NODES:,} nodes (an alias bomb?)"
                )
            yield line, loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark else file
        problem = e.problem or e.context or "malformed YAML"
        raise InputError(f"{where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as e:
        raise InputError(f"{file}: invalid YAML: {str(e).splitlines()[0]}") from None
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

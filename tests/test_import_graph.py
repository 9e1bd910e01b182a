"""kai's own import graph, every import counted (module level and inside functions): no cycles in
kai.policy (issue 16 listed compile <-> crossobject <-> engine)."""

from __future__ import annotations

import ast
from pathlib import Path

import kai

ROOT = Path(kai.__file__).parent


def import_graph() -> dict[str, set[str]]:
    """Module name -> the kai modules it imports (anywhere in its body)."""
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                edges.add(base)
                edges |= {f"{base}.{a.name}" for a in node.names}
        graph[name] = edges
    return {n: {e for e in edges if e in graph and e != n} for n, edges in graph.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    # engine imports compile at module level; compile imports crossobject inside compile_rule.
    assert "kai.policy.compile" in graph["kai.policy.engine"]
    assert "kai.policy.crossobject" in graph["kai.policy.compile"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_in_the_policy_package() -> None:
    """Among kai.policy's own modules (cycles through kai.config/kai.schema are issue 16's)."""
    graph = import_graph()
    policy = {
        n: {e for e in edges if e.startswith("kai.policy")}
        for n, edges in graph.items()
        if n.startswith("kai.policy")
    }
    assert cycles(policy) == []

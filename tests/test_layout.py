"""The layout drawn from kai's own imports: no cycles, and a CLI that holds no cluster or model client.

The graph is built from the source (ast), not by importing, so it sees every import: module-level
and the ones deferred into functions to keep start-up fast (a deferred import still couples two
modules). Imports under `if TYPE_CHECKING:` are left out: they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

KAI = Path(__file__).resolve().parent.parent / "kai"


def _module_name(path: Path) -> str:
    parts = path.relative_to(KAI.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(KAI.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, *, module_level_only: bool = False) -> set[str]:
    """The kai modules one file imports (a `from kai.x import y` names kai.x.y when y is a module)."""
    found: set[str] = set()

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.orelse:
                    visit_stmt(stmt, top)
                continue
            visit_stmt(child, top)

    def visit_stmt(child: ast.AST, top: bool) -> None:
        if isinstance(child, ast.Import) and (top or not module_level_only):
            found.update(a.name for a in child.names if a.name.split(".")[0] == "kai")
        elif isinstance(child, ast.ImportFrom) and (top or not module_level_only):
            base = child.module or ""
            if child.level:  # relative: resolve against this file's package
                pkg = _module_name(path).split(".")
                if path.name != "__init__.py":
                    pkg = pkg[:-1]
                pkg = pkg[: len(pkg) - child.level + 1]
                base = ".".join([*pkg, base] if base else pkg)
            if base.split(".")[0] != "kai":
                return
            for alias in child.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
        nested = isinstance(
            child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
        )
        visit(child, top and not nested)

    visit(ast.parse(path.read_text(encoding="utf-8")), True)
    return {m for m in found if m in MODULES}


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        # importing a package runs its __init__, which is not a dependency on the package's modules
        graph[name] = {m for m in _imports(path) if m != name and not name.startswith(m + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def test_the_graph_sees_deferred_imports() -> None:
    # the CLI defers nearly everything into its commands; the graph must still see those edges
    graph = _graph()
    assert "kai.cluster.flow" in graph["kai.cli"]
    assert "kai.model.client" in graph["kai.cli"] or any(
        "kai.model.client" in graph[m] for m in graph["kai.cli"]
    )


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    cycles = _cycles(_graph())
    assert cycles == [], "import cycles: " + "; ".join(" ↔ ".join(c) for c in cycles)


@pytest.mark.parametrize(
    "client",
    [
        "kai.cluster.client",
        "kai.cluster.flow",
        "kai.cluster.stages",
        "kai.cluster.rollout",
        "kai.model.client",
    ],
)
def test_cli_imports_no_client_at_module_level(client: str) -> None:
    assert client not in _imports(KAI / "cli.py", module_level_only=True)


def test_every_module_belongs_to_a_package_with_a_docstring() -> None:
    for name, path in MODULES.items():
        if path.name == "__init__.py" and name != "kai":
            assert ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))), name


def test_one_approval_enum_serves_the_cli_and_the_gate() -> None:
    from kai import cli
    from kai.ops import gate

    assert vars(cli)["Approval"] is vars(gate)["Approval"]
    assert not any(n.endswith("ApprovalMode") for n in vars(cli))


# ---------- what a start-up loads (run, not parsed: a module-level import anywhere counts) ----------

ROOT = KAI.parent
# Never on the path of a one-file `kai review -o json` nor of `kai --help`: each is tens of ms.
HEAVY = (
    "kai.helm",
    "yaml",
    "ruamel",
    "pydantic",
    "kubernetes",
    "litellm",
    "mcp",
    "rich",
    "jsonschema",
)


def _loaded(args: list[str], env: dict[str, str], codes: tuple[int, ...] = (0,)) -> set[str]:
    """The modules a `python -m kai ARGS` run imported, as -X importtime lists them."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kai", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode in codes, proc.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}


def _heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)}


@pytest.fixture
def run_env(tmp_path: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("KAI_")}
    return {**env, "KAI_CACHE_DIR": str(tmp_path / "cache"), "XDG_CONFIG_HOME": str(tmp_path)}


def test_a_one_file_json_review_loads_nothing_heavy(run_env: dict[str, str]) -> None:
    args = ["review", "-o", "json", "examples/agent-hardened/30-deployment.yaml"]
    # the first run fills the rule cache (it validates the rule files, with pydantic); exit 1:
    # a Deployment alone has findings (no PodDisruptionBudget, ...)
    _loaded(args, run_env, codes=(0, 1))
    loaded = _loaded(args, run_env, codes=(0, 1))
    # it did review and validate (kai.cliparts: the command's body, which kai.direct runs)
    assert {"kai.cliparts", "kai.pipeline", "jsonschema_rs"} <= loaded
    assert _heavy(loaded) == set()


def test_kai_help_from_the_launcher_loads_neither_typer_nor_the_cli(
    run_env: dict[str, str],
) -> None:
    first = _loaded(["--help"], run_env)  # renders it with typer, and keeps the text
    assert "typer" in first and "kai.cli" in first and _heavy(first) == set()
    again = _loaded(["--help"], run_env)
    assert "kai.startup" in again and not {m for m in again if m.startswith(("typer", "kai."))} - {
        "kai.startup"
    }


def _command_bodies() -> dict[str, int]:
    """Each typer command in cli.py (a function decorated with `<app>.command(...)`) and how many
    lines its body holds after the docstring: the options are its signature, not its body."""
    bodies: dict[str, int] = {}
    for node in ast.parse((KAI / "cli.py").read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        decorators = [d.func if isinstance(d, ast.Call) else d for d in node.decorator_list]
        if not any(isinstance(d, ast.Attribute) and d.attr == "command" for d in decorators):
            continue
        body = node.body[1:] if ast.get_docstring(node) else node.body
        bodies[node.name] = (node.end_lineno or node.lineno) - body[0].lineno + 1
    return bodies


def test_every_command_is_options_one_stage_call_and_rendering() -> None:
    # the orchestration lives in the stages (generate.Job, ops.session, learn.critique, ...)
    bodies = _command_bodies()
    assert {"generate", "run_cmd", "debug_cmd", "critique", "policies_export"} <= set(bodies)
    long = {name: n for name, n in bodies.items() if n > 60}
    assert long == {}, f"commands whose body is over 60 lines: {long}"

"""kai.direct: a plain `kai review` or `kai validate` runs without typer, exactly as typer would run it.

Three checks: the option tables are the options typer builds from kai/cli.py; every command line
kai.direct accepts is parsed to the arguments typer passes (the rest it declines, to typer); and a
run through the launcher prints, writes and exits as kai.cli.main does, errors included.
"""

from __future__ import annotations

import copy
import errno
import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, ROOT

from kai import cliparts, direct

DEPLOYMENT = str(EXAMPLES / "agent-hardened" / "30-deployment.yaml")
HARDENED = str(EXAMPLES / "agent-hardened")
CALLBACKS = {"review": "review", "validate": "validate"}


def typer_kwargs(args: list[str]) -> dict[str, Any] | None:
    """The keyword arguments typer passes the command `args` name; None when click refuses."""
    from kai import cli

    got: dict[str, Any] = {}
    lean = copy.copy(cli.app)
    infos = [copy.copy(c) for c in cli.app.registered_commands if c.callback is not None]
    infos = [c for c in infos if c.callback and c.callback.__name__ == CALLBACKS.get(args[0])]
    for info in infos:
        assert info.callback is not None

        @functools.wraps(info.callback)
        def record(**kwargs: Any) -> None:
            got.update(kwargs)

        info.callback = record
    lean.registered_commands = infos
    lean.registered_groups = []
    try:
        lean(args=args, prog_name="kai", standalone_mode=False)
    except Exception:  # a usage error (click's), or a BadParameter
        return None
    return got


def click_params(command: str) -> list[Any]:
    from typer.main import get_command

    from kai import cli

    return list(get_command(cli._app_for([command])).commands[command].params)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", sorted(direct.COMMANDS))
def test_the_tables_are_the_options_typer_builds(command: str) -> None:
    options, defaults = direct.COMMANDS[command]
    seen: dict[str, tuple[str, Any, bool]] = {}
    for p in click_params(command):
        if p.name == "paths" or "--help" in p.opts:
            continue
        if p.is_flag:
            for name in p.opts:
                seen[name] = (p.name, direct._FLAG, True)
            for name in p.secondary_opts:
                seen[name] = (p.name, direct._FLAG, False)
            continue
        if p.multiple:
            kind: Any = direct._LIST
        elif p.type.name == "choice":  # (typer names its types as click does)
            choices = sorted(str(c) for c in p.type.choices)
            kind = next(
                k
                for _, k, _ in options.values()
                if isinstance(k, type) and sorted(k._value2member_map_) == choices
            )
        elif p.type.name == "path":
            kind = direct._PATH
        else:
            assert p.type.name in ("text", "str"), (p.name, p.type)  # (click: text)
            kind = direct._TEXT
        for name in p.opts:
            seen[name] = (p.name, kind, False)
    assert seen == options
    assert typer_kwargs([command, "x.yaml"]) == {"paths": ["x.yaml"], **defaults}


ACCEPTED = [
    ["review", "x.yaml"],
    ["review", "-o", "json", DEPLOYMENT],
    ["review", "a.yaml", "b/", "-", "--output=sarif", "--fail-on", "warning"],
    ["review", "a.yaml", "--enable", "KAI-SEC-001", "--enable", "network", "--disable", "all"],
    ["review", "a.yaml", "--policies", "p", "--crd", "c.yaml", "--crd", "d/"],
    ["review", "-n", "shop", "a.yaml"],
    ["review", "a.yaml", "--namespace=", "--context", "ctx", "--kubeconfig", "-"],
    ["review", "a.yaml", "--explain", "--hide-suppressed", "--no-validate", "--allow-empty"],
    [
        "review",
        "a.yaml",
        "--no-strict",
        "--validator",
        "kubeconform",
        "--kubernetes-version",
        "1.30",
    ],
    ["review", "a.yaml", "--fix", "--baseline", "b.json", "--write-baseline=w.json", "--cluster"],
    ["review", "a.yaml", "--strict", "-o", "junit", "--validator=builtin"],
    ["validate", "a.yaml", "b.yaml"],
    [
        "validate",
        "a.yaml",
        "-o",
        "compact",
        "--no-strict",
        "--crd",
        "c",
        "--kubernetes-version=1.31",
    ],
]

DECLINED = [
    [],
    ["--debug", "review", "a.yaml"],
    ["review"],
    ["review", "-o", "json"],
    ["review", "--help"],
    ["review", "a.yaml", "-h"],
    ["review", "a.yaml", "--"],
    ["review", "--", "-a.yaml"],
    ["review", "a.yaml", "-o"],
    ["review", "a.yaml", "-ojson"],
    ["review", "a.yaml", "-o=json"],
    ["review", "a.yaml", "-o", "JSON"],
    ["review", "a.yaml", "-o", "xml"],
    ["review", "a.yaml", "-o", "json", "-o", "yaml"],
    ["review", "a.yaml", "--strict", "--no-strict"],
    ["review", "a.yaml", "--explain=yes"],
    ["review", "a.yaml", "--explan"],
    ["review", "a.yaml", "--baseline", ""],
    ["review", "a.yaml", "-n", "--explain"],
    ["review", "a.yaml", "--fix", "--fix"],
    ["validate", "a.yaml", "--fail-on", "info"],
    ["validate", "a.yaml", "--enable", "X"],
    ["fix", "a.yaml"],
    ["deploy nginx"],
]


@pytest.mark.parametrize("args", ACCEPTED, ids=" ".join)
def test_an_accepted_command_line_gets_the_arguments_typer_gives(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAI_DEBUG", raising=False)
    monkeypatch.delenv(direct.COMPLETE_VAR, raising=False)
    call = direct.parse(args)
    assert call is not None and call.command == args[0]
    assert call.kwargs == typer_kwargs(args)
    assert [type(v) for v in call.kwargs.values()] == [
        type(v) for v in (typer_kwargs(args) or {}).values()
    ]


@pytest.mark.parametrize("args", DECLINED, ids=" ".join)
def test_anything_else_is_left_to_typer(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAI_DEBUG", raising=False)
    monkeypatch.delenv(direct.COMPLETE_VAR, raising=False)
    assert direct.parse(args) is None


def test_debug_and_completion_requests_are_left_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(direct.COMPLETE_VAR, raising=False)
    monkeypatch.setenv("KAI_DEBUG", "1")
    assert direct.parse(["review", "a.yaml"]) is None
    monkeypatch.delenv("KAI_DEBUG")
    monkeypatch.setenv(direct.COMPLETE_VAR, "complete_bash")
    assert direct.parse(["review", "a.yaml"]) is None
    from kai import cli

    assert direct.COMPLETE_VAR == cli.COMPLETE_VAR


@pytest.fixture
def run_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAI_")}
    return {**env, "KAI_CACHE_DIR": str(tmp_path / "cache"), "XDG_CONFIG_HOME": str(tmp_path)}


def _both(args: list[str], env: dict[str, str], cwd: Path, stdin: str = "") -> list[Any]:
    """(exit code, stdout, stderr) of the launcher and of kai.cli.main (typer) on `args`."""
    runs = []
    for launcher in (
        [sys.executable, "-m", "kai"],
        [sys.executable, "-c", "import sys; from kai.cli import main; main(sys.argv[1:])"],
    ):
        p = subprocess.run(
            [*launcher, *args], capture_output=True, text=True, env=env, cwd=cwd, input=stdin
        )
        runs.append((p.returncode, p.stdout, p.stderr))
    return runs


def test_a_review_through_the_launcher_is_a_review_through_typer(
    run_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**run_env, "PYTHONPATH": str(ROOT)}
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing here\n", encoding="utf-8")
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: [unclosed\n", encoding="utf-8")
    baseline = tmp_path / "baseline.json"
    cases: list[tuple[list[str], str]] = [
        (["review", "-o", "json", DEPLOYMENT], ""),
        (["review", HARDENED, "-o", "sarif", "--fail-on", "warning"], ""),
        (["review", HARDENED, "--disable", "all", "--enable", "KAI-NET-001"], ""),
        (["review", DEPLOYMENT, "--enable", "NO-SUCH-RULE"], ""),
        (["review", DEPLOYMENT, "--write-baseline", str(baseline)], ""),
        (["review", str(empty)], ""),
        (["review", str(empty), "--allow-empty", "-o", "json"], ""),
        (["review", str(broken)], ""),
        (["review", str(tmp_path / "missing.yaml")], ""),
        (["review", "-", "-o", "github"], Path(DEPLOYMENT).read_text(encoding="utf-8")),
        (["review", DEPLOYMENT, "--kubernetes-version", "0.1"], ""),
        (["review", DEPLOYMENT, "--validator", "kubeconform"], ""),
        (["validate", DEPLOYMENT, "-o", "json"], ""),
        (["validate", str(broken)], ""),
    ]
    for args, stdin in cases:
        assert direct.parse(args) is not None, args  # (with KAI_ unset, as in run_env)
        launcher, typer = _both(args, env, tmp_path, stdin)
        assert launcher == typer, args
    assert baseline.is_file()
    assert json.loads(_both(["review", "-o", "json", DEPLOYMENT], env, tmp_path)[0][1])["findings"]


RAISED = [
    KeyboardInterrupt(),
    EOFError(),
    BrokenPipeError(errno.EPIPE, "Broken pipe"),
    OSError(errno.EACCES, "Permission denied"),
    RecursionError(),
    MemoryError(),
    ZeroDivisionError("bad math"),
]


@pytest.mark.parametrize("error", RAISED, ids=lambda e: type(e).__name__)
def test_errors_end_the_run_as_kai_cli_main_ends_it(
    error: BaseException, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kai.cli import main
    from kai.errors import InputError

    monkeypatch.delenv("KAI_DEBUG", raising=False)
    monkeypatch.delenv(direct.COMPLETE_VAR, raising=False)
    args = ["review", "-o", "json", DEPLOYMENT]
    outcomes = []
    for errors in ([error], [InputError("no such file: x.yaml")]):
        for run in (lambda: main(list(args)), lambda: direct.run(direct.parse(args))):  # type: ignore[arg-type]

            def fail(*_a: object, _e: BaseException = errors[0], **_k: object) -> None:
                raise _e

            monkeypatch.setattr(cliparts, "review", fail)
            monkeypatch.setattr(sys, "stdout", sys.stdout)
            monkeypatch.setattr(sys, "stderr", sys.stderr)
            with pytest.raises(SystemExit) as e:
                run()
            outcomes.append((e.value.code, *capsys.readouterr()))
    assert outcomes[0] == outcomes[1] and outcomes[2] == outcomes[3]
    assert outcomes[2][0] == 2 and "no such file: x.yaml" in outcomes[2][2]


def test_a_plain_review_loads_neither_typer_nor_the_heavy_modules(
    run_env: dict[str, str], tmp_path: Path
) -> None:
    """What a one-file review of a plain YAML file imports, dispatched as the launcher does."""
    script = (  # (an atexit callback: the launcher then exits as Python does, and it runs)
        "import atexit, runpy, sys\n"
        "sys.argv = ['kai', 'review', '-o', 'json', sys.argv[1]]\n"
        "atexit.register(lambda: sys.stderr.write('\\n'.join(['AT EXIT', *sorted(sys.modules)])))\n"
        "runpy.run_module('kai', run_name='__main__')\n"
    )
    env = {**run_env, "PYTHONPATH": str(ROOT)}
    for _ in range(2):  # the first run fills the rule cache (with pydantic and PyYAML)
        p = subprocess.run(
            [sys.executable, "-c", script, DEPLOYMENT],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
        )
    lines = p.stderr.splitlines()
    assert p.returncode == 1 and lines[0] == "AT EXIT" and json.loads(p.stdout)["findings"]
    loaded = set(lines[1:])
    assert {"kai.direct", "kai.cliparts", "kai.pipeline", "jsonschema_rs"} <= loaded
    unneeded = ("typer", "click", "kai.cli", "kai.helm", "yaml", "ruamel", "rich", "pydantic")
    assert not {m for m in loaded if m.split(".")[0] in unneeded or m in unneeded}
    assert not {m for m in loaded if any(m.startswith(u + ".") for u in unneeded)}


def test_the_launcher_exits_without_teardown_only_when_nothing_runs_at_exit(
    run_env: dict[str, str], tmp_path: Path
) -> None:
    """direct.finish skips the interpreter's teardown; an atexit callback or a second thread
    (coverage's, a temporary folder's) gets Python's own exit, with the same status and output."""
    launch = "import runpy, sys; sys.argv = ['kai', *sys.argv[1:]]; "
    setups = {
        "plain": "",
        "atexit": "import atexit; atexit.register(lambda: print('at exit ran', file=sys.stderr)); ",
        "thread": "import threading, time; threading.Thread(target=time.sleep, args=(0.2,)).start(); ",
    }
    env = {**run_env, "PYTHONPATH": str(ROOT)}
    for args in (["review", "-o", "json", DEPLOYMENT], ["review", "nothing-here.yaml"]):
        runs = {}
        for name, setup in setups.items():
            p = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    setup + launch + "runpy.run_module('kai', run_name='__main__')",
                    *args,
                ],
                capture_output=True,
                text=True,
                env=env,
                cwd=tmp_path,
            )
            runs[name] = (p.returncode, p.stdout, p.stderr.replace("at exit ran\n", ""))
            assert ("at exit ran" in p.stderr) == (name == "atexit")
        assert runs["plain"] == runs["atexit"] == runs["thread"], args
        assert runs["plain"][0] == (1 if "-o" in args else 2)


def test_a_profiled_review_still_writes_its_profile(
    run_env: dict[str, str], tmp_path: Path
) -> None:
    """`python -m cProfile -o F -m kai review FILE` writes F after kai's main returns: the
    launcher must not skip that with its teardown-free exit."""
    stats = tmp_path / "review.prof"
    p = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(stats), "-m", "kai", "review", DEPLOYMENT],
        capture_output=True,
        text=True,
        env={**run_env, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr  # the hardened example passes
    assert stats.stat().st_size > 0

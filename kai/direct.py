"""`kai review` and `kai validate` run without typer, when their arguments are plain.

Importing typer and building one command's click object cost about 60 ms, a third of a one-file
review. The launcher (kai/__main__.py) asks `parse` first: it reads only the plainest command
lines (the command name first, then options it knows, each once, and file arguments) into the
keyword arguments typer would pass, and declines everything else (None): help, a misspelt or
repeated option, a bad choice, `--`, a value that looks like an option, --debug, KAI_DEBUG or a
shell's completion request. A declined command line goes to kai.cli.main, which parses it with
typer, so every usage error, help text and completion is typer's own. `run` calls the command's
body (kai.cliparts, which kai.cli's commands call too) and reports errors as kai.cli.main does;
`finish`, which the launcher calls, then ends the process without the interpreter's teardown.

tests/test_direct.py checks the tables below against the options typer builds from kai/cli.py,
and that both parse every accepted command line to the same arguments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn

from kai.cliparts import FailOn, Output, Validator

_FLAG = "flag"  # a boolean option: its value is fixed by the name given (--strict, --no-strict)
_TEXT = "text"
_LIST = "list"  # repeatable; each use adds one value
_PATH = "path"
Kind = str | type[StrEnum]

# name on the command line -> (parameter, how its value is read, the value a flag sets)
_REVIEW: dict[str, tuple[str, Kind, bool]] = {
    "--output": ("output", Output, False),
    "-o": ("output", Output, False),
    "--explain": ("explain", _FLAG, True),
    "--fail-on": ("fail_on", FailOn, False),
    "--enable": ("enable", _LIST, False),
    "--disable": ("disable", _LIST, False),
    "--policies": ("policies", _LIST, False),
    "--namespace": ("namespace", _TEXT, False),
    "-n": ("namespace", _TEXT, False),
    "--hide-suppressed": ("hide_suppressed", _FLAG, True),
    "--no-validate": ("no_validate", _FLAG, True),
    "--kubernetes-version": ("kubernetes_version", _TEXT, False),
    "--strict": ("strict", _FLAG, True),
    "--no-strict": ("strict", _FLAG, False),
    "--crd": ("crd", _LIST, False),
    "--validator": ("validator", Validator, False),
    "--cluster": ("cluster", _FLAG, True),
    "--kubeconfig": ("kubeconfig", _TEXT, False),
    "--context": ("context", _TEXT, False),
    "--fix": ("apply_fixes", _FLAG, True),
    "--baseline": ("baseline", _PATH, False),
    "--write-baseline": ("write_baseline", _PATH, False),
    "--allow-empty": ("allow_empty", _FLAG, True),
}
_REVIEW_DEFAULTS: dict[str, Any] = {
    "output": None,
    "explain": False,
    "fail_on": None,
    "enable": None,
    "disable": None,
    "policies": None,
    "namespace": None,
    "hide_suppressed": False,
    "no_validate": False,
    "kubernetes_version": None,
    "strict": True,
    "crd": None,
    "validator": Validator.auto,
    "cluster": False,
    "kubeconfig": None,
    "context": None,
    "apply_fixes": False,
    "baseline": None,
    "write_baseline": None,
    "allow_empty": False,
}
_VALIDATE = {k: v for k, v in _REVIEW.items() if k in ("--output", "-o", "--kubernetes-version")}
_VALIDATE |= {k: v for k, v in _REVIEW.items() if v[0] in ("strict", "crd", "validator")}
_VALIDATE_DEFAULTS = {k: _REVIEW_DEFAULTS[k] for k in ("output", "kubernetes_version")} | {
    k: _REVIEW_DEFAULTS[k] for k in ("strict", "crd", "validator")
}

# command -> (its options, the defaults of the parameters they set)
COMMANDS: dict[str, tuple[dict[str, tuple[str, Kind, bool]], dict[str, Any]]] = {
    "review": (_REVIEW, _REVIEW_DEFAULTS),
    "validate": (_VALIDATE, _VALIDATE_DEFAULTS),
}
COMPLETE_VAR = "_KAI_COMPLETE"  # as kai.cli.COMPLETE_VAR


@dataclass(slots=True)
class Call:
    command: str
    kwargs: dict[str, Any]


def _value(kind: Kind, text: str) -> Any:
    """An option's value as typer converts it; None when typer would refuse it (or might)."""
    if kind == _TEXT:
        return text
    if kind == _LIST:
        return text
    if kind == _PATH:
        return Path(text) if text else None
    assert isinstance(kind, type)
    return kind(text) if text in kind._value2member_map_ else None


def parse(args: list[str]) -> Call | None:
    """`args` (the command line after `kai`) as a command and typer's keyword arguments, or None
    when it is anything but a plain review or validate of files."""
    if COMPLETE_VAR in os.environ or os.environ.get("KAI_DEBUG") or not args:
        return None
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        return None
    options, defaults = COMMANDS[command]
    paths: list[str] = []
    given: dict[str, Any] = {}
    i = 0
    while i < len(rest):
        arg = rest[i]
        i += 1
        if arg == "-" or not arg.startswith("-"):
            paths.append(arg)
            continue
        name, eq, attached = arg.partition("=")
        if eq and not name.startswith("--"):
            return None  # -o=json: click reads "=json"; leave it to click
        spec = options.get(name)
        if spec is None:
            return None
        param, kind, flag_value = spec
        if kind == _FLAG:
            if eq or param in given:
                return None
            given[param] = flag_value
            continue
        if eq:
            text = attached
        elif i < len(rest):
            text = rest[i]
            i += 1
        else:
            return None  # the option's value is missing: click says so
        if text.startswith("-") and text != "-":
            return None
        value = _value(kind, text)
        if value is None:
            return None
        if kind == _LIST:
            given.setdefault(param, []).append(value)
        elif param in given:
            return None
        else:
            given[param] = value
    if not paths:
        return None  # click's "missing argument", or review's own message: either way, kai.cli
    return Call(command, {"paths": paths, **defaults, **given})


def run(call: Call) -> NoReturn:
    """Run a parsed command; errors end the run as in kai.cli.main (one line, the exit code)."""
    import errno

    from kai import cliparts
    from kai.errors import ExitCode, KaiError

    try:
        try:
            if call.command == "review":
                cliparts.review(**call.kwargs)
            cliparts.validate(**call.kwargs)
        except EOFError:  # typer: a newline, then Abort, which kai.cli.main reports as cancelled
            import sys

            sys.stderr.write("\n")
            cliparts.fail("cancelled", ExitCode.CANCELLED)
        except KeyboardInterrupt:  # typer: Exit(130), which kai.cli.main reports as cancelled
            cliparts.fail("cancelled", ExitCode.CANCELLED)
        except OSError as e:  # typer: a closed pipe exits 1 with nothing more written
            if e.errno != errno.EPIPE:
                raise
            _pacify_and_exit()
    except KaiError as e:
        cliparts.fail(e.message, e.exit_code)
    except RecursionError:
        cliparts.fail("input nested too deeply to process", ExitCode.USAGE)
    except MemoryError:
        cliparts.fail("input too large to process in memory", ExitCode.USAGE)
    except Exception as e:  # a bug in kai: as kai.cli.main without --debug
        cliparts.fail(
            f"internal error: {type(e).__name__}: {e} (rerun with --debug and report it)",
            ExitCode.INTERNAL,
        )
    raise AssertionError("the command bodies always exit")  # pragma: no cover


def finish(call: Call) -> NoReturn:
    """`run(call)`, then end the process without tearing the interpreter down: freeing every
    module and object at exit was ~13% of a one-file review's CPU. Only when nothing else would
    run at exit (no atexit callback, such as coverage's or a temporary folder's, and no other
    thread, no profiler or tracer) and the status is a number; otherwise the exit is Python's
    own."""
    import sys

    try:
        run(call)
    except SystemExit as e:
        import atexit
        import threading

        code = e.code
        try:
            quiet = (
                atexit._ncallbacks() == 0
                and threading.active_count() == 1
                and sys.getprofile() is None  # python -m cProfile writes its stats after main
                and sys.gettrace() is None  # a debugger or a tracer
            )
            sys.stdout.flush()  # (what finalizing would write)
            sys.stderr.flush()
        except Exception:  # a private API gone, or a flush that fails: exit as Python does
            quiet = False
        if not quiet or not isinstance(code, int) or isinstance(code, bool):
            raise
        os._exit(code & 0xFF)


def _pacify_and_exit() -> NoReturn:
    """What typer does with EPIPE: stdout and stderr ignore further flush errors; exit 1."""
    import sys
    from typing import TextIO, cast

    try:
        from typer._click.utils import PacifyFlushWrapper
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click.utils import PacifyFlushWrapper  # type: ignore[no-redef]
    sys.stdout = cast(TextIO, PacifyFlushWrapper(sys.stdout))
    sys.stderr = cast(TextIO, PacifyFlushWrapper(sys.stderr))
    raise SystemExit(1)

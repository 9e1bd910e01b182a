"""What kai's start-up needs before anything heavy loads: the cache folder and the help cache.

`kai --help` costs as much as importing typer and building every command's click object (about
10x `python -c pass`), for a text that changes only with kai's version, kai/cli.py, typer and the
terminal's width. The full CLI stores the text it rendered (`store_help`), keyed by all four; the
launcher (kai/__main__.py) prints it from there when the key still matches (`cached_help`) and
otherwise runs the full CLI. Only the standard library's `os` and `sys` are imported here.
"""

from __future__ import annotations

import os
import sys

import kai

HELP_ARGS = (["--help"], ["-h"])
_CLI = os.path.join(os.path.dirname(os.path.abspath(kai.__file__)), "cli.py")


def cache_home() -> str | None:
    """Where kai keeps derived data; None when caching is off (KAI_NO_CACHE=1)."""
    if os.environ.get("KAI_NO_CACHE"):
        return None
    return os.environ.get("KAI_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "kai"
    )


def _stamp(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}:missing"
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def _help_key(typer_file: str) -> str:
    """Everything the root help text depends on. The width: click wraps at the terminal's
    columns (shutil.get_terminal_size: $COLUMNS, else the terminal, else 80)."""
    try:
        columns = str(os.get_terminal_size(sys.__stdout__.fileno()).columns)  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        columns = "-"
    return "\0".join(
        [kai.__version__, _stamp(_CLI), _stamp(typer_file), os.environ.get("COLUMNS", ""), columns]
    )


def _help_file() -> str | None:
    home = cache_home()
    return os.path.join(home, "help-v1.txt") if home else None


def cached_help() -> str | None:
    """The root help text stored by the full CLI, if nothing it depends on has changed."""
    path = _help_file()
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            typer_file, key, text = f.read().split("\n", 2)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return text if key == _help_key(typer_file).replace("\n", " ") else None


def store_help(text: str, typer_file: str) -> None:
    """Keep the root help text the full CLI printed (`typer_file`: typer's module, a key part)."""
    path = _help_file()
    if path is None or "\n" in typer_file:
        return
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{typer_file}\n{_help_key(typer_file).replace(chr(10), ' ')}\n{text}")
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache is no reason to fail

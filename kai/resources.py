"""Locating the knowledge folders (policies/, prompts/, agent/) installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


# Shipped folders whose checkout copy is not at the repository's top level.
_CHECKOUT = {"tasks": "examples/tasks"}


def data_dir(name: str) -> Path:
    """The shipped copy inside the wheel, else the repository's folder."""
    for candidate in (_HERE / "_data" / name, _HERE.parent / _CHECKOUT.get(name, name)):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"kai's {name}/ folder is missing from this installation")

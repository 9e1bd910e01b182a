"""Optional parts of kai (pip extras): a command that needs one that is not installed says which."""

from __future__ import annotations

import importlib.util

from kai.errors import MissingExtraError

# extra name -> the module it provides
EXTRAS = {"cluster": "kubernetes", "mcp": "mcp", "litellm": "litellm"}


def require(extra: str, what: str) -> None:
    """Raise a one-line error naming the extra when its package is not installed."""
    module = EXTRAS[extra]
    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(
            f"{what} needs kai's {extra} extra ({module} is not installed): "
            f"pip install 'kai[{extra}]'"
        )

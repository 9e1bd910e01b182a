"""Loading and filling the templates in prompts/ (never prompt text scattered through code)."""

from __future__ import annotations

import re
import string
from functools import cache

from kai.errors import KaiError
from kai.resources import data_dir

_TURN = re.compile(r"^### (system|user|assistant)\s*$", re.M)


@cache
def template(name: str) -> str:
    path = data_dir("prompts") / f"{name}.txt"
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise KaiError(f"prompt template {path} is missing: {e.strerror}") from None


def render(name: str, **values: str) -> list[dict[str, str]]:
    """The template's turns as chat messages, every placeholder filled (and no unknown one)."""
    text = template(name)
    wanted = {f for _, f, _, _ in string.Formatter().parse(text) if f}
    if wanted != set(values):
        raise KaiError(f"prompt {name}.txt expects {sorted(wanted)}, code gives {sorted(values)}")
    filled = text.format_map(values)
    parts = _TURN.split(filled)
    messages = []
    for role, content in zip(parts[1::2], parts[2::2], strict=True):
        if content.strip():
            messages.append({"role": role, "content": content.strip()})
    return messages

"""Validation at file boundaries: pydantic over kai's dataclasses, imported only when needed.

Rule files and .kai.yaml are validated here (unknown keys are errors, so a typo such as
`severty:` is caught); kai's hot path never imports pydantic.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ConfigDict, TypeAdapter, ValidationError

from kai.config import ReviewConfig
from kai.models import CelCheck, References, Rule, RuleMatch

T = TypeVar("T")

for _cls in (Rule, CelCheck, RuleMatch, References, ReviewConfig):
    setattr(_cls, "__pydantic_config__", ConfigDict(extra="forbid"))  # noqa: B010

_adapters: dict[type[Any], TypeAdapter[Any]] = {}


def validate(cls: type[T], data: Any) -> T:
    """Validate `data` into `cls`; raises ValueError with "path: message" on the first error."""
    adapter = _adapters.get(cls)
    if adapter is None:
        adapter = _adapters[cls] = TypeAdapter(cls)
    try:
        result: T = adapter.validate_python(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "(top level)"
        raise ValueError(f"{loc}: {first['msg']}") from None
    return result

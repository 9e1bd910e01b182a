"""Validation at file boundaries: pydantic over kai's dataclasses, imported only when needed.

Rule files and .kai.yaml are validated here (unknown keys are errors, so a typo such as
`severty:` is caught); kai's hot path never imports pydantic.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from kai.models import CelCheck, References, ReviewConfig, Rule, RuleMatch

T = TypeVar("T")

for _cls in (Rule, CelCheck, RuleMatch, References, ReviewConfig):
    setattr(_cls, "__pydantic_config__", ConfigDict(extra="forbid"))  # noqa: B010

_adapters: dict[type[Any], TypeAdapter[Any]] = {}


def _message(e: ValidationError) -> str:
    first = e.errors()[0]
    loc = ".".join(str(x) for x in first["loc"]) or "(top level)"
    msg = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        msg = "unknown key"
    elif first["type"] == "string_pattern_mismatch" and first["loc"][-1:] == ("namespace",):
        msg = "not a namespace name (lowercase letters, digits and dashes, like team-a)"
    return f"{loc}: {msg}"


def validate(cls: type[T], data: Any) -> T:
    """Validate `data` into `cls`; raises ValueError with "path: message" on the first error."""
    adapter = _adapters.get(cls)
    if adapter is None:
        adapter = _adapters[cls] = TypeAdapter(cls)
    try:
        result: T = adapter.validate_python(data)
    except ValidationError as e:
        raise ValueError(_message(e)) from None
    return result


# ---------- .kai.yaml ----------

# A Kubernetes quantity (resource.Quantity): 250m, 1.5, 512Mi, 2G, 1e3.
_QUANTITY = re.compile(r"([+-]?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?")
_SCALE = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_SCALE |= {"P": 1e15, "E": 1e18}
_SCALE |= {f"{p}i": 1024.0 ** (i + 1) for i, p in enumerate("KMGTPE")}


def quantity_value(value: Any) -> float:
    """The quantity as a number; ValueError naming what is wrong (negative, unreadable)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"must be a quantity such as 250m or 512Mi, not {type(value).__name__}")
    m = _QUANTITY.fullmatch(str(value).strip())
    if not m:
        raise ValueError(
            f"{str(value)[:40]!r} is not a Kubernetes quantity (such as 250m or 512Mi)"
        )
    sign, number, suffix = m.group(1), m.group(2), m.group(3) or ""
    scale = 10.0 ** int(suffix[1:]) if suffix[:1] in ("e", "E") else _SCALE[suffix]
    amount = float(number) * scale
    if sign == "-" and amount != 0:
        raise ValueError(f"{value} is negative: a resource amount is zero or more")
    return amount


def _quantity(value: Any) -> str | int | float:
    quantity_value(value)
    return value  # type: ignore[no-any-return]


Quantity = Annotated[Any, AfterValidator(_quantity)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResourceAmounts(_Strict):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class DefaultResources(_Strict):
    requests: ResourceAmounts | None = None
    limits: ResourceAmounts | None = None

    @model_validator(mode="after")
    def _limit_covers_request(self) -> DefaultResources:
        if self.requests and self.limits:
            for name in ("cpu", "memory"):
                req, lim = getattr(self.requests, name), getattr(self.limits, name)
                if (
                    req is not None
                    and lim is not None
                    and quantity_value(lim) < quantity_value(req)
                ):
                    raise ValueError(
                        f"limits.{name} {lim} is below requests.{name} {req} "
                        "(Kubernetes rejects a limit under its request)"
                    )
        return self


def _non_root(uid: int) -> int:
    if uid == 0:
        raise ValueError("0 is root: give a non-root user id (1 or more), such as 10001")
    return uid


class Defaults(_Strict):
    """What `kai fix` fills in."""

    runAsUser: (
        Annotated[StrictInt, Field(ge=0, le=2147483647), AfterValidator(_non_root)] | None
    ) = None
    runAsGroup: Annotated[StrictInt, Field(ge=0, le=2147483647)] | None = None
    resources: DefaultResources | None = None


_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class ConfigFile(_Strict):
    """The whole of .kai.yaml (and the user config): every key known, every value typed."""

    namespace: Annotated[str, Field(max_length=63, pattern=_DNS_LABEL)] | None = None
    review: ReviewConfig | None = None
    defaults: Defaults | None = None
    approval: Literal["reads-auto", "confirm-all", "suggest-only"] | None = None


def check_config_file(data: dict[str, Any]) -> None:
    """Raise ValueError "key.path: message" for the first wrong key or value."""
    validate(ConfigFile, data)

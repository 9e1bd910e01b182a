"""go-yaml v2.4's scalar resolution and sigs.k8s.io/yaml's key strings, without PyYAML.

Shared by the fast reader (kai.manifests) and the source-reading one (kai.yamlio).
"""

from __future__ import annotations

import re
from typing import Any

_INT64 = 1 << 63
_UINT64 = 1 << 64


class _Merge:
    """go-yaml's merge key `<<`."""


MERGE = _Merge()
_GO_WORDS: dict[str, Any] = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE"), True),
    **dict.fromkeys(("on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE"), False),
    **dict.fromkeys(("off", "Off", "OFF"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), float("nan")),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), float("inf")),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), float("-inf")),
    "<<": MERGE,
}
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+(?:[eE][-+]?[0-9]+)?")
_DIGITS = {2: frozenset("01"), 8: frozenset("01234567"), 10: frozenset("0123456789")}
_DIGITS[16] = frozenset("0123456789abcdefABCDEF")


def _go_uint(s: str) -> int | None:
    """strconv.ParseUint(s, 0, 64): prefixes 0b, 0o, 0x, and a bare leading 0 for octal."""
    if not s:
        return None
    base = 10
    if s[0] == "0":
        prefix = s[1:2].lower()
        if len(s) >= 3 and prefix in ("b", "o", "x"):
            base, s = {"b": 2, "o": 8, "x": 16}[prefix], s[2:]
        else:
            base, s = 8, s[1:]
            if not s:
                return 0
    digits = _DIGITS[base]
    if not all(c in digits for c in s):
        return None
    value = int(s, base)
    return value if value < _UINT64 else None


def _go_int(s: str) -> int | None:
    """strconv.ParseInt(s, 0, 64)."""
    negative = s[:1] == "-"
    body = s[1:] if s[:1] in ("+", "-") else s
    u = _go_uint(body)
    if u is None:
        return None
    if negative:
        return -u if u <= _INT64 else None
    return u if u < _INT64 else None


def go_resolve(s: str) -> Any:
    """What go-yaml v2.4's resolve() makes of an untagged plain scalar decoded into interface{}.

    Returns a str, bool, None, int (an int64, or a uint64 at 2**63 and above), float, or MERGE.
    """
    if s in _GO_WORDS:
        return _GO_WORDS[s]
    c = s[0]
    if c == ".":
        return float(s) if _DOT_FLOAT.fullmatch(s) else s
    if not (c.isdigit() and c.isascii()) and c not in "+-":
        return s
    plain = s.replace("_", "")
    value = _go_int(plain)
    if value is not None:
        return value
    if plain[:1] != "-" and plain[:1] != "+":
        value = _go_uint(plain)
        if value is not None:
            return value
    if _YAML_STYLE_FLOAT.fullmatch(plain):
        f = float(plain)
        if f not in (float("inf"), float("-inf")):  # ParseFloat's range error: a string
            return f
    return s  # go-yaml's 0b/-0b fallbacks only repeat ParseInt, which already failed


class NotJSON(ValueError):
    """A value json.Marshal refuses (NaN, an infinity)."""


def json_number(value: Any) -> Any:
    """A go-yaml number as the API server reads it after encoding/json wrote it."""
    if type(value) is int:
        return value if -_INT64 <= value < _INT64 else float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise NotJSON(value)
    if value == int(value) and abs(value) < 1e21 and -_INT64 <= int(value) < _INT64:
        return int(value)
    return value


def json_key(key: Any) -> str | None:
    """A non-string key as Kubernetes writes it (sigs.k8s.io/yaml), None if it has no string form."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        if key != key:
            return ".nan"
        if key in (float("inf"), float("-inf")):
            return ".inf" if key > 0 else "-.inf"
        return _go_float32_g(key)
    return None


def _go_float32_g(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 32), as sigs.k8s.io/yaml writes a float key."""
    import struct

    single = struct.unpack("f", struct.pack("f", value))[0]
    if abs(single) == float("inf"):  # beyond float32: FormatFloat's "+Inf", keyed ".inf"
        return ".inf" if single > 0 else "-.inf"
    sign, single = ("-", -single) if str(single).startswith("-") else ("", single)
    for precision in range(1, 10):  # the shortest digits that read back as the same float32
        text = f"{single:.{precision - 1}e}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == single:
            break
    mantissa, exponent = text.split("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    exp = int(exponent) if digits != "0" else 0
    if exp < -4 or exp >= 6:  # %e, with at least two exponent digits
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    point = exp + 1
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"

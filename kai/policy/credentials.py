"""What KAI-CFG-003 calls a credential in a ConfigMap, in one place.

The rule (kai.policy.configmaps) reports such an entry and the redactor (kai.model.redact)
replaces its value whole before any model sees the ConfigMap, so the two can never disagree.
The patterns are compiled once: as a CEL rule, cel-expr-python compiled every `matches()`
pattern again on each evaluation (about 35 microseconds a call), which made a review of 110,000
ConfigMaps take minutes.
"""

from __future__ import annotations

import re

_CM_CONTENT = [
    re.compile(r"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----"),
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"),
    re.compile(r"\bxox[abposr]-[0-9A-Za-z-]{10,}"),
    # A signed JWT and a URL with a password are found by _jwt and _url_password below: as
    # regular expressions, Python's backtracking made them quadratic in the value's length.
]
# The JWT pattern \beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,} and the URL
# pattern [A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:[^/\s:@$<{][^/\s@]*@ (RE2 semantics: anywhere in
# the value), decided in time linear in the value's length.
_JWT_RUN = re.compile(r"[A-Za-z0-9_.-]+")
_SEGMENT = re.compile(r"[A-Za-z0-9_-]{10}")
_URL_AFTER = re.compile(r"[^/\s:@]*+:[^/\s:@$<{][^/\s@]*+@")
_SCHEME = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+.-")


def _jwt(value: str) -> bool:
    if ".eyJ" not in value:
        return False
    for run in _JWT_RUN.finditer(value):
        parts = run.group().split(".")
        for i in range(len(parts) - 2):
            head, payload, signature = parts[i], parts[i + 1], parts[i + 2]
            if not (payload.startswith("eyJ") and len(payload) >= 13):
                continue
            if not _SEGMENT.match(signature):
                continue
            # "eyJ" at a word boundary (the segment's start, or after a "-") with 10 more after it
            j = head.find("eyJ")
            while j != -1 and len(head) - j >= 13:
                if j == 0 or head[j - 1] == "-":
                    return True
                j = head.find("eyJ", j + 1)
    return False


def _url_password(value: str) -> bool:
    start = value.find("://")
    while start != -1:
        k = start
        letter = False
        while k > 0 and value[k - 1] in _SCHEME:
            k -= 1
            letter = letter or (value[k].isascii() and value[k].isalpha())
        if letter and _URL_AFTER.match(value, start + 3):
            return True
        start = value.find("://", start + 3)
    return False


_CM_ASSIGN = re.compile(
    r"(?i)(password|passwd|passphrase)[\x22\x27]?\s*[:=]\s*[\x22\x27]?[^\s\x22\x27$<{#]"
)
_CM_UNSET = re.compile(
    r"(?i)(password|passwd|passphrase)[\x22\x27]?\s*[:=]\s*[\x22\x27]?(null|none|nil|~|[*]+)"
    r"[\x22\x27]?\s*[,;]?\s*(#.*)?$"
)
_CM_KEY = re.compile(
    r"(?i)((passw(or)?d|passphrase|secret|token|api[_.-]?key|private[_.-]?key|credentials?"
    r"|access[_.-]?key)$|(^|[._-])id_(rsa|dsa|ecdsa|ed25519)$|[.](key|p12|pfx|jks|keystore)$)"
)
_CM_PLACEHOLDER = re.compile(
    r"(?i)^\s*([\x22\x27]\s*[\x22\x27]|\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\{\{.*\}\}|<[^>]*>|null"
    r"|none|~|[*]+|true|false|yes|no|on|off|enabled|disabled)?\s*$"
)


def _may_hold_content(value: str) -> bool:
    """False only when no _CM_CONTENT pattern can match: each needs one of these literals (a
    substring test is far cheaper than four searches on the 110,000 values of a big review)."""
    return (
        "-----BEGIN " in value
        or "AKIA" in value
        or "ASIA" in value
        or "gh" in value
        or "github_pat_" in value
        or "xox" in value
    )


def configmap_credential(key: str, value: str, binary: bool = False) -> bool:
    """Whether a ConfigMap entry holds what KAI-CFG-003 treats as a credential."""
    if binary:
        return bool(_CM_KEY.search(key)) and value != ""
    if _may_hold_content(value) and any(p.search(value) for p in _CM_CONTENT):
        return True
    if _jwt(value) or _url_password(value):
        return True
    if not value.isascii() or "pass" in value.lower():  # (?i) also folds a few non-ASCII letters
        for line in value.split("\n"):
            if _CM_ASSIGN.search(line) and not _CM_UNSET.search(line):
                return True
    return bool(_CM_KEY.search(key)) and not _CM_PLACEHOLDER.search(value)

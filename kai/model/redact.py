"""Redaction: secrets never leave the machine.

Everything sent to a model passes through `redact_text` (the last gate, in the model client);
objects are additionally scrubbed field by field with `redact_object` before they are rendered
into a prompt, so a Secret's data or a credential-looking env value is replaced even when its
text would not look like a token. Copies of an object hidden inside it (the
`kubectl.kubernetes.io/last-applied-configuration` annotation, or any annotation holding a JSON
object) are parsed, scrubbed the same way and written back.

`mask_secrets` is what a diff shows instead of a Secret's values, as `kubectl diff` masks them:
`***` for every value, `*** (before)` / `*** (after)` where a key's value changes.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from kai.policy.credentials import configmap_credential

PLACEHOLDER = "<redacted>"
MASK = "***"
MASK_BEFORE = "*** (before)"
MASK_AFTER = "*** (after)"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
SECRET_FIELDS = ("data", "stringData")

_SECRET_NAME = re.compile(
    r"(?i)(passw(or)?d|secret|token|api[_-]?key|private[_-]?key|credential|access[_-]?key|auth|bearer|session|cookie|dsn|connection[_-]?string)"
)
# Shapes of credentials, wherever they appear in text.
_TOKENS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    re.compile(r"\bsk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\b(?:ghp|gho|ghu|ghs|ghr|github_pat)_[A-Za-z0-9_]{20,}"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),  # JWT
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{16,}"),
    re.compile(r"(?i)(://[^:/\s]+:)[^@/\s]+(@)"),  # user:password@ in URLs
    re.compile(r"(?i)((?:password|passwd|secret|token|api[_-]?key)\s*[:=]\s*)([^\s,;'\"]{6,})"),
]
# An environment variable with a credential's name and its value, as `kubectl describe` prints
# it ("      DB_PASSWORD:  hunter2") or a program logs it ("DB_PASSWORD=hunter2"). Values
# kubectl shows as references ("<set to the key 'password' in secret 'db'>") are not values.
_CREDENTIAL_VAR = (
    r"[A-Z0-9_]*(?:PASSW(?:OR)?D|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIALS?|ACCESS_?KEY"
    r"|AUTH|SESSION|COOKIE|DSN|CONNECTION_?STRING)[A-Z0-9_]*"
)
_ENV_LINE = re.compile(
    rf"(?m)^([ \t]*\b{_CREDENTIAL_VAR}:[ \t]+)(?!<set to |<redacted>)(\S[^\n]*)$"
)
_ENV_ASSIGN = re.compile(rf"\b({_CREDENTIAL_VAR}=)(?!<redacted>)([^\s,;'\"]+)")
MIN_KNOWN = 6  # a shorter known value is not searched for in free text (it would match anywhere)
_COMMON = {"true", "false", "enabled", "disabled", "required", "optional", "default"}


def searchable(value: str) -> bool:
    """Whether a known secret value is specific enough to be searched for in free text."""
    return len(value) >= MIN_KNOWN and not value.isdigit() and value.lower() not in _COMMON


def redact_text(text: str, known: set[str] | frozenset[str] = frozenset()) -> str:
    """Replace anything shaped like a credential in free text, and every `known` secret value."""
    for value in sorted((k for k in known if searchable(k)), key=len, reverse=True):
        text = text.replace(value, PLACEHOLDER)
    for pattern in _TOKENS:
        if pattern.groups == 2:
            text = pattern.sub(
                lambda m: f"{m.group(1)}{PLACEHOLDER}{m.group(2) if m.group(2) == '@' else ''}",
                text,
            )
        else:
            text = pattern.sub(PLACEHOLDER, text)
    text = _ENV_LINE.sub(lambda m: f"{m.group(1)}{PLACEHOLDER}", text)
    return _ENV_ASSIGN.sub(lambda m: f"{m.group(1)}{PLACEHOLDER}", text)


def _scrub_env(container: dict[str, Any], found: set[str]) -> None:
    for entry in container.get("env") or []:
        value = entry.get("value") if isinstance(entry, dict) else None
        if isinstance(value, str) and value and _SECRET_NAME.search(str(entry.get("name", ""))):
            found.add(value)
            entry["value"] = PLACEHOLDER


def _values(value: Any, found: set[str]) -> None:
    """Every string inside `value` (what a redacted field held), into `found`."""
    if isinstance(value, str):
        found.add(value)
    elif isinstance(value, dict):
        for v in value.values():
            _values(v, found)
    elif isinstance(value, list):
        for v in value:
            _values(v, found)


def _embedded(value: Any, found: set[str]) -> Any:
    """An annotation's value with any object copy inside it redacted; None if it is not one."""
    if not isinstance(value, str) or not value.lstrip().startswith(("{", "[")):
        return None
    try:
        inner = json.loads(value)
    except ValueError:
        return None
    if isinstance(inner, dict) and ("kind" in inner or "apiVersion" in inner):
        return json.dumps(_redact(inner, found), separators=(",", ":"), sort_keys=False)
    return None


def redact_object(obj: Any, found: set[str] | None = None) -> Any:
    """A copy of a Kubernetes object with secret material replaced by placeholders.

    `found`, when given, collects the values that were replaced, so free text (logs, events)
    can be scrubbed of them too."""
    if not isinstance(obj, dict):
        return obj
    return _redact(copy.deepcopy(obj), set() if found is None else found)


def _redact(out: dict[str, Any], found: set[str]) -> dict[str, Any]:
    kind = out.get("kind")
    if kind == "Secret":
        for name in SECRET_FIELDS:
            if isinstance(out.get(name), dict):
                _values(out[name], found)
                out[name] = {k: PLACEHOLDER for k in out[name]}
            elif name in out and out[name] is not None:
                _values(out[name], found)
                out[name] = PLACEHOLDER
    if kind == "ConfigMap":
        for field, binary in (("data", False), ("binaryData", True)):
            entries = out.get(field)
            if not isinstance(entries, dict):
                continue
            for k, v in entries.items():
                if not isinstance(v, str) or not v:
                    continue
                if _SECRET_NAME.search(str(k)) or configmap_credential(str(k), v, binary):
                    found.add(v)
                    entries[k] = PLACEHOLDER
    if kind == "Config" and out.get("apiVersion") == "v1":  # a kubeconfig
        for user in out.get("users") or []:
            if isinstance(user, dict) and isinstance(user.get("user"), dict):
                _values(user["user"], found)
                user["user"] = {k: PLACEHOLDER for k in user["user"]}
        for cluster in out.get("clusters") or []:
            c = cluster.get("cluster") if isinstance(cluster, dict) else None
            if isinstance(c, dict) and "certificate-authority-data" in c:
                c["certificate-authority-data"] = PLACEHOLDER
    if isinstance(out.get("items"), list):  # List, PodList, SecretList, ...
        out["items"] = [_redact(i, found) if isinstance(i, dict) else i for i in out["items"]]
    meta = out.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
        annotations: dict[str, Any] = {}
        for k, v in meta["annotations"].items():
            inner = _embedded(v, found)
            if inner is not None:
                annotations[k] = inner
            elif k == LAST_APPLIED or (
                _SECRET_NAME.search(str(k)) and not str(k).startswith("kai.dev/")
            ):
                if isinstance(v, str) and v:
                    found.add(v)
                annotations[k] = PLACEHOLDER  # a copy kai cannot read is not sent at all
            else:
                annotations[k] = v
        meta["annotations"] = annotations
    from kai.policy.workload import iter_containers, pod_spec

    spec = pod_spec(out)
    if spec is not None:
        for _, _, c in iter_containers(spec[0]):
            _scrub_env(c, found)
    return out


def _masked_field(obj: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    value = obj.get(name) if obj else None
    return dict(value) if isinstance(value, dict) else None


def mask_secrets(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Copies of two versions of an object for a diff, with a Secret's values masked the way
    `kubectl diff` masks them (`***`; `*** (before)` and `*** (after)` where a value changed),
    in `data` and `stringData`. Anything else is returned as it is."""
    if not any(isinstance(o, dict) and o.get("kind") == "Secret" for o in (before, after)):
        return before, after
    b = copy.deepcopy(before) if before else before
    a = copy.deepcopy(after) if after else after
    for name in SECRET_FIELDS:
        old, new = _masked_field(b, name), _masked_field(a, name)
        if old is not None:
            for k in old:
                if new is not None and k in new and new[k] != old[k]:
                    old[k], new[k] = MASK_BEFORE, MASK_AFTER
                else:
                    old[k] = MASK
        if new is not None:
            for k in new:
                if new[k] not in (MASK_AFTER,):
                    new[k] = MASK
        for obj, masked in ((b, old), (a, new)):
            if obj is None:
                continue
            if masked is not None:
                obj[name] = masked
            elif obj.get(name) is not None:
                obj[name] = MASK  # not a map: nothing of it is shown
    return b, a

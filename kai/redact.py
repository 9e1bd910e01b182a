"""Redaction: secrets never leave the machine.

Everything sent to a model passes through `redact_text` (the last gate, in the model client);
objects are additionally scrubbed field by field with `redact_object` before they are rendered
into a prompt, so a Secret's data or a credential-looking env value is replaced even when its
text would not look like a token.
"""

from __future__ import annotations

import copy
import re
from typing import Any

PLACEHOLDER = "<redacted>"

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


def redact_text(text: str) -> str:
    """Replace anything shaped like a credential in free text."""
    for pattern in _TOKENS:
        if pattern.groups == 2:
            text = pattern.sub(
                lambda m: f"{m.group(1)}{PLACEHOLDER}{m.group(2) if m.group(2) == '@' else ''}",
                text,
            )
        else:
            text = pattern.sub(PLACEHOLDER, text)
    return text


def _scrub_env(container: dict[str, Any]) -> None:
    for entry in container.get("env") or []:
        value = entry.get("value") if isinstance(entry, dict) else None
        if isinstance(value, str) and value and _SECRET_NAME.search(str(entry.get("name", ""))):
            entry["value"] = PLACEHOLDER


def redact_object(obj: Any) -> Any:
    """A copy of a Kubernetes object with secret material replaced by placeholders."""
    if not isinstance(obj, dict):
        return obj
    out = copy.deepcopy(obj)
    kind = out.get("kind")
    if kind == "Secret":
        for field in ("data", "stringData"):
            if isinstance(out.get(field), dict):
                out[field] = {k: PLACEHOLDER for k in out[field]}
    if kind == "Config" and out.get("apiVersion") == "v1":  # a kubeconfig
        for user in out.get("users") or []:
            if isinstance(user, dict) and isinstance(user.get("user"), dict):
                user["user"] = {k: PLACEHOLDER for k in user["user"]}
        for cluster in out.get("clusters") or []:
            c = cluster.get("cluster") if isinstance(cluster, dict) else None
            if isinstance(c, dict) and "certificate-authority-data" in c:
                c["certificate-authority-data"] = PLACEHOLDER
    if kind == "List" and isinstance(out.get("items"), list):
        out["items"] = [redact_object(i) for i in out["items"]]
    meta = out.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
        meta["annotations"] = {
            k: (
                PLACEHOLDER
                if _SECRET_NAME.search(str(k)) and not str(k).startswith("kai.dev/")
                else v
            )
            for k, v in meta["annotations"].items()
        }
    from kai.policy.workload import iter_containers, pod_spec

    found = pod_spec(out)
    if found is not None:
        for _, _, c in iter_containers(found[0]):
            _scrub_env(c)
    return out

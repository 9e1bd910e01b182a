"""Objects as the API server decodes them, before any rule looks at them.

The API server decodes JSON into typed Go structs: a key whose value is null is simply unset
(`securityContext:` with nothing after it, `resources: ~`), and a null element of a list becomes
the element type's zero value: an empty object in a list of objects (`containers: [null]` is a
container with no fields, which validation then rejects), an empty string in a list of strings.
kai's YAML reader keeps JSON nulls; CEL's `has()` is true for them and the next field access
fails, so without this step a null could hide a finding. Rules therefore see normalized objects.
"""

from __future__ import annotations

from typing import Any

# Lists whose elements are objects in the Kubernetes API: an all-null list of one of these
# decodes to empty objects, anything else to empty strings.
OBJECT_LISTS = frozenset(
    {
        "containers",
        "initContainers",
        "ephemeralContainers",
        "ports",
        "env",
        "envFrom",
        "volumes",
        "volumeMounts",
        "volumeDevices",
        "rules",
        "subjects",
        "ingress",
        "egress",
        "from",
        "to",
        "matchExpressions",
        "matchFields",
        "nodeSelectorTerms",
        "tolerations",
        "topologySpreadConstraints",
        "metrics",
        "tls",
        "paths",
        "items",
        "hostAliases",
        "imagePullSecrets",
        "readinessGates",
        "resourceClaims",
        "requiredDuringSchedulingIgnoredDuringExecution",
        "preferredDuringSchedulingIgnoredDuringExecution",
        "sysctls",
        "conditions",
        "ownerReferences",
        "managedFields",
        "webhooks",
        "versions",
        "containerStatuses",
    }
)


def _list(items: list[Any], key: str | None) -> tuple[list[Any], bool]:
    changed = False
    out: list[Any] = []
    objects = key in OBJECT_LISTS or any(isinstance(i, dict) for i in items)
    for item in items:
        if item is None:
            out.append({} if objects else "")
            changed = True
        else:
            new, c = _value(item, None)
            out.append(new)
            changed |= c
    return (out, True) if changed else (items, False)


def _dict(obj: dict[Any, Any]) -> tuple[dict[Any, Any], bool]:
    changed = False
    out: dict[Any, Any] = {}
    for k, v in obj.items():
        if v is None:
            changed = True
            continue
        new, c = _value(v, k if isinstance(k, str) else None)
        out[k] = new
        changed |= c
    return (out, True) if changed else (obj, False)


def _value(value: Any, key: str | None) -> tuple[Any, bool]:
    if isinstance(value, dict):
        return _dict(value)
    if isinstance(value, list):
        return _list(value, key)
    return value, False


def decoded(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` with null-valued keys dropped and null list elements set to their zero value,
    recursively; the same object (not a copy) when it holds no null."""
    new, _ = _dict(obj)
    return new

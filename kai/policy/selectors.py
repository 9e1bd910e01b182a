"""Label selector semantics exactly as Kubernetes applies them."""

from __future__ import annotations

from typing import Any


def _expression_matches(expr: Any, labels: dict[str, str]) -> bool:
    if not isinstance(expr, dict):
        return False
    key = expr.get("key")
    op = expr.get("operator")
    raw = expr.get("values", [])
    if not isinstance(raw, list) or not isinstance(key, str):
        return False  # rejected by the API server: selects nothing
    values = [str(v) for v in raw]
    # The API requires values for In/NotIn and none for Exists/DoesNotExist; a selector that breaks
    # this is rejected, and a rejected object selects nothing.
    if (op in ("In", "NotIn")) != bool(values):
        return False
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False  # an unknown operator is rejected by the API server; it selects nothing


def label_selector_matches(selector: Any, labels: dict[str, str]) -> bool:
    """metav1.LabelSelector: matchLabels AND matchExpressions; `{}` selects everything.

    A missing (None) selector selects nothing, as for a PDB or a NetworkPolicy peer.
    """
    if not isinstance(selector, dict):
        return False
    match_labels = selector.get("matchLabels", {})
    if not isinstance(match_labels, dict):
        return False
    for k, v in match_labels.items():
        if labels.get(str(k)) != str(v):
            return False
    exprs = selector.get("matchExpressions", [])
    if not isinstance(exprs, list):
        return False
    return all(_expression_matches(e, labels) for e in exprs)


def describe_labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<no labels>"

"""KAI-CFG-003: credentials inside ConfigMaps, found by content (kai.policy.credentials).

A per-object check in Python rather than CEL for speed alone: the patterns are compiled once
here, where cel-expr-python compiled each `matches()` pattern again on every evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator

from kai.models import Manifest
from kai.policy.context import Context, Hit
from kai.policy.credentials import configmap_credential
from kai.policy.crossobject import check

_MESSAGE = (
    "ConfigMap {name} holds what looks like a credential under {section} key {key!r} (a private "
    "key, a token or a password; the value is not shown): move it to a Secret and rotate it"
)


@check("configmap-credentials", kinds=("ConfigMap",))
def configmap_credentials(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """The first data or binaryData entry that looks like a credential (one finding per
    ConfigMap: the remedy, a Secret, is the same for every entry). A section that is not a
    mapping, and a value that is not a string, are the schema rules' concern."""
    for section, binary in (("data", False), ("binaryData", True)):
        entries = m.obj.get(section)
        if not isinstance(entries, dict):
            continue
        for key, value in entries.items():
            if isinstance(value, str) and configmap_credential(str(key), value, binary):
                yield Hit(_MESSAGE.format(name=m.ref.name, section=section, key=str(key)), section)
                return

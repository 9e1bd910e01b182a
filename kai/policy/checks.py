"""Every cross-object check, registered: the core ones (crossobject), the replica count
(replicas), the references a pod or binding names (references) and credentials in ConfigMaps
(configmaps: Python only for speed).

Each of those modules registers its checks with `crossobject.check`; importing this module loads
them all, so a consumer (the rule compiler, the cluster stages) sees the whole registry and no
check module has to import another one back.
"""

from __future__ import annotations

from kai.policy import configmaps, references, replicas  # noqa: F401  (importing registers their checks)
from kai.policy.crossobject import CHECKS, KINDS, NEEDS_POD, READS

__all__ = ["CHECKS", "KINDS", "NEEDS_POD", "READS"]

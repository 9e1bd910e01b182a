"""Manifests and audit-log checks shared by the cluster tier's tests."""

from __future__ import annotations

import re
from typing import Any, TypeVar

REVIEWS = {"selfsubjectaccessreviews", "selfsubjectrulesreviews", "subjectaccessreviews"}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
T = TypeVar("T")


def present(value: T | None) -> T:
    """A field the kubernetes client types as optional (status, spec, metadata) that the server
    has set on the object read back: the test fails here when it has not."""
    assert value is not None
    return value


def deployment(
    name: str,
    namespace: str,
    image: str = "nginx:1.27",
    replicas: int = 1,
    cpu: str = "100m",
    extra_spec: str = "",
) -> str:
    """A Deployment that passes the restricted Pod Security level."""
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {namespace}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      securityContext: {{runAsNonRoot: true, runAsUser: 10001, seccompProfile: {{type: RuntimeDefault}}}}
      containers:
        - name: main
          image: {image}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {{drop: [ALL]}}
          resources: {{requests: {{cpu: {cpu}, memory: 64Mi}}, limits: {{memory: 64Mi}}}}
{extra_spec}"""


def configmap(name: str, namespace: str, **data: str) -> str:
    body = "".join(f"  {k}: {v!r}\n" for k, v in data.items()) or "  k: v\n"
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n{body}"


def writes(events: list[dict[str, Any]]) -> list[str]:
    """The real (not dry-run) writes in audit events, as "verb resource/name"."""
    out = []
    for e in events:
        ref = e.get("objectRef") or {}
        if e.get("verb") not in WRITE_VERBS or ref.get("resource") in REVIEWS:
            continue
        if _dry(e):
            continue
        out.append(f"{e['verb']} {ref.get('resource')}/{ref.get('name', '')}")
    return out


def dry_runs(events: list[dict[str, Any]]) -> list[str]:
    return [f"{e['verb']} {(e.get('objectRef') or {}).get('resource')}" for e in events if _dry(e)]


def _dry(event: dict[str, Any]) -> bool:
    if re.search(r"[?&]dryRun=All", event.get("requestURI", "")):
        return True
    return "All" in ((event.get("requestObject") or {}).get("dryRun") or [])


def one_line(text: str) -> str:
    """Rich may wrap long lines; tests compare the words, not the line breaks."""
    return re.sub(r"\s+", " ", text)

"""The cluster client: kubeconfig, discovery, server-side apply (dry-run and real), reads, access reviews.

Only `kai apply` (and `kai generate --apply`) import this module, and with it the official
kubernetes client (~0.8 s). Requests go through the client's ApiClient at the HTTP level so that
what the API server says is kept whole: `Status` bodies with their causes, and `Warning: 299`
headers (Pod Security admission, deprecations), which the typed API methods drop.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from kai.errors import ClusterError

FIELD_MANAGER = "kai"
_WARNING = re.compile(r'\d{3} [^ ]+ "((?:[^"\\]|\\.)*)"')


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, list[str]]
    data: Any

    def warnings(self) -> list[str]:
        out = []
        for value in self.headers.get("warning", []):
            out += [m.group(1).replace('\\"', '"') for m in _WARNING.finditer(value)]
        return out


@dataclass(slots=True)
class ServerResult:
    """What the server answered to one (dry-run) apply of one object."""

    status: int
    obj: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    conflict: bool = False


def _status_message(data: Any, fallback: str) -> tuple[str, bool]:
    """A Status object as one clear line (each cause with its field path); and whether it is a conflict."""
    if not isinstance(data, dict) or data.get("kind") != "Status":
        return fallback, False
    reason = data.get("reason") or ""
    message = str(data.get("message") or fallback)
    causes = (data.get("details") or {}).get("causes") or []
    if reason == "Invalid" and causes:
        parts = [
            f"{c.get('field', '?')}: {c.get('message', '')}".strip()
            for c in causes
            if isinstance(c, dict)
        ]
        return "invalid: " + "; ".join(parts), False
    if reason == "Conflict" and causes:
        owners = [
            f"{c.get('field', '?')} is owned by {c.get('message', '').replace('conflict with ', '')}"
            for c in causes
            if isinstance(c, dict)
        ]
        return "conflict with another field manager: " + "; ".join(
            owners
        ) + " (use --force-conflicts to take these fields)", True
    if reason == "Forbidden" and "PodSecurity" in message:
        return f"rejected by Pod Security admission: {message}", False
    return message, reason == "Conflict"


class Cluster:
    """One cluster, as a kubeconfig context (or the in-cluster service account) selects it."""

    def __init__(
        self,
        kubeconfig: str | None = None,
        context: str | None = None,
        namespace: str | None = None,
    ) -> None:
        from kai.extras import require

        require("cluster", "talking to a cluster")
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        self.context = context or "(in-cluster)"
        file_namespace = None
        # The client reads KUBECONFIG once, at import: read it now, so a long-running process
        # (kai mcp) and every later call see the current value (several files, os.pathsep-joined).
        kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or None
        try:
            config.load_kube_config(config_file=kubeconfig, context=context)
            contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
            chosen = (
                next((c for c in contexts if c["name"] == context), active) if context else active
            )
            self.context = chosen["name"]
            file_namespace = chosen.get("context", {}).get("namespace")
        except (
            ConfigException,
            OSError,
            TypeError,
            KeyError,
            AttributeError,
            ValueError,
        ) as kube_error:
            try:
                config.load_incluster_config()
            except ConfigException:
                where = kubeconfig or "KUBECONFIG or ~/.kube/config"
                reason = (str(kube_error).splitlines() or [type(kube_error).__name__])[0]
                if isinstance(kube_error, (TypeError, KeyError, AttributeError, ValueError)):
                    reason = "not a kubeconfig (a YAML mapping of clusters, users and contexts)"
                raise ClusterError(f"no cluster configured: {where}: {reason}") from None
        self.api = client.ApiClient()
        self.server = str(self.api.configuration.host)
        self.namespace = namespace or file_namespace or "default"
        self._resources: dict[str, dict[str, tuple[str, bool]]] = {}

    # ---------- HTTP ----------

    def call(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Response:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            params = self.api.param_serialize(
                method,
                path,
                query_params=list((query or {}).items()),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            raw = self.api.call_api(*params)
            status, resp_headers, text = raw.status, raw.headers, raw.read()
        except ApiException as e:
            status, resp_headers, text = int(e.status or 0), e.headers or {}, e.body
        except (HTTPError, OSError) as e:
            reason = str(getattr(e, "reason", e)).splitlines()[0]
            raise ClusterError(
                f"cannot reach the cluster (context {self.context}, server {self.server}): {reason}"
            ) from None
        try:
            data = json.loads(text) if text else None
        except (ValueError, TypeError):
            data = text.decode(errors="replace") if isinstance(text, bytes) else text
        getlist = getattr(resp_headers, "getlist", None)
        names = {str(k).lower() for k in resp_headers}
        merged = {
            n: (
                getlist(n)
                if getlist
                else [v for k, v in resp_headers.items() if str(k).lower() == n]
            )
            for n in names
        }
        return Response(status, merged, data)

    # ---------- discovery and paths ----------

    def resources(self, api_version: str) -> dict[str, tuple[str, bool]]:
        """kind -> (plural, namespaced) for a group/version, from the server's discovery document."""
        if api_version not in self._resources:
            path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            r = self.call("GET", path)
            if r.status == 404:
                raise ClusterError(
                    f"the server does not serve {api_version} (is its CustomResourceDefinition installed?)"
                )
            if r.status >= 300 or not isinstance(r.data, dict):
                raise ClusterError(
                    f"discovery of {api_version} failed ({r.status}): {_status_message(r.data, str(r.data))[0]}"
                )
            self._resources[api_version] = {
                res["kind"]: (res["name"], bool(res.get("namespaced")))
                for res in r.data.get("resources", [])
                if "/" not in res.get("name", "")
            }
        return self._resources[api_version]

    def path(self, obj: dict[str, Any], with_name: bool = True) -> str:
        api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
        found = self.resources(api_version).get(kind)
        if found is None:
            raise ClusterError(f"the server does not know {kind} in {api_version}")
        plural, namespaced = found
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        if namespaced:
            ns = (obj.get("metadata") or {}).get("namespace") or self.namespace
            base += f"/namespaces/{ns}"
        name = (obj.get("metadata") or {}).get("name", "")
        return f"{base}/{plural}/{name}" if with_name else f"{base}/{plural}"

    def namespaced(self, obj: dict[str, Any]) -> bool:
        return self.resources(str(obj.get("apiVersion"))).get(str(obj.get("kind")), ("", True))[1]

    # ---------- operations ----------

    def get(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        r = self.call("GET", self.path(obj))
        if r.status == 404:
            return None
        if r.status >= 300:
            raise ClusterError(
                f"reading {obj.get('kind')}/{(obj.get('metadata') or {}).get('name')} failed ({r.status}): {_status_message(r.data, str(r.data))[0]}"
            )
        return r.data if isinstance(r.data, dict) else None

    def apply(self, obj: dict[str, Any], dry_run: bool, force: bool = False) -> ServerResult:
        """Server-side apply (field manager kai, strict field validation), optionally as a dry run."""
        query = {"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict"}
        if dry_run:
            query["dryRun"] = "All"
        if force:
            query["force"] = "true"
        body = dict(obj)
        if self.namespaced(obj):
            body["metadata"] = {
                **(obj.get("metadata") or {}),
                "namespace": (obj.get("metadata") or {}).get("namespace") or self.namespace,
            }
        r = self.call(
            "PATCH", self.path(obj), query, json.dumps(body), "application/apply-patch+yaml"
        )
        if r.status < 300:
            return ServerResult(
                r.status, r.data if isinstance(r.data, dict) else None, r.warnings()
            )
        message, conflict = _status_message(r.data, f"HTTP {r.status}")
        return ServerResult(r.status, None, r.warnings(), message, conflict)

    def can_i(self, verb: str, api_version: str, kind: str, namespace: str | None) -> bool:
        """A SelfSubjectAccessReview: may the current identity `verb` this kind here?"""
        group = api_version.split("/")[0] if "/" in api_version else ""
        plural = self.resources(api_version).get(kind, (kind.lower() + "s", True))[0]
        attrs: dict[str, Any] = {"verb": verb, "group": group, "resource": plural}
        if namespace:
            attrs["namespace"] = namespace
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs},
        }
        r = self.call("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=review)
        if r.status >= 300 or not isinstance(r.data, dict):
            return True  # the review API itself is unavailable: let the dry run speak
        return bool((r.data.get("status") or {}).get("allowed"))


# Kinds kai reads from a namespace: what cross-object rules look at, never Secrets.
LIVE_KINDS = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("v1", "ConfigMap"),
    ("networking.k8s.io/v1", "Ingress"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
)


def live_objects(
    cluster: Cluster, namespace: str, kinds: tuple[tuple[str, str], ...] = LIVE_KINDS
) -> list[dict[str, Any]]:
    """Every object of `kinds` in `namespace`, as the server stores it (read-only; Secrets never read)."""
    out: list[dict[str, Any]] = []
    for api_version, kind in kinds:
        try:
            found = cluster.resources(api_version).get(kind)
        except ClusterError:
            continue  # a group this cluster does not serve
        if found is None:
            continue
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        r = cluster.call("GET", f"{base}/namespaces/{namespace}/{found[0]}")
        if r.status == 403:
            continue  # not allowed to list it: review what we can see
        if r.status >= 300 or not isinstance(r.data, dict):
            raise ClusterError(f"listing {found[0]} in {namespace} failed ({r.status})")
        for item in r.data.get("items", []):
            out.append({"apiVersion": api_version, "kind": kind, **item})
    return out

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


def load_kubeconfig(
    kubeconfig: str | None, context: str | None, configuration: Any
) -> dict[str, Any]:
    """Load one context into `configuration` by kubectl's merge rules; the chosen context entry.

    With several files (KUBECONFIG=a:b), kubectl takes each cluster, user and context from the
    first file that names it, and current-context from the first file that sets one. The
    client merges the maps the same way but lets the last file's current-context win, so the
    two would act as different identities in the same shell: fix that one value here.
    """
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import (
        KUBE_CONFIG_DEFAULT_LOCATION,
        KubeConfigLoader,
        KubeConfigMerger,
    )

    merged = KubeConfigMerger(kubeconfig or KUBE_CONFIG_DEFAULT_LOCATION)
    if merged.config is None:
        raise ConfigException("Invalid kube-config file. No configuration found.")
    current = next(
        (
            merged.config_files[p]["current-context"]
            for p in merged.paths
            if isinstance(merged.config_files.get(p), dict)
            and merged.config_files[p].get("current-context")
        ),
        None,
    )
    if current:
        merged.config.value["current-context"] = current
    else:
        merged.config.value.pop("current-context", None)
    loader = KubeConfigLoader(
        config_dict=merged.config, config_base_path=None, active_context=context
    )
    loader.load_and_set(configuration)
    chosen = loader.current_context
    return dict(getattr(chosen, "value", chosen) or {})


class NotServed(ClusterError):
    """The server does not serve this group/version or kind (a CRD not installed, yet)."""


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
        configuration = client.Configuration()
        # The client reads KUBECONFIG once, at import: read it now, so a long-running process
        # (kai mcp) and every later call see the current value (several files, os.pathsep-joined).
        kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or None
        try:
            chosen = load_kubeconfig(kubeconfig, context, configuration)
            self.context = str(chosen.get("name"))
            file_namespace = (chosen.get("context") or {}).get("namespace")
        except (
            ConfigException,
            OSError,
            TypeError,
            KeyError,
            AttributeError,
            ValueError,
        ) as kube_error:
            try:
                config.load_incluster_config(client_configuration=configuration)
            except ConfigException:
                where = kubeconfig or "KUBECONFIG or ~/.kube/config"
                reason = (str(kube_error).splitlines() or [type(kube_error).__name__])[0]
                if isinstance(kube_error, (TypeError, KeyError, AttributeError, ValueError)):
                    reason = "not a kubeconfig (a YAML mapping of clusters, users and contexts)"
                raise ClusterError(f"no cluster configured: {where}: {reason}") from None
        self.api = client.ApiClient(configuration)
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
                raise NotServed(
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

    def forget(self, api_version: str | None = None) -> None:
        """Drop cached discovery (after a CRD is established, its group appears)."""
        if api_version is None:
            self._resources.clear()
        else:
            self._resources.pop(api_version, None)

    def path(self, obj: dict[str, Any], with_name: bool = True) -> str:
        api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
        found = self.resources(api_version).get(kind)
        if found is None:
            raise NotServed(f"the server does not know {kind} in {api_version}")
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

    def can_i(
        self,
        verb: str,
        api_version: str,
        kind: str,
        namespace: str | None,
        plural: str | None = None,
    ) -> bool:
        """A SelfSubjectAccessReview: may the current identity `verb` this kind here?"""
        group = api_version.split("/")[0] if "/" in api_version else ""
        if plural is None:
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
    ("v1", "Pod"),  # only the bare ones: a controller's pods are reviewed through the controller
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


@dataclass(slots=True)
class LiveRead:
    """What kai could read of one namespace: the objects, and the kinds it was not allowed to list."""

    namespace: str
    objects: list[dict[str, Any]] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # kind -> the server's reason
    exists: bool | None = None  # None: the identity may not read the Namespace object


def _one_line(data: Any, status: int) -> str:
    return _status_message(data, f"HTTP {status}")[0].splitlines()[0] if data else f"HTTP {status}"


def live_objects(
    cluster: Cluster, namespace: str, kinds: tuple[tuple[str, str], ...] = LIVE_KINDS
) -> LiveRead:
    """Every object of `kinds` in `namespace`, as the server stores it (read-only; Secrets never read).

    Kinds the identity may not list are named in `unreadable`, never silently skipped: rules that
    depend on them cannot be decided. Unreachable servers and other failures raise ClusterError.
    """
    out = LiveRead(namespace)
    ns = cluster.call("GET", f"/api/v1/namespaces/{namespace}")
    if ns.status == 404:
        out.exists = False
        return out  # nothing can live in it
    if ns.status < 300:
        out.exists = True
    elif ns.status != 403:  # a restricted identity may list in a namespace it cannot get
        raise ClusterError(
            f"reading namespace {namespace} failed ({ns.status}): {_one_line(ns.data, ns.status)}"
        )
    for api_version, kind in kinds:
        try:
            found = cluster.resources(api_version).get(kind)
        except NotServed:
            continue  # a group this cluster does not serve: no such objects can exist
        if found is None:
            continue
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        r = cluster.call("GET", f"{base}/namespaces/{namespace}/{found[0]}")
        if r.status in (401, 403):
            out.unreadable[kind] = _one_line(r.data, r.status)
            continue
        if r.status >= 300 or not isinstance(r.data, dict):
            raise ClusterError(
                f"listing {found[0]} in {namespace} failed ({r.status}): {_one_line(r.data, r.status)}"
            )
        for item in r.data.get("items", []):
            if kind == "Pod" and _owned(item):
                continue
            out.objects.append({"apiVersion": api_version, "kind": kind, **item})
    return out


def _owned(item: Any) -> bool:
    """A pod a controller made (a ReplicaSet's, a Job's, a DaemonSet's...): its template is
    reviewed on the controller, so reviewing each of its pods would only repeat the findings."""
    meta = item.get("metadata") if isinstance(item, dict) else None
    owners = meta.get("ownerReferences") if isinstance(meta, dict) else None
    return bool(owners)

"""A small stand-in for kube-apiserver, used only to record tests/cassettes/cluster/*.yaml.

It answers the requests kai makes exactly in the API server's wire format (discovery
APIResourceLists, SelfSubjectAccessReview, server-side apply with dryRun, `Status` errors with
causes, `Warning: 299` headers), following the Kubernetes API reference. The tests replay the
recorded exchanges with vcrpy; this server never runs in CI.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml

GROUPS: dict[str, list[tuple[str, str, bool]]] = {
    "v1": [
        ("namespaces", "Namespace", False),
        ("serviceaccounts", "ServiceAccount", True),
        ("configmaps", "ConfigMap", True),
        ("secrets", "Secret", True),
        ("services", "Service", True),
        ("pods", "Pod", True),
    ],
    "apps/v1": [
        ("deployments", "Deployment", True),
        ("statefulsets", "StatefulSet", True),
        ("daemonsets", "DaemonSet", True),
    ],
    "networking.k8s.io/v1": [
        ("ingresses", "Ingress", True),
        ("networkpolicies", "NetworkPolicy", True),
    ],
    "autoscaling/v2": [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "batch/v1": [("jobs", "Job", True), ("cronjobs", "CronJob", True)],
    "rbac.authorization.k8s.io/v1": [
        ("roles", "Role", True),
        ("rolebindings", "RoleBinding", True),
    ],
    "monitoring.example.com/v1": [("widgets", "Widget", True)],
}
PLURAL = {plural: (gv, kind, ns) for gv, items in GROUPS.items() for plural, kind, ns in items}


def status(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


def defaulted(obj: dict[str, Any]) -> dict[str, Any]:
    """What the server stores: defaults filled in, metadata it manages added."""
    out = copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    meta.setdefault(
        "uid", str(uuid.uuid5(uuid.NAMESPACE_URL, f"{out.get('kind')}/{meta.get('name')}"))
    )
    meta.setdefault("resourceVersion", "48213")
    meta.setdefault("generation", 1)
    meta.setdefault("creationTimestamp", "2026-11-24T19:02:11Z")
    meta["managedFields"] = [
        {
            "manager": "kai",
            "operation": "Apply",
            "apiVersion": out.get("apiVersion"),
            "time": "2026-11-24T19:02:11Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {}},
        }
    ]
    if out.get("kind") == "Deployment":
        spec = out.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("replicas", 1)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("revisionHistoryLimit", 10)
        pod = spec.get("template", {}).setdefault("spec", {})
        pod.setdefault("dnsPolicy", "ClusterFirst")
        pod.setdefault("restartPolicy", "Always")
        pod.setdefault("schedulerName", "default-scheduler")
        pod.setdefault("terminationGracePeriodSeconds", 30)
        for c in pod.get("containers", []):
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
        out["status"] = {}
    if out.get("kind") == "Service":
        spec = out.setdefault("spec", {})
        spec.setdefault("clusterIP", "10.96.112.40")
        spec.setdefault("clusterIPs", ["10.96.112.40"])
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        out["status"] = {"loadBalancer": {}}
    return out


class Scenario:
    """What the fake server does differently from "everything is allowed and new"."""

    def __init__(
        self,
        live: list[dict[str, Any]] | None = None,
        deny: set[tuple[str, str]] | None = None,
        fail: dict[tuple[str, str, bool], tuple[int, dict[str, Any]]] | None = None,
        warn: dict[str, list[str]] | None = None,
        missing_namespaces: set[str] | None = None,
        conflict: dict[str, tuple[str, str]] | None = None,
        rollout: dict[str, list[dict[str, Any]]] | None = None,
        lists: dict[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        self.store = {(o["kind"], o["metadata"]["name"]): defaulted(o) for o in live or []}
        self.deny = deny or set()  # (verb, plural)
        self.fail = fail or {}  # (kind, name, dry_run) -> (status, body)
        self.warn = warn or {}  # kind -> warnings
        self.missing_namespaces = missing_namespaces or set()
        self.conflict = conflict or {}  # name -> (manager, field)
        self.rollout = (
            rollout or {}
        )  # workload name -> successive .status values after it is applied
        self.lists = lists or {}  # "pods" | "events" | "replicasets" -> items
        self.applied: set[str] = set()


def handler(scenario: Scenario) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # fixed Date and Server headers, so build_cluster.py reproduces its cassettes byte for
        # byte on any machine
        def version_string(self) -> str:
            return "fake-apiserver (tests/cassettes/fake_apiserver.py)"

        def date_time_string(self, timestamp: float | None = None) -> str:
            return "Thu, 01 Jan 2026 00:00:00 GMT"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def send(self, code: int, body: dict[str, Any], warnings: list[str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Audit-Id", "4f0b1c6e-3f3e-4d63-9c1a-2b7d5a8e9f10")
            self.send_header("Cache-Control", "no-cache, private")
            self.send_header("Content-Type", "application/json")
            for w in warnings or []:
                self.send_header("Warning", '299 - "' + w.replace('"', '\\"') + '"')
            self.send_header(
                "X-Kubernetes-Pf-Flowschema-Uid", "c9a8e0b2-0a51-4f44-8f45-1d1b8c6f2a77"
            )
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def parts(self) -> tuple[list[str], dict[str, list[str]]]:
            url = urlparse(self.path)
            return [p for p in url.path.split("/") if p], parse_qs(url.query)

        def do_GET(self) -> None:
            parts, _ = self.parts()
            gv = (
                "v1"
                if parts[:2] == ["api", "v1"] and len(parts) == 2
                else "/".join(parts[1:3])
                if parts[0] == "apis" and len(parts) == 3
                else None
            )
            if gv is not None:
                if gv not in GROUPS:
                    self.send(
                        404,
                        status(
                            404, "NotFound", "the server could not find the requested resource", {}
                        ),
                    )
                    return
                self.send(
                    200,
                    {
                        "kind": "APIResourceList",
                        "apiVersion": "v1",
                        "groupVersion": gv,
                        "resources": [
                            {
                                "name": p,
                                "singularName": k.lower(),
                                "namespaced": ns,
                                "kind": k,
                                "verbs": [
                                    "create",
                                    "delete",
                                    "deletecollection",
                                    "get",
                                    "list",
                                    "patch",
                                    "update",
                                    "watch",
                                ],
                            }
                            for p, k, ns in GROUPS[gv]
                        ],
                    },
                )
                return
            if parts[-1] in ("pods", "events", "replicasets"):
                kind = {"pods": "PodList", "events": "EventList", "replicasets": "ReplicaSetList"}[
                    parts[-1]
                ]
                version = "apps/v1" if parts[-1] == "replicasets" else "v1"
                self.send(
                    200,
                    {
                        "kind": kind,
                        "apiVersion": version,
                        "metadata": {"resourceVersion": "48300"},
                        "items": scenario.lists.get(parts[-1], []),
                    },
                )
                return
            if parts[-1] in PLURAL and len(parts) >= 3 and parts[-3] == "namespaces":
                gv, kind, _ = PLURAL[parts[-1]]
                ns = parts[-2]
                items = [
                    o
                    for (k, _n), o in scenario.store.items()
                    if k == kind and o["metadata"].get("namespace", ns) == ns
                ]
                self.send(
                    200,
                    {
                        "kind": f"{kind}List",
                        "apiVersion": gv,
                        "metadata": {"resourceVersion": "48301"},
                        "items": items,
                    },
                )
                return
            plural, name = parts[-2], parts[-1]
            kind = PLURAL[plural][1]
            found = scenario.store.get((kind, name))
            if (
                found is None
                and plural == "namespaces"
                and any(o["metadata"].get("namespace") == name for o in scenario.store.values())
            ):  # a real server has the namespace its objects live in
                found = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            if found is not None and name in scenario.applied and name in scenario.rollout:
                steps = scenario.rollout[name]
                found = {**found, "status": steps.pop(0) if len(steps) > 1 else steps[0]}
            if found is None:
                group = PLURAL[plural][0].split("/")[0] if "/" in PLURAL[plural][0] else ""
                qualified = f"{plural}.{group}" if group else plural
                self.send(
                    404,
                    status(
                        404,
                        "NotFound",
                        f'{qualified} "{name}" not found',
                        {"name": name, "group": group, "kind": plural},
                    ),
                )
                return
            self.send(200, found)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            attrs = body["spec"]["resourceAttributes"]
            allowed = (attrs["verb"], attrs["resource"]) not in scenario.deny
            out = {**body, "metadata": {"creationTimestamp": None}, "status": {"allowed": allowed}}
            if not allowed:
                out["status"]["reason"] = ""
            self.send(201, out)

        def do_PATCH(self) -> None:
            parts, query = self.parts()
            obj = yaml.safe_load(self.rfile.read(int(self.headers["Content-Length"])))
            dry = query.get("dryRun") == ["All"]
            force = query.get("force") == ["true"]
            kind, name = obj["kind"], obj["metadata"]["name"]
            ns = obj["metadata"].get("namespace")
            if ns in scenario.missing_namespaces:
                self.send(
                    404,
                    status(
                        404,
                        "NotFound",
                        f'namespaces "{ns}" not found',
                        {"name": ns, "kind": "namespaces"},
                    ),
                )
                return
            if (kind, name, dry) in scenario.fail:
                code, body = scenario.fail[(kind, name, dry)]
                self.send(code, body)
                return
            if name in scenario.conflict and not force:
                manager, fieldpath = scenario.conflict[name]
                plural = parts[-2]
                self.send(
                    409,
                    status(
                        409,
                        "Conflict",
                        f'Apply failed with 1 conflict: conflict with "{manager}" using {obj["apiVersion"]}: {fieldpath}',
                        {
                            "name": name,
                            "group": obj["apiVersion"].split("/")[0]
                            if "/" in obj["apiVersion"]
                            else "",
                            "kind": plural,
                            "causes": [
                                {
                                    "reason": "FieldManagerConflict",
                                    "message": f'conflict with "{manager}" using {obj["apiVersion"]}',
                                    "field": fieldpath,
                                }
                            ],
                        },
                    ),
                )
                return
            existing = scenario.store.get((kind, name))
            result = (
                defaulted(obj)
                if existing is None
                else {
                    **existing,
                    **defaulted(obj),
                    "metadata": {
                        **existing["metadata"],
                        **defaulted(obj)["metadata"],
                        "resourceVersion": "48214",
                        "generation": existing["metadata"].get("generation", 1) + 1,
                    },
                }
            )
            if not dry:
                scenario.store[(kind, name)] = result
                scenario.applied.add(name)
            self.send(201 if existing is None else 200, result, scenario.warn.get(kind))

    return Handler


def serve(scenario: Scenario, port: int = 16443) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), handler(scenario))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server

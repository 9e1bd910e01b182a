"""Checks that span objects: small Python functions registered under a rule's `python:` name.

Each takes one manifest and the review Context and yields Hits. Per-object rules
belong in CEL (policies/*.yaml); only what must look at other objects lives here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from kai.models import Manifest
from kai.policy import workload
from kai.policy.context import CheckFn, Context, Hit
from kai.policy.selectors import describe_labels, label_selector_matches

CHECKS: dict[str, CheckFn] = {}
# Which kinds each check looks at, so the engine skips the rest without calling it.
KINDS: dict[str, frozenset[str]] = {}
NEEDS_POD: set[str] = set()


def check(
    name: str, kinds: tuple[str, ...] = (), pod: bool = False
) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        CHECKS[name] = fn
        KINDS[name] = frozenset(kinds)
        if pod:
            NEEDS_POD.add(name)
        return fn

    return register


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _uses_host_network(obj: dict[str, Any]) -> bool:
    found = workload.pod_spec(obj)
    return bool(found and found[0].get("hostNetwork") is True)


def _policy_types(np: dict[str, Any]) -> set[str]:
    spec = _spec(np)
    declared = spec.get("policyTypes")
    if isinstance(declared, list) and declared:
        return {str(t) for t in declared}
    # Kubernetes defaults: Ingress always, Egress when egress rules are present.
    types = {"Ingress"}
    if spec.get("egress"):
        types.add("Egress")
    return types


def _pod_selector(np: dict[str, Any]) -> Any:
    """spec.podSelector as the API decodes it: unset (or no spec at all) is `{}`, every pod in
    the namespace; a spec or selector of the wrong type is rejected, so it selects nothing."""
    spec = np.get("spec", {})
    if not isinstance(spec, dict):
        return None
    return spec.get("podSelector", {})


def _ingress_pod_selector(np: Manifest) -> Any:
    """The pods a NetworkPolicy isolates for ingress (None: it has no Ingress policy type)."""
    return _pod_selector(np.obj) if "Ingress" in _policy_types(np.obj) else None


@check("network-policy-coverage", pod=True)
def network_policy_coverage(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """A NetworkPolicy in the same namespace selects the workload's pods for ingress."""
    if _uses_host_network(m.obj):
        return  # NetworkPolicy does not apply to host-network pods (another rule flags hostNetwork)
    labels = ctx.labels(m)
    ns = ctx.namespace(m)
    if ctx.any_selecting("NetworkPolicy", ns, labels, _ingress_pod_selector):
        return
    yield Hit(
        f"no NetworkPolicy in namespace {ns} selects these pods ({describe_labels(labels)}): "
        "every pod in the cluster can reach them"
    )


@check("service-selector-matches", kinds=("Service",))
def service_selector_matches(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """A Service with a selector selects at least one workload among the reviewed objects."""
    spec = _spec(m.obj)
    selector = spec.get("selector")
    if spec.get("type") == "ExternalName" or not isinstance(selector, dict) or not selector:
        return  # no selector: endpoints are managed by hand or by another controller
    if not ctx.selects_any(ctx.namespace(m), selector):
        yield Hit(
            f"selector {describe_labels({str(k): str(v) for k, v in selector.items()})} matches no workload's pod labels "
            f"in namespace {ctx.namespace(m)}: the Service will have no endpoints",
            "spec.selector",
        )


def _selected_ports(svc: Manifest, ctx: Context) -> tuple[frozenset[int], frozenset[str]] | None:
    """The container ports (numbers, names) of the workloads a Service selects, or None when it
    selects none; Services with one selector in one namespace share the answer."""
    selector = _spec(svc.obj).get("selector")
    if not isinstance(selector, dict) or not selector:
        return None
    ns = ctx.namespace(svc)
    key = frozenset((str(k), str(v)) for k, v in selector.items())

    def union() -> tuple[frozenset[int], frozenset[str]] | None:
        targets = ctx.selected_by(ns, selector)
        if not targets:
            return None
        numbers: set[int] = set()
        names: set[str] = set()
        for w in targets:
            n, s = ctx.container_ports(w)
            numbers |= n
            names |= s
        return frozenset(numbers), frozenset(names)

    found: tuple[frozenset[int], frozenset[str]] | None = ctx.memo(
        ("service-ports", ns, key), union
    )
    return found


@check("service-target-port", kinds=("Service",))
def service_target_port(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """Every Service port's targetPort is a port the selected containers declare."""
    found = _selected_ports(m, ctx)
    if found is None:
        return  # service-selector-matches reports this
    numbers, names = found
    ports = _spec(m.obj).get("ports") or []
    for i, p in enumerate(ports if isinstance(ports, list) else []):
        if not isinstance(p, dict):
            continue
        target = p.get("targetPort", p.get("port"))
        if isinstance(target, int) and not isinstance(target, bool):
            # An undeclared numeric port still works if the process listens on it, but nothing documents it.
            ok = target in numbers or (not numbers and not names)
            if not ok:
                yield Hit(
                    f"targetPort {target} is not a containerPort of the selected pods (declared: {sorted(numbers) or 'none'})",
                    f"spec.ports[{i}].targetPort",
                )
        elif isinstance(target, str) and target.isdigit():
            if int(target) not in numbers:
                yield Hit(
                    f'targetPort "{target}" is not a containerPort of the selected pods',
                    f"spec.ports[{i}].targetPort",
                )
        elif isinstance(target, str) and target not in names:
            yield Hit(
                f'targetPort "{target}" names no container port of the selected pods (named ports: {sorted(names) or "none"}): traffic will not be delivered',
                f"spec.ports[{i}].targetPort",
            )


def _hpas_by_target(ctx: Context, ns: str) -> dict[tuple[str, str], Manifest]:
    """The first HPA in `ns` scaling each (kind, name)."""
    out: dict[tuple[str, str], Manifest] = {}
    for hpa in ctx.of_kind("HorizontalPodAutoscaler", namespace=ns):
        ref = _spec(hpa.obj).get("scaleTargetRef")
        if isinstance(ref, dict):
            kind, name = ref.get("kind"), ref.get("name")
            if isinstance(kind, str) and isinstance(name, str):
                out.setdefault((kind, name), hpa)
    return out


def _hpa_for(m: Manifest, ctx: Context) -> Manifest | None:
    ns = ctx.namespace(m)
    index = ctx.memo(("hpa-by-target", ns), lambda: _hpas_by_target(ctx, ns))
    found: Manifest | None = index.get((m.ref.kind, m.ref.name))
    return found


def _effective_min_replicas(m: Manifest, ctx: Context) -> int | None:
    def compute() -> int | None:
        hpa = _hpa_for(m, ctx)
        if hpa is not None:
            value = _spec(hpa.obj).get("minReplicas", 1)
            return value if isinstance(value, int) else 1
        return workload.replicas(m.obj)

    found: int | None = ctx.memo(("min-replicas", id(m)), compute)
    return found


def _pdb_selector(pdb: Manifest) -> Any:
    return _spec(pdb.obj).get("selector")


@check("pdb-for-replicas", kinds=("Deployment", "StatefulSet"), pod=True)
def pdb_for_replicas(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """A workload running two or more replicas is covered by a PodDisruptionBudget."""
    count = _effective_min_replicas(m, ctx)
    if count is None or count < 2:
        return
    labels = ctx.labels(m)
    if ctx.any_selecting("PodDisruptionBudget", ctx.namespace(m), labels, _pdb_selector):
        return
    yield Hit(
        f"{count} replicas but no PodDisruptionBudget selects these pods ({describe_labels(labels)}): "
        "a node drain may evict all of them at once"
    )


# Topology keys that put replicas on different nodes or zones (the well-known node labels).
SPREAD_KEYS = frozenset(
    {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/zone",
    }
)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _term_spreads(term: Any, labels: dict[str, str], ns: str, ctx: Context) -> bool:
    """A pod (anti-)affinity term applies to the workload's own pods: its selector matches their
    labels, its namespaces include theirs, and its topology key is a node or zone key."""
    if not isinstance(term, dict) or term.get("topologyKey") not in SPREAD_KEYS:
        return False
    if not label_selector_matches(term.get("labelSelector"), labels):
        return False  # an unset labelSelector matches no pod
    namespaces = _list(term.get("namespaces"))
    ns_selector = term.get("namespaceSelector")
    if ns_selector is None:
        return not namespaces or ns in namespaces  # neither: the pod's own namespace
    if ns in namespaces or ns_selector == {}:
        return True
    namespaces_by_name = ctx.memo(
        ("namespace-by-name",),
        lambda: {n.ref.name: n for n in reversed(ctx.of_kind("Namespace"))},
    )
    n = namespaces_by_name.get(ns)
    if n is not None:
        meta = _dict(n.obj.get("metadata"))
        own = {str(k): str(v) for k, v in _dict(meta.get("labels")).items()}
        own.setdefault("kubernetes.io/metadata.name", ns)
        return label_selector_matches(ns_selector, own)
    return label_selector_matches(ns_selector, {"kubernetes.io/metadata.name": ns})


@check("spread-across-nodes", kinds=("Deployment", "StatefulSet"), pod=True)
def spread_across_nodes(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """Two or more replicas (counting an HPA's minReplicas) are spread across nodes."""
    count = _effective_min_replicas(m, ctx)
    if count is None or count < 2:
        return
    found = workload.pod_spec(m.obj)
    pod: dict[str, Any] = found[0] if found else {}
    labels, ns = ctx.labels(m), ctx.namespace(m)
    for c in _list(pod.get("topologySpreadConstraints")):
        if (
            isinstance(c, dict)
            and c.get("topologyKey") in SPREAD_KEYS
            and label_selector_matches(c.get("labelSelector"), labels)
        ):
            return
    anti = _dict(_dict(pod.get("affinity")).get("podAntiAffinity"))
    terms = [*_list(anti.get("requiredDuringSchedulingIgnoredDuringExecution"))] + [
        _dict(w).get("podAffinityTerm")
        for w in _list(anti.get("preferredDuringSchedulingIgnoredDuringExecution"))
    ]
    if any(_term_spreads(t, labels, ns, ctx) for t in terms):
        return
    yield Hit(
        f"{m.ref.kind} {m.ref.name} runs {count} replicas with nothing spreading them across nodes"
    )


@check("pdb-below-replicas", kinds=("PodDisruptionBudget",))
def pdb_below_replicas(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """A PDB's integer minAvailable leaves room for one eviction at the workload's minimum scale."""
    wanted = _spec(m.obj).get("minAvailable")
    if not isinstance(wanted, int) or isinstance(wanted, bool):
        return  # percentages and maxUnavailable are KAI-AVL-003's
    selector = _spec(m.obj).get("selector")
    for w in ctx.matching(ctx.namespace(m), selector, ("Deployment", "StatefulSet")):
        count = _effective_min_replicas(w, ctx)
        if count is not None and wanted >= count:
            yield Hit(
                f"minAvailable {wanted} with {w.ref.kind} {w.ref.name} at {count} "
                f"replica{'s' if count != 1 else ''}: no pod may ever be evicted, so drains block"
            )


_SCALABLE = ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController")


@check("hpa-target-exists", kinds=("HorizontalPodAutoscaler",))
def hpa_target_exists(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """The HPA's scaleTargetRef names an object among the reviewed ones."""
    ref = _spec(m.obj).get("scaleTargetRef")
    if not isinstance(ref, dict) or not ref.get("kind") or not ref.get("name"):
        yield Hit(
            "scaleTargetRef is missing its kind or name: the autoscaler has nothing to scale",
            "spec.scaleTargetRef",
        )
        return
    kind, name = str(ref["kind"]), str(ref["name"])
    if kind not in _SCALABLE:
        return  # a custom resource's scale subresource: cannot be checked offline
    if ctx.get(kind, ctx.namespace(m), name) is not None:
        return
    yield Hit(
        f"scaleTargetRef {kind}/{name} is not among the reviewed objects in namespace {ctx.namespace(m)}",
        "spec.scaleTargetRef",
    )


def _utilization_resources(hpa: dict[str, Any]) -> set[str]:
    spec = _spec(hpa)
    out: set[str] = set()
    if "targetCPUUtilizationPercentage" in spec:  # autoscaling/v1
        out.add("cpu")
    for metric in spec.get("metrics") or []:
        if not isinstance(metric, dict):
            continue
        res = metric.get("resource") or metric.get("containerResource")
        target = res.get("target") if isinstance(res, dict) else None
        if (
            isinstance(target, dict)
            and target.get("type") == "Utilization"
            and isinstance(res, dict)
        ):
            out.add(str(res.get("name")))
    if (
        not spec.get("metrics")
        and "targetCPUUtilizationPercentage" not in spec
        and str(hpa.get("apiVersion", "")).startswith("autoscaling/")
    ):
        out.add("cpu")  # with no metrics the controller defaults to 80% CPU utilization
    return out


@check("hpa-requests", kinds=("HorizontalPodAutoscaler",))
def hpa_requests(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """Utilization targets are percentages of requests: the target's containers must set them."""
    ref = _spec(m.obj).get("scaleTargetRef")
    if not isinstance(ref, dict):
        return
    for t in ctx.named(str(ref.get("kind")), ctx.namespace(m), ref.get("name")):
        found = workload.pod_spec(t.obj)
        if not found:
            return
        for resource in sorted(_utilization_resources(m.obj)):
            for _, _, c in workload.iter_containers(found[0], ("containers",)):
                res = c.get("resources") if isinstance(c.get("resources"), dict) else {}
                requests = res.get("requests") if isinstance(res, dict) else None
                if not isinstance(requests, dict) or resource not in requests:
                    yield Hit(
                        f"scales on {resource} utilization but container {c.get('name')!s} of {t.ref.display()} "
                        f"sets no {resource} request: the autoscaler cannot compute utilization",
                        "spec.metrics",
                    )


def _pins_replicas(obj: dict[str, Any]) -> bool:
    """Whether the object's author sets spec.replicas.

    A file says so by the field. A live object always has it (the server defaults it, and the HPA
    writes it through the scale subresource), so there the signal is managedFields: some manager
    other than the scale subresource owns f:spec.f:replicas (an apply or an update that set it).
    An Update (kubectl's client-side apply, create, edit) is also credited with the fields the
    server defaulted, so for kubectl apply's manager its last-applied-configuration annotation says
    whether the file held spec.replicas.
    """
    meta = obj.get("metadata")
    managed = meta.get("managedFields") if isinstance(meta, dict) else None
    if not isinstance(managed, list) or not managed:
        return "replicas" in _spec(obj)
    for entry in managed:
        if not isinstance(entry, dict) or entry.get("subresource"):
            continue
        fields = entry.get("fieldsV1")
        spec = fields.get("f:spec") if isinstance(fields, dict) else None
        if not (isinstance(spec, dict) and "f:replicas" in spec):
            continue
        applied = (
            _last_applied_spec(meta)
            if isinstance(meta, dict) and entry.get("operation") == "Update"
            else None
        )
        if entry.get("manager") == "kubectl-client-side-apply" and applied is not None:
            if "replicas" in applied:
                return True
            continue
        return True
    return False


def _last_applied_spec(meta: dict[str, Any]) -> dict[str, Any] | None:
    """spec of kubectl's last-applied-configuration annotation, None if absent or unreadable."""
    import json

    annotations = meta.get("annotations")
    text = (
        annotations.get("kubectl.kubernetes.io/last-applied-configuration")
        if isinstance(annotations, dict)
        else None
    )
    if not isinstance(text, str):
        return None
    try:
        applied = json.loads(text)
    except ValueError:
        return None
    spec = applied.get("spec") if isinstance(applied, dict) else None
    return spec if isinstance(spec, dict) else None


@check("hpa-replicas-conflict", kinds=("Deployment", "StatefulSet"), pod=True)
def hpa_replicas_conflict(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """A workload managed by an HPA should not also pin spec.replicas."""
    if _pins_replicas(m.obj) and _hpa_for(m, ctx) is not None:
        yield Hit(
            "spec.replicas is set while a HorizontalPodAutoscaler manages this workload: every apply resets the replica count",
            "spec.replicas",
        )


def _ingress_backends(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    spec = _spec(obj)
    default = spec.get("defaultBackend")
    if isinstance(default, dict):
        yield "spec.defaultBackend", default
    for i, rule in enumerate(spec.get("rules") or []):
        http = rule.get("http") if isinstance(rule, dict) else None
        for j, path in enumerate((http or {}).get("paths") or [] if isinstance(http, dict) else []):
            if isinstance(path, dict) and isinstance(path.get("backend"), dict):
                yield f"spec.rules[{i}].http.paths[{j}].backend", path["backend"]


@check("ingress-backend-exists", kinds=("Ingress",))
def ingress_backend_exists(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """Each Ingress backend names a Service (and one of its ports) among the reviewed objects."""
    services = ctx.by_name("Service", ctx.namespace(m))
    for path, backend in _ingress_backends(m.obj):
        svc = backend.get("service")
        if not isinstance(svc, dict):
            continue  # a resource backend
        name = svc.get("name")
        if name not in services:
            yield Hit(
                f"backend Service {name!s} is not among the reviewed objects in namespace {ctx.namespace(m)}",
                f"{path}.service.name",
            )
            continue
        port = svc.get("port")
        if not isinstance(port, dict):
            port = {}
        svc_ports = _spec(services[str(name)].obj).get("ports") or []
        numbers = {p.get("port") for p in svc_ports if isinstance(p, dict)}
        names = {p.get("name") for p in svc_ports if isinstance(p, dict)}
        if "number" in port and port["number"] not in numbers:
            yield Hit(
                f"backend port {port['number']} is not a port of Service {name} (ports: {sorted(n for n in numbers if isinstance(n, int))})",
                f"{path}.service.port",
            )
        elif "name" in port and port["name"] not in names:
            yield Hit(
                f"backend port name {port['name']!s} is not a port name of Service {name}",
                f"{path}.service.port",
            )


@check("statefulset-service", kinds=("StatefulSet",), pod=True)
def statefulset_service(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """A StatefulSet's serviceName names a headless Service that governs its pods' DNS."""
    name = _spec(m.obj).get("serviceName")
    if not name:
        yield Hit(
            "spec.serviceName is not set: the pods get no stable network identity",
            "spec.serviceName",
        )
        return
    s = ctx.get("Service", ctx.namespace(m), name)
    if s is not None:
        if _spec(s.obj).get("clusterIP") != "None":
            yield Hit(
                f"Service {name} governs this StatefulSet but is not headless (clusterIP: None)",
                "spec.serviceName",
            )
        return
    yield Hit(
        f"serviceName {name!s} names no Service among the reviewed objects", "spec.serviceName"
    )


_TEMPLATE_KINDS = (*workload.POD_KINDS, "PodTemplate")


@check("pod-has-containers", kinds=_TEMPLATE_KINDS)
def pod_has_containers(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """A pod template lists at least one container, each a mapping (the API rejects the rest)."""
    found = ctx.pod(m)
    if found is None:
        yield Hit(
            f"{m.ref.kind} {m.ref.name} has no pod template with a containers list: "
            "the API server rejects it, and no other pod rule could check it",
        )
        return
    pod, path = found
    containers = pod.get("containers")
    if not containers:
        yield Hit("the pod template lists no container", f"{path}.containers")
        return
    for field in workload.CONTAINER_FIELDS:
        items = pod.get(field, [])
        if not isinstance(items, list):
            yield Hit(f"{field} is not a list", f"{path}.{field}")
            continue
        for i, c in enumerate(items):
            if not isinstance(c, dict) or not c.get("name") or not c.get("image"):
                yield Hit(
                    f"{field}[{i}] is not a container with a name and an image",
                    f"{path}.{field}[{i}]",
                )


_APPS_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")


@check("selector-matches-template", kinds=(*_APPS_KINDS, "ReplicationController", "Job"))
def selector_matches_template(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """A workload's selector selects its own pod template's labels (the API rejects it otherwise)."""
    found = workload.pod_template(m.obj)
    if found is None:
        return  # pod-has-containers reports it
    labels = ctx.labels(m)
    spec = _spec(m.obj)
    selector = spec.get("selector")
    if m.ref.kind in _APPS_KINDS:
        if not isinstance(selector, dict) or not (
            selector.get("matchLabels") or selector.get("matchExpressions")
        ):
            yield Hit(
                f"{m.ref.kind} {m.ref.name} has no (or an empty) spec.selector: apps/v1 requires one",
                "spec.selector",
            )
            return
        matches = label_selector_matches(selector, labels)
    elif m.ref.kind == "ReplicationController":
        if not isinstance(selector, dict) or not selector:
            return  # defaulted to the template's labels
        matches = all(labels.get(str(k)) == str(v) for k, v in selector.items())
    else:  # Job: the selector is generated unless manualSelector is set
        if spec.get("manualSelector") is not True or selector is None:
            return
        matches = label_selector_matches(selector, labels)
    if not matches:
        yield Hit(
            f"spec.selector does not match the pod template's labels ({describe_labels(labels)}): "
            "the API server rejects the object (`selector` does not match template `labels`)",
            "spec.selector",
        )


@check("service-account-token", pod=True)
def service_account_token(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """The pod mounts no API token: its own automountServiceAccountToken, or else its
    ServiceAccount's (when that ServiceAccount is among the reviewed or existing objects)."""
    found = ctx.pod(m)
    if found is None:
        return
    pod, path = found
    own = pod.get("automountServiceAccountToken")
    if own is False:
        return
    if own is None:
        name = pod.get("serviceAccountName") or pod.get("serviceAccount") or "default"
        for sa in ctx.named("ServiceAccount", ctx.namespace(m), name):
            if sa.obj.get("automountServiceAccountToken") is False:
                return  # inherited: the kubelet mounts no token
    yield Hit(
        "the pod mounts a ServiceAccount token: set automountServiceAccountToken: false unless it calls the API",
        path,
    )


# The kinds each check reads from the review Context besides the object itself: when the identity
# may not list one of them in the object's namespace (kai review --cluster, kai apply), the
# check's findings there are "unknown", not errors (see kai.cluster.stages.mark_unknown).
_WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"})
READS: dict[str, frozenset[str]] = {
    "network-policy-coverage": frozenset({"NetworkPolicy"}),
    "service-selector-matches": _WORKLOADS,
    "service-target-port": _WORKLOADS,
    "pdb-for-replicas": frozenset({"PodDisruptionBudget", "HorizontalPodAutoscaler"}),
    "spread-across-nodes": frozenset({"HorizontalPodAutoscaler"}),
    "pdb-below-replicas": frozenset({"Deployment", "StatefulSet", "HorizontalPodAutoscaler"}),
    "hpa-target-exists": frozenset(_SCALABLE) & _WORKLOADS,
    "hpa-requests": frozenset(_SCALABLE) & _WORKLOADS,
    "hpa-replicas-conflict": frozenset({"HorizontalPodAutoscaler"}),
    "ingress-backend-exists": frozenset({"Service"}),
    "statefulset-service": frozenset({"Service"}),
    "service-account-token": frozenset({"ServiceAccount"}),
}

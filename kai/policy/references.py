"""Cross-object checks of references: what a pod, a NetworkPolicy or a binding names must exist.

Each check looks its targets up through the review Context (by kind, namespace and name, or by
label selector through the Context's index), so a review stays linear in the number of objects.
The Context holds the reviewed objects and, with `kai review --cluster` or `kai apply`, the live
ones of the namespace; kai never reads Secrets from a cluster (kai.cluster.stages.mark_unknown makes
Secret findings there "unknown").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kai.models import Manifest
from kai.policy import workload
from kai.policy.context import Context, Hit
from kai.policy.crossobject import READS as _ALL_READS
from kai.policy.crossobject import check
from kai.policy.selectors import describe_labels


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# ---------- ConfigMap, Secret and ServiceAccount references of a pod ----------


@dataclass(frozen=True, slots=True)
class Ref:
    """One reference of a pod to a ConfigMap or Secret (and, for a key selector, one key)."""

    kind: str  # ConfigMap | Secret
    name: str
    keys: tuple[str, ...]  # keys the reference needs; () for the whole object
    optional: bool
    use: str  # how it is used, for the message
    path: str
    pull_secret: bool = False


def _container_refs(c: dict[str, Any], where: str, who: str) -> Iterator[Ref]:
    for j, src in enumerate(_list(c.get("envFrom"))):
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            ref = _dict(_dict(src).get(field))
            if name := _name(ref.get("name")):
                yield Ref(
                    kind,
                    name,
                    (),
                    ref.get("optional") is True,
                    f"envFrom of {who}",
                    f"{where}.envFrom[{j}].{field}",
                )
    for j, env in enumerate(_list(c.get("env"))):
        value_from = _dict(_dict(env).get("valueFrom"))
        for field, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
            ref = _dict(value_from.get(field))
            name, key = _name(ref.get("name")), _name(ref.get("key"))
            if name and key:
                yield Ref(
                    kind,
                    name,
                    (key,),
                    ref.get("optional") is True,
                    f"env {_dict(env).get('name')!s} of {who}",
                    f"{where}.env[{j}].valueFrom.{field}",
                )


def _item_keys(source: dict[str, Any]) -> tuple[str, ...]:
    return tuple(k for item in _list(source.get("items")) if (k := _name(_dict(item).get("key"))))


def _volume_refs(pod: dict[str, Any], path: str) -> Iterator[Ref]:
    for i, vol in enumerate(_list(pod.get("volumes"))):
        vol = _dict(vol)
        where = f"{path}.volumes[{i}]"
        label = f"volume {vol.get('name')!s}"
        cm = _dict(vol.get("configMap"))
        if name := _name(cm.get("name")):
            yield Ref(
                "ConfigMap",
                name,
                _item_keys(cm),
                cm.get("optional") is True,
                label,
                f"{where}.configMap",
            )
        secret = _dict(vol.get("secret"))
        if name := _name(secret.get("secretName")):
            yield Ref(
                "Secret",
                name,
                _item_keys(secret),
                secret.get("optional") is True,
                label,
                f"{where}.secret",
            )
        for k, src in enumerate(_list(_dict(vol.get("projected")).get("sources"))):
            for field, kind in (("configMap", "ConfigMap"), ("secret", "Secret")):
                ref = _dict(_dict(src).get(field))
                if name := _name(ref.get("name")):
                    yield Ref(
                        kind,
                        name,
                        _item_keys(ref),
                        ref.get("optional") is True,
                        f"projected {label}",
                        f"{where}.projected.sources[{k}].{field}",
                    )


def pod_refs(pod: dict[str, Any], path: str) -> Iterator[Ref]:
    """Every ConfigMap and Secret the pod spec references, with the keys it needs."""
    for field, i, c in workload.iter_containers(pod):
        yield from _container_refs(c, f"{path}.{field}[{i}]", f"container {c.get('name')!s}")
    yield from _volume_refs(pod, path)
    for i, s in enumerate(_list(pod.get("imagePullSecrets"))):
        if name := _name(_dict(s).get("name")):
            yield Ref(
                "Secret",
                name,
                (),
                False,
                "imagePullSecrets",
                f"{path}.imagePullSecrets[{i}]",
                pull_secret=True,
            )


def _keys(obj: dict[str, Any]) -> set[str]:
    """The keys a ConfigMap (data, binaryData) or Secret (data, and stringData, which the API
    server merges into data on write) holds."""
    fields = ("data", "binaryData") if obj.get("kind") == "ConfigMap" else ("data", "stringData")
    return {str(k) for f in fields for k in _dict(obj.get(f))}


_CONSEQUENCE = {
    "env": "the container does not start (CreateContainerConfigError)",
    "volume": "the volume cannot be mounted, so the pod never starts (FailedMount)",
}


def _consequence(ref: Ref) -> str:
    if ref.pull_secret:
        return "the kubelet pulls without it, so a private image fails with ErrImagePull"
    return _CONSEQUENCE["volume" if "volume" in ref.use else "env"]


def _missing_objects(m: Manifest, ctx: Context, kind: str) -> Iterator[Hit]:
    found = ctx.pod(m)
    if found is None:
        return
    ns = ctx.namespace(m)
    missing: dict[str, list[Ref]] = {}
    for ref in pod_refs(*found):
        if ref.kind == kind and not ref.optional and ctx.get(kind, ns, ref.name) is None:
            missing.setdefault(ref.name, []).append(ref)
    for name, refs in missing.items():
        uses = ", ".join(dict.fromkeys(r.use for r in refs))
        yield Hit(
            f"{kind} {name} ({uses}) is not among the reviewed objects in namespace {ns}: "
            f"unless it exists when the pod starts, {_consequence(refs[0])}",
            refs[0].path,
        )


@check("configmap-ref-exists", pod=True)
def configmap_ref_exists(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """Every ConfigMap the pod needs (not marked optional) exists."""
    yield from _missing_objects(m, ctx, "ConfigMap")


@check("secret-ref-exists", pod=True)
def secret_ref_exists(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """Every Secret the pod needs (not marked optional), and every imagePullSecret, exists."""
    yield from _missing_objects(m, ctx, "Secret")


@check("ref-keys-exist", pod=True)
def ref_keys_exist(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """Every key a pod takes from a ConfigMap or Secret it can see is in that object."""
    found = ctx.pod(m)
    if found is None:
        return
    ns = ctx.namespace(m)
    for ref in pod_refs(*found):
        if not ref.keys or ref.optional:
            continue
        target = ctx.get(ref.kind, ns, ref.name)
        if target is None:
            continue  # configmap-ref-exists / secret-ref-exists report it
        have = _keys(target.obj)
        for key in ref.keys:
            if key not in have:
                listed = ", ".join(sorted(have)) or "none"
                yield Hit(
                    f"{ref.kind} {ref.name} has no key {key} ({ref.use}; its keys: {listed}): "
                    f"{_consequence(ref)}; mark the reference optional: true if it may be absent",
                    ref.path,
                )


@check("service-account-exists", pod=True)
def service_account_exists(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """The pod's ServiceAccount exists (`default` always does)."""
    found = ctx.pod(m)
    if found is None:
        return
    pod, path = found
    # serviceAccountName wins; the deprecated serviceAccount is used only when it is empty.
    field = "serviceAccountName" if _name(pod.get("serviceAccountName")) else "serviceAccount"
    name = _name(pod.get(field))
    if name is None or name == "default":
        return  # the ServiceAccount controller creates `default` in every namespace
    ns = ctx.namespace(m)
    if ctx.get("ServiceAccount", ns, name) is None:
        yield Hit(
            f"ServiceAccount {name} is not among the reviewed objects in namespace {ns}: unless "
            "it exists, the API server rejects the pods (serviceaccount not found)",
            f"{path}.{field}",
        )


# ---------- NetworkPolicy selectors ----------


def describe_selector(selector: dict[str, Any]) -> str:
    parts = []
    labels = _dict(selector.get("matchLabels"))
    if labels:
        parts.append(describe_labels({str(k): str(v) for k, v in labels.items()}))
    for e in _list(selector.get("matchExpressions")):
        e = _dict(e)
        values = ",".join(str(v) for v in _list(e.get("values")))
        parts.append(f"{e.get('key')!s} {e.get('operator')!s}" + (f" ({values})" if values else ""))
    return "; ".join(parts) or "{}"


def _selects_all(selector: dict[str, Any]) -> bool:
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def _cluster_scoped(ctx: Context, kind: str, name: str) -> Manifest | None:
    """The cluster-scoped object of `kind` called `name` (the first in review order: a reviewed
    object wins over a live one); its namespace, if the file gives one, does not matter."""
    index: dict[str, Manifest] = ctx.memo(
        ("cluster-scoped", kind),
        lambda: {m.ref.name: m for m in reversed(ctx.of_kind(kind))},
    )
    return index.get(name)


@check("network-policy-selects-pods", kinds=("NetworkPolicy",))
def network_policy_selects_pods(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """A NetworkPolicy's spec.podSelector selects at least one workload's pods."""
    spec = m.obj.get("spec", {})
    if not isinstance(spec, dict):
        return
    selector = spec.get("podSelector", {})  # unset is {}: every pod of the namespace
    if not isinstance(selector, dict) or _selects_all(selector):
        return
    ns = ctx.namespace(m)
    if not ctx.any_matching(ns, selector):
        yield Hit(
            f"podSelector ({describe_selector(selector)}) selects the pods of no workload among "
            f"the reviewed objects in namespace {ns}: the policy isolates nothing",
            "spec.podSelector",
        )


@check("network-policy-peers-select-pods", kinds=("NetworkPolicy",))
def network_policy_peers_select_pods(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """Each same-namespace peer podSelector of a NetworkPolicy selects some workload's pods."""
    spec = m.obj.get("spec", {})
    if not isinstance(spec, dict):
        return
    ns = ctx.namespace(m)
    for direction, peers_field, verb in (
        ("ingress", "from", "admits traffic from"),
        ("egress", "to", "allows traffic to"),
    ):
        for i, rule in enumerate(_list(spec.get(direction))):
            for j, peer in enumerate(_list(_dict(rule).get(peers_field))):
                peer = _dict(peer)
                selector = peer.get("podSelector")
                # With a namespaceSelector the peer is pods of other namespaces: not decidable here.
                if not isinstance(selector, dict) or "namespaceSelector" in peer:
                    continue
                if _selects_all(selector) or ctx.any_matching(ns, selector):
                    continue
                yield Hit(
                    f"{direction}[{i}].{peers_field}[{j}].podSelector ({describe_selector(selector)}) "
                    f"selects the pods of no workload among the reviewed objects in namespace {ns}: "
                    f"this peer {verb} nothing",
                    f"spec.{direction}[{i}].{peers_field}[{j}].podSelector",
                )


# ---------- (Cluster)RoleBindings: who is handed exec, attach or wildcards ----------

# Built-in ClusterRoles every cluster has (the API server's bootstrap policy), for bindings whose
# role is not among the reviewed objects. cluster-admin is KAI-RBAC-002's, so it is not listed.
_POD_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
WELL_KNOWN_CLUSTER_ROLES: dict[str, list[dict[str, Any]]] = {
    name: [
        {
            "apiGroups": [""],
            "resources": ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"],
            "verbs": _POD_WRITE,
        }
    ]
    for name in ("admin", "edit")
}
_BOOTSTRAP_LABEL = ("kubernetes.io/bootstrapping", "rbac-defaults")


def rule_allows(rule: Any, verb: str, group: str, resource: str, subresource: str = "") -> bool:
    """Whether one PolicyRule grants the request, matched as the RBAC authorizer matches it:
    `*` or the exact verb and group; resource `*`, the exact "resource/subresource", or
    "*/subresource" (while "pods/*" is a literal that matches nothing)."""
    rule = _dict(rule)
    verbs, groups, resources = (
        _list(rule.get("verbs")),
        _list(rule.get("apiGroups")),
        _list(rule.get("resources")),
    )
    if not ("*" in verbs or verb in verbs) or not ("*" in groups or group in groups):
        return False
    combined = f"{resource}/{subresource}" if subresource else resource
    return any(
        r == "*" or r == combined or (subresource and r == f"*/{subresource}") for r in resources
    )


def exec_grants(rules: list[Any]) -> list[str]:
    """The pods/exec and pods/attach grants among `rules`: create, or get (which is enough for
    the WebSocket form on API servers before 1.35)."""
    out = []
    for sub in ("exec", "attach"):
        for verb in ("create", "get"):
            if any(rule_allows(r, verb, "", "pods", sub) for r in rules):
                out.append(f"{verb} pods/{sub}")
                break
    return out


def wildcard_rules(rules: list[Any]) -> bool:
    """A rule with `*` verbs or resources (as KAI-RBAC-001 decides it for the role itself)."""
    return any(
        "*" in _list(_dict(r).get("verbs")) or "*" in _list(_dict(r).get("resources"))
        for r in rules
    )


def _role_rules(role: Manifest, ctx: Context, seen: set[str]) -> list[Any]:
    """A role's effective rules; an aggregated ClusterRole's are those of the ClusterRoles its
    selectors pick (the controller overwrites its own)."""
    from kai.policy.selectors import label_selector_matches

    agg = _dict(role.obj.get("aggregationRule"))
    selectors = _list(agg.get("clusterRoleSelectors"))
    if role.ref.kind != "ClusterRole" or not selectors:
        return _list(role.obj.get("rules"))
    seen = seen | {role.ref.name}
    out: list[Any] = []
    for other in ctx.of_kind("ClusterRole"):
        if other.ref.name in seen:
            continue
        labels = {
            str(k): str(v) for k, v in _dict(_dict(other.obj.get("metadata")).get("labels")).items()
        }
        if any(label_selector_matches(s, labels) for s in selectors):
            out += _role_rules(other, ctx, seen)
    return out


@dataclass(frozen=True, slots=True)
class Bound:
    role: str  # "Role agent", "ClusterRole edit (built in)"
    rules: list[Any]
    subjects: str
    scope: str


def _subjects(binding: Manifest, ns: str) -> str:
    out = []
    for s in _list(binding.obj.get("subjects")):
        s = _dict(s)
        kind, name = s.get("kind"), _name(s.get("name"))
        if not name:
            continue
        if kind == "ServiceAccount":
            out.append(f"ServiceAccount {_name(s.get('namespace')) or ns}/{name}")
        else:
            out.append(f"{kind!s} {name}")
    return ", ".join(out)


def bound_role(m: Manifest, ctx: Context) -> Bound | None:
    """The role a binding grants and to whom, when kai can see the role (or knows it)."""
    labels = _dict(_dict(m.obj.get("metadata")).get("labels"))
    if labels.get(_BOOTSTRAP_LABEL[0]) == _BOOTSTRAP_LABEL[1]:
        return None  # the API server's own default bindings
    ref = _dict(m.obj.get("roleRef"))
    kind, name = ref.get("kind"), _name(ref.get("name"))
    subjects = _subjects(m, ctx.namespace(m))
    if not name or not subjects:
        return None  # a binding without subjects grants nothing
    if m.ref.kind == "ClusterRoleBinding":
        if kind != "ClusterRole":
            return None  # rejected by the API server
        scope = "in every namespace"
    else:
        scope = f"in namespace {ctx.namespace(m)}"
    if kind == "Role" and m.ref.kind == "RoleBinding":
        role = ctx.get("Role", ctx.namespace(m), name)
    elif kind == "ClusterRole" and name != "cluster-admin":  # cluster-admin: KAI-RBAC-002
        role = _cluster_scoped(ctx, "ClusterRole", name)
        if role is None and name in WELL_KNOWN_CLUSTER_ROLES:
            return Bound(
                f"the built-in ClusterRole {name}",
                WELL_KNOWN_CLUSTER_ROLES[name],
                subjects,
                scope,
            )
    else:
        return None
    if role is None:
        return None  # not among the reviewed objects: nothing to judge
    return Bound(f"{role.ref.kind} {name}", _role_rules(role, ctx, set()), subjects, scope)


@check("binding-grants-exec", kinds=("RoleBinding", "ClusterRoleBinding"))
def binding_grants_exec(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """A binding does not hand pods/exec or pods/attach to its subjects."""
    bound = bound_role(m, ctx)
    if bound is None:
        return
    grants = exec_grants(bound.rules)
    if grants:
        yield Hit(
            f"gives {bound.subjects} {' and '.join(grants)} through {bound.role} {bound.scope}: "
            f"they can run commands inside every pod {bound.scope}",
            "roleRef",
        )


@check("binding-grants-wildcards", kinds=("RoleBinding", "ClusterRoleBinding"))
def binding_grants_wildcards(m: Manifest, ctx: Context) -> Iterator[Hit]:
    """A binding does not hand a role with `*` verbs or resources to its subjects."""
    bound = bound_role(m, ctx)
    if bound is not None and wildcard_rules(bound.rules):
        yield Hit(
            f"gives {bound.subjects} {bound.role}, which grants '*' verbs or resources, "
            f"{bound.scope}: every present and future resource type in that scope",
            "roleRef",
        )


_WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"})
# The kinds each check reads from the Context (see crossobject.READS and kai.cluster.stages.mark_unknown).
READS: dict[str, frozenset[str]] = {
    "configmap-ref-exists": frozenset({"ConfigMap"}),
    "secret-ref-exists": frozenset({"Secret"}),
    "ref-keys-exist": frozenset({"ConfigMap"}),
    "service-account-exists": frozenset({"ServiceAccount"}),
    "network-policy-selects-pods": _WORKLOADS,
    "network-policy-peers-select-pods": _WORKLOADS,
    "binding-grants-exec": frozenset({"Role"}),
    "binding-grants-wildcards": frozenset({"Role"}),
}
_ALL_READS.update(READS)

"""What a command would touch before it runs: the server-side dry run, a read-only listing of a
destructive command's targets, and the permissions it needs (`kubectl auth can-i`).
"""

from __future__ import annotations

from kai.ops.classify import Verdict, _is_namespace_type


def with_dry_run(v: Verdict) -> list[str]:
    """The command with --dry-run=server in place of any --dry-run the model wrote."""
    argv = [a for a in v.argv if not a.startswith("--dry-run")]
    return [*argv, "--dry-run=server"]


def preview(v: Verdict) -> list[str] | None:
    """A read-only `kubectl get ... -o name` listing what a destructive command would touch."""
    if v.verb == "drain" or (v.verb == "taint" and v.names):
        node = v.names[0] if v.names else ""
        return ["get", "pods", "-A", "--field-selector", f"spec.nodeName={node}", "-o", "name"]
    if deleted_namespaces(v):
        return list(NAMESPACED_KINDS)  # first what a namespace can hold, then namespace_contents
    argv = ["get"]
    if v.files:
        for f in v.files:
            argv += ["-f", f]
    elif v.types:
        argv.append(",".join(dict.fromkeys(v.types)))
        argv += v.names
    else:
        return None
    if v.flags.get("--selector"):
        argv += ["-l", v.flags["--selector"]]
    if "--field-selector" in v.flags:
        argv += ["--field-selector", v.flags["--field-selector"]]
    if v.namespace:
        argv += ["-n", v.namespace]
    if v.all_namespaces:
        argv.append("-A")
    return [*argv, "-o", "name"]


# Every kind of object a namespace can hold that this identity's server lists; `get all` would
# miss ConfigMaps, Secrets, ServiceAccounts, PVCs, Ingresses, NetworkPolicies, Roles, ...
NAMESPACED_KINDS = ["api-resources", "--verbs=list", "--namespaced", "-o", "name"]
# Deleted with the namespace but not listed: events are a log, not objects anyone keeps, and the
# metrics API serves measurements of the pods already listed.
_NOT_LISTED = {"events", "events.events.k8s.io"}


def deleted_namespaces(v: Verdict) -> list[str]:
    """The namespaces a `kubectl delete` removes (with everything in them)."""
    if v.verb != "delete" or not v.names or not any(_is_namespace_type(t) for t in v.types):
        return []
    return list(v.names)


def namespace_contents(namespace: str, kinds_listing: str) -> list[str]:
    """`kubectl get KIND,KIND,... -n NS -o name` over every namespaced kind (from NAMESPACED_KINDS'
    output): names only, so a Secret's values are never read."""
    kinds = [
        k.strip()
        for k in kinds_listing.splitlines()
        if k.strip() and k.strip() not in _NOT_LISTED and not k.strip().endswith(".metrics.k8s.io")
    ]
    return ["get", ",".join(dict.fromkeys(kinds)), "-n", namespace, "-o", "name"]


def target_word(v: Verdict, namespace: str | None) -> str:
    """What the person must type to confirm a destructive command."""
    if v.all_namespaces:
        return "all-namespaces"
    if len(v.names) == 1:
        return v.names[0]
    return v.namespace or namespace or "default"


# The API verbs (and subresources) a write needs, for the permission preflight.
def needed_permissions(v: Verdict) -> list[tuple[str, str, str]]:
    """(API verb, resource, subresource) pairs `kubectl auth can-i` should confirm first."""
    types = list(dict.fromkeys(t for t in v.types)) or []
    if v.verb == "expose":
        return [("create", "services", "")]
    if v.verb == "autoscale":
        return [("create", "horizontalpodautoscalers.autoscaling", "")]
    if v.verb == "run":
        return [("create", "pods", "")]
    if v.verb == "create":
        return [("create", t, "") for t in types] if types else []
    if v.verb in ("apply", "replace", "apply set-last-applied"):
        return [(verb, t, "") for t in types for verb in ("create", "patch")]
    if v.verb == "scale":
        return [("patch", t, "scale") for t in types]
    if v.verb == "delete":
        return [("delete", t, "") for t in types]
    if v.verb == "drain":
        return [("patch", "nodes", ""), ("create", "pods", "eviction")]
    if v.verb in ("cordon", "uncordon", "taint"):
        return [("patch", "nodes", "")]
    return [("patch", t, "") for t in types]


def can_i_argv(verb: str, resource: str, subresource: str, v: Verdict) -> list[str]:
    argv = ["auth", "can-i", verb, resource]
    if subresource:
        argv.append(f"--subresource={subresource}")
    if v.all_namespaces:
        argv.append("-A")
    elif v.namespace:
        argv += ["-n", v.namespace]
    return argv

"""Deterministic fixes: one safe, mechanical change per fixable rule, applied to the YAML itself.

Files are edited with ruamel.yaml's round-trip mode, so comments, key order and quoting survive.
Fixes harden how a workload runs, never what it does: image, command, ports and replicas are
left alone, and a fix that would contradict an explicit choice in the manifest (a container that
asks for root, a privileged container) declines and says why.
"""

from __future__ import annotations

import bisect
import io
import json
import re
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kai.errors import InputError
from kai.manifests import load_text
from kai.models import Finding, Manifest, Rule, Severity
from kai.policy.engine import Context, Engine
from kai.policy.normalize import decoded
from kai.textdiff import unified_diff

DEFAULT_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "128Mi"},
    "limits": {"cpu": "500m", "memory": "256Mi"},
}
DEFAULT_USER = 10001
MAX_PASSES = 4


class Decline(Exception):
    """The fix does not apply here; the message says why (it is shown to the person)."""


@dataclass(slots=True)
class Change:
    rule: str
    object: str
    description: str


@dataclass(slots=True)
class FileFix:
    """One file's fix: the texts (as on disk, for kai.policy.fixfile), the changes, the fixes declined,
    and the findings at --fail-on that remain after fixing."""

    file: str
    original: str
    fixed: str
    changes: list[Change] = field(default_factory=list)
    declined: list[Change] = field(default_factory=list)
    remaining: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the person should know about the edit

    @property
    def changed(self) -> bool:
        return self.original != self.fixed

    def diff(self) -> str:
        name = self.file if self.file != "-" else "stdin"
        return "".join(
            unified_diff(
                self.original.replace("\r\n", "\n").splitlines(keepends=True),
                self.fixed.replace("\r\n", "\n").splitlines(keepends=True),
                f"a/{name}",
                f"b/{name}",
            )
        )


@dataclass(slots=True)
class Target:
    """What a fixer works on: the object's YAML node, the finding, and every object for context."""

    doc: Any
    finding: Finding
    manifest: Manifest
    ctx: Context
    defaults: dict[str, Any]
    new_docs: list[tuple[Any, str]]

    def at(self, path: str | None) -> Any:
        node = self.doc
        for step in _steps(path):
            node = node[step]
        return node


Fixer = Callable[[Target], str]
FIXERS: dict[str, Fixer] = {}


def fixer(*rule_ids: str) -> Callable[[Fixer], Fixer]:
    def register(fn: Fixer) -> Fixer:
        for rid in rule_ids:
            FIXERS[rid] = fn
        return fn

    return register


def fixable(rule_id: str) -> bool:
    return rule_id in FIXERS


def _steps(path: str | None) -> list[str | int]:
    if not path:
        return []
    out: list[str | int] = []
    for part in path.split("."):
        m = re.fullmatch(r"([^\[]*)((?:\[\d+\])*)", part)
        assert m is not None
        if m.group(1):
            out.append(m.group(1))
        out += [int(i) for i in re.findall(r"\[(\d+)\]", m.group(2))]
    return out


def _map() -> Any:
    from ruamel.yaml.comments import CommentedMap

    return CommentedMap()


def _child(node: Any, key: str) -> Any:
    """node[key] as a mapping, created when missing (a null value counts as missing).

    A value of another type is the person's to correct: kai does not overwrite it."""
    if not isinstance(node, dict):
        raise Decline("the object is not a mapping where kai expected one")
    value = node.get(key)
    if value is None:
        node[key] = _map()
    elif not isinstance(value, dict):
        raise Decline(f"{key} is {_type_name(value)}, not a mapping: correct its type first")
    return node[key]


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _dict_or_empty(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list_or_empty(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _pod(t: Target) -> tuple[Any, str]:
    found = t.ctx.pod(t.manifest)
    if found is None:
        raise Decline("no pod template")
    return t.at(found[1]), found[1]


# ---------- security context ----------


def _own_security_context(container: Any) -> dict[str, Any]:
    """The container's securityContext; a wrong-typed one (the API rejects it) is declined, as
    a pod-level fix would not make the container pass."""
    if not isinstance(container, dict):
        raise Decline("the container is not a mapping")
    sc = container.get("securityContext")
    if sc is not None and not isinstance(sc, dict):
        raise Decline(f"securityContext is {_type_name(sc)}, not a mapping: correct its type first")
    return sc or {}


@fixer("KAI-SEC-001")
def _non_root(t: Target) -> str:
    container = t.at(t.finding.path)
    sc = _own_security_context(container)
    if sc.get("runAsUser") == 0 or sc.get("runAsNonRoot") is False:
        raise Decline("the container explicitly asks to run as root; change the image's user first")
    pod, _ = _pod(t)
    psc = _child(pod, "securityContext")
    if psc.get("runAsUser") == 0 or psc.get("runAsNonRoot") is False:
        raise Decline("the pod explicitly asks to run as root; change the image's user first")
    psc["runAsNonRoot"] = True
    if "runAsUser" not in psc:
        psc["runAsUser"] = int(t.defaults.get("runAsUser", DEFAULT_USER))
    if "runAsGroup" not in psc:
        psc["runAsGroup"] = int(t.defaults.get("runAsUser", DEFAULT_USER))
    return f"pod runs as non-root user {psc['runAsUser']}"


@fixer("KAI-SEC-003")
def _no_escalation(t: Target) -> str:
    container = t.at(t.finding.path)
    sc = _child(container, "securityContext")
    if sc.get("privileged") is True:
        raise Decline("a privileged container always escalates: remove privileged first")
    sc["allowPrivilegeEscalation"] = False
    return f"container {container.get('name')}: allowPrivilegeEscalation: false"


@fixer("KAI-SEC-004")
def _drop_all(t: Target) -> str:
    container = t.at(t.finding.path)
    caps = _child(_child(container, "securityContext"), "capabilities")
    drop = caps.get("drop")
    if drop is not None and not isinstance(drop, list):
        raise Decline("capabilities.drop is not a list: correct its type first")
    if drop is None:
        from ruamel.yaml.comments import CommentedSeq

        drop = caps["drop"] = CommentedSeq()
    if "ALL" not in drop:
        drop.append("ALL")
    return f"container {container.get('name')}: drop ALL capabilities"


@fixer("KAI-SEC-006")
def _read_only_root(t: Target) -> str:
    container = t.at(t.finding.path)
    _child(container, "securityContext")["readOnlyRootFilesystem"] = True
    mounts = container.get("volumeMounts")
    if isinstance(mounts, list) and any(
        isinstance(m, dict) and m.get("mountPath") == "/tmp" for m in mounts
    ):
        return f"container {container.get('name')}: read-only root filesystem"
    pod, _ = _pod(t)
    volumes = pod.get("volumes")
    if volumes is None:
        volumes = pod["volumes"] = []
    elif not isinstance(volumes, list):
        raise Decline("volumes is not a list: correct its type first")
    names = {v.get("name") for v in volumes if isinstance(v, dict)}
    name = "tmp" if "tmp" not in names else "kai-tmp"
    if name not in names:
        volume = _map()
        volume["name"] = name
        volume["emptyDir"] = _map()
        volumes.append(volume)
    if mounts is None:
        mounts = container["volumeMounts"] = []
    elif not isinstance(mounts, list):
        raise Decline("volumeMounts is not a list: correct its type first")
    mount = _map()
    mount["name"] = name
    mount["mountPath"] = "/tmp"
    mounts.append(mount)
    return (
        f"container {container.get('name')}: read-only root filesystem, writable emptyDir at /tmp"
    )


@fixer("KAI-SEC-007")
def _seccomp(t: Target) -> str:
    container = t.at(t.finding.path)
    own = _own_security_context(container).get("seccompProfile")
    if isinstance(own, dict) and own.get("type") == "Unconfined":
        raise Decline("the container explicitly asks for Unconfined seccomp")
    pod, _ = _pod(t)
    profile = _map()
    profile["type"] = "RuntimeDefault"
    _child(pod, "securityContext")["seccompProfile"] = profile
    return "pod uses the RuntimeDefault seccomp profile"


@fixer("KAI-SEC-008")
def _no_token(t: Target) -> str:
    pod, _ = _pod(t)
    pod["automountServiceAccountToken"] = False
    return "pod does not mount a ServiceAccount token"


BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


@fixer("KAI-SEC-005")
def _no_dangerous_capabilities(t: Target) -> str:
    container = t.at(t.finding.path)
    caps = _child(_child(container, "securityContext"), "capabilities")
    add = caps.get("add")
    if not isinstance(add, list):
        raise Decline("capabilities.add is not a list: correct its type first")
    removed = [c for c in add if c not in BASELINE_CAPABILITIES]
    for c in removed:
        add.remove(c)
    if not add:
        del caps["add"]
    return (
        f"container {container.get('name')}: removed {', '.join(map(str, removed))} from "
        "capabilities.add; the process loses that power, so whatever used it (mounts, network "
        "configuration, tracing, ...) fails until it is done another way"
    )


_HOST_NAMESPACES = {
    "KAI-SEC-009": (
        "hostNetwork",
        "the pod gets its own network namespace: it no longer sees the node's interfaces or binds "
        "the node's ports, so anything reaching it on the node's IP must go through a Service",
    ),
    "KAI-SEC-010": (
        "hostPID",
        "the pod no longer sees or signals the node's processes: node monitoring and debugging "
        "tools that rely on it stop working",
    ),
    "KAI-SEC-011": (
        "hostIPC",
        "the pod no longer shares System V IPC or POSIX shared memory with the node's processes",
    ),
}


@fixer(*_HOST_NAMESPACES)
def _no_host_namespace(t: Target) -> str:
    field, breaks = _HOST_NAMESPACES[t.finding.rule]
    pod, _ = _pod(t)
    if field in pod:
        del pod[field]
    return f"removed {field}: true; {breaks}"


# ---------- resources and images ----------

_UNITS = {
    "": 1,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "m": 1e-3,
}


def quantity(value: Any) -> float | None:
    """A Kubernetes quantity (250m, 1.5, 512Mi, 2G) as a number, or None if unreadable."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2) not in _UNITS:
        return None
    try:
        return float(m.group(1)) * _UNITS[m.group(2)]
    except ValueError:
        return None


def _at_least(default: str, floor: Any) -> Any:
    """The default, unless the container already asks for more (a limit must not undercut a request)."""
    d, f = quantity(default), quantity(floor)
    return floor if f is not None and d is not None and f > d else default


@fixer("KAI-RES-001", "KAI-RES-002")
def _resources(t: Target) -> str:
    container = t.at(t.finding.path)
    defaults = t.defaults.get("resources") or DEFAULT_RESOURCES
    res = _child(container, "resources")
    requests = _child(res, "requests")
    limits = _child(res, "limits")
    added = []
    for name in ("cpu", "memory"):
        if name not in requests and name in defaults.get("requests", {}):
            requests[name] = defaults["requests"][name]
            added.append(f"{name} request {requests[name]}")
    wanted = ["memory"] + (["cpu"] if t.finding.rule == "KAI-RES-002" else [])
    for name in wanted:
        if name not in limits and name in defaults.get("limits", {}):
            limits[name] = _at_least(defaults["limits"][name], requests.get(name))
            added.append(f"{name} limit {limits[name]}")
    if not limits:
        del res["limits"]
    return f"container {container.get('name')}: " + (", ".join(added) or "resources set")


DEFAULT_EPHEMERAL_LIMIT = "1Gi"


@fixer("KAI-RES-004")
def _ephemeral_storage(t: Target) -> str:
    container = t.at(t.finding.path)
    defaults = t.defaults.get("resources") or {}
    default = (defaults.get("limits") or {}).get("ephemeral-storage") or DEFAULT_EPHEMERAL_LIMIT
    res = _child(container, "resources")
    requests = _dict_or_empty(res.get("requests"))
    limits = _child(res, "limits")
    request = requests.get("ephemeral-storage")
    if request is not None and not quantity(request):
        raise Decline(
            f"container {container.get('name')}: its ephemeral-storage request is {request!r}, "
            "not a positive quantity: set it, or remove it to let the limit define it"
        )
    limits["ephemeral-storage"] = _at_least(str(default), request)
    return (
        f"container {container.get('name')}: ephemeral-storage limit {limits['ephemeral-storage']}"
        f"{'' if request is not None else ' (the API server copies it into the request)'}; a "
        "container that writes more to its writable layer, logs and emptyDir volumes is evicted, "
        "so size it from what the application writes (.kai.yaml defaults set another value)"
    )


@fixer("KAI-IMG-002")
def _pull_policy(t: Target) -> str:
    container = t.at(t.finding.path)
    image = str(container.get("image", ""))
    pinned = "@sha256:" in image or (
        re.search(r":[^/:@]+$", image) is not None and not image.endswith(":latest")
    )
    container["imagePullPolicy"] = "IfNotPresent" if pinned else "Always"
    return f"container {container.get('name')}: imagePullPolicy {container['imagePullPolicy']}"


# ---------- probes ----------


def _first_port(container: Any) -> Any:
    for p in _list_or_empty(_dict_or_empty(container).get("ports")):
        if isinstance(p, dict) and _valid_port(p.get("containerPort")):
            if p.get("protocol", "TCP") != "TCP":
                continue  # a TCP probe on a UDP port never succeeds
            name = p.get("name")
            return name if isinstance(name, str) and name else p["containerPort"]
    raise Decline(
        "the container declares no port to probe: add an HTTP health endpoint and probe it"
    )


def _valid_port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536


def _tcp_probe(port: Any, period: int, failures: int) -> Any:
    probe = _map()
    tcp = _map()
    tcp["port"] = port
    probe["tcpSocket"] = tcp
    probe["periodSeconds"] = period
    probe["failureThreshold"] = failures
    return probe


def _add_probe(t: Target, field: str, kind: str, period: int, failures: int) -> str:
    container = t.at(t.finding.path)
    port = _first_port(container)
    container[field] = _tcp_probe(port, period, failures)
    return (
        f"container {container.get('name')}: TCP {kind} probe on {port} (an HTTP health endpoint "
        "is better)"
    )


@fixer("KAI-PRB-001")
def _readiness(t: Target) -> str:
    return _add_probe(t, "readinessProbe", "readiness", 10, 3)


@fixer("KAI-PRB-002")
def _liveness(t: Target) -> str:
    # More tolerant than readiness, so a busy pod is taken out of service before it is restarted.
    return _add_probe(t, "livenessProbe", "liveness", 20, 6)


# ---------- labels ----------


@fixer("KAI-META-001")
def _labels(t: Target) -> str:
    meta = _child(t.doc, "metadata")
    labels = _child(meta, "labels")
    name = str(meta.get("name", ""))
    if not name:
        raise Decline("the object has no name to label it with")
    labels.setdefault("app.kubernetes.io/name", name)
    labels.setdefault("app.kubernetes.io/instance", name)
    return "recommended labels app.kubernetes.io/name and app.kubernetes.io/instance"


# ---------- generated objects ----------


def _selector_labels(t: Target) -> dict[str, str]:
    spec = _dict_or_empty(t.manifest.obj.get("spec"))
    selector = spec.get("selector")
    if (
        isinstance(selector, dict)
        and isinstance(selector.get("matchLabels"), dict)
        and selector["matchLabels"]
    ):
        return {str(k): str(v) for k, v in selector["matchLabels"].items()}
    labels = t.ctx.labels(t.manifest)
    if not labels:
        raise Decline("the pods have no labels to select them by")
    return labels


def _new_object(kind: str, api_version: str, t: Target, suffix: str) -> Any:
    obj = _map()
    obj["apiVersion"] = api_version
    obj["kind"] = kind
    meta = _map()
    meta["name"] = f"{t.manifest.ref.name}{suffix}"
    if t.manifest.ref.namespace:
        meta["namespace"] = t.manifest.ref.namespace
    obj["metadata"] = meta
    return obj


def _service_ports(t: Target) -> list[Any]:
    """The container ports the Services selecting this workload send traffic to."""
    labels = t.ctx.labels(t.manifest)
    ports: list[Any] = []
    names: dict[str, Any] = {}
    found = t.ctx.pod(t.manifest)
    for c in _list_or_empty(found[0].get("containers")) if found else []:
        for p in _list_or_empty(_dict_or_empty(c).get("ports")):
            if isinstance(p, dict) and isinstance(p.get("name"), str):
                names[p["name"]] = p.get("containerPort")
    for svc in t.ctx.of_kind("Service", namespace=t.ctx.namespace(t.manifest)):
        spec = _dict_or_empty(svc.obj.get("spec"))
        selector = spec.get("selector")
        if (
            not isinstance(selector, dict)
            or not selector
            or any(labels.get(str(k)) != str(v) for k, v in selector.items())
        ):
            continue
        for p in _list_or_empty(spec.get("ports")):
            if isinstance(p, dict):
                target = p.get("targetPort", p.get("port"))
                target = names.get(target, target) if isinstance(target, str) else target
                if (_valid_port(target) or isinstance(target, str)) and target not in ports:
                    ports.append(target)
    return ports


@fixer("KAI-NET-001")
def _network_policy(t: Target) -> str:
    np = _new_object("NetworkPolicy", "networking.k8s.io/v1", t, "")
    spec = _map()
    match = _map()
    match["matchLabels"] = _selector_labels(t)
    spec["podSelector"] = match
    spec["policyTypes"] = ["Ingress"]
    ports = _service_ports(t)
    rule = _map()
    if ports:
        port_list = []
        for p in ports:
            entry = _map()
            entry["protocol"] = "TCP"
            entry["port"] = p
            port_list.append(entry)
        rule["ports"] = port_list
        spec["ingress"] = [rule]
    else:
        spec["ingress"] = []  # no Service exposes it: nothing may connect
    np["spec"] = spec
    what = f"ports {', '.join(map(str, ports))}" if ports else "no ingress (no Service exposes it)"
    t.new_docs.append(
        (
            np,
            f"Generated by kai fix (KAI-NET-001): admits only {what}. Egress is left open so outbound "
            "calls keep working; to restrict it, add Egress with DNS (port 53 to kube-dns) and the "
            "destinations the workload needs.",
        )
    )
    return f"NetworkPolicy {np['metadata']['name']} admitting {what}"


@fixer("KAI-AVL-001")
def _pdb(t: Target) -> str:
    pdb = _new_object("PodDisruptionBudget", "policy/v1", t, "")
    spec = _map()
    spec["maxUnavailable"] = 1
    selector = _map()
    selector["matchLabels"] = _selector_labels(t)
    spec["selector"] = selector
    pdb["spec"] = spec
    t.new_docs.append(
        (pdb, "Generated by kai fix (KAI-AVL-001): at most one pod evicted at a time.")
    )
    return f"PodDisruptionBudget {pdb['metadata']['name']} (maxUnavailable: 1)"


@fixer("KAI-AVL-007")
def _unhealthy_eviction(t: Target) -> str:
    spec = _child(t.doc, "spec")
    current = spec.get("unhealthyPodEvictionPolicy")
    if isinstance(current, str) and current.lower() == "ifhealthybudget":
        spec["unhealthyPodEvictionPolicy"] = "IfHealthyBudget"  # the API's enum is case-sensitive
        return (
            f"unhealthyPodEvictionPolicy {current!r} spelled as the API accepts it: IfHealthyBudget"
        )
    if current is not None and str(current).lower() not in ("", "alwaysallow"):
        raise Decline(
            f"unhealthyPodEvictionPolicy is {current!r}, which the API rejects: set AlwaysAllow "
            "or IfHealthyBudget yourself"
        )
    spec["unhealthyPodEvictionPolicy"] = "AlwaysAllow"
    return (
        "unhealthyPodEvictionPolicy: AlwaysAllow; running pods that are not ready may now be "
        "evicted during a drain even when the budget is not met (use IfHealthyBudget instead if "
        "interrupting a pod that is still starting would lose data)"
    )


@fixer("KAI-WRK-003")
def _service_account_name(t: Target) -> str:
    pod, _ = _pod(t)
    old = pod.get("serviceAccount")
    current = pod.get("serviceAccountName")
    if current in (None, ""):
        # serviceAccountName takes the alias's place, where it was, so the pod keeps its identity.
        keys = list(pod.keys())
        pod.insert(keys.index("serviceAccount"), "serviceAccountName", old)
        comments = getattr(pod, "ca", None)
        if comments is not None and "serviceAccount" in comments.items:
            comments.items["serviceAccountName"] = comments.items.pop("serviceAccount")
        del pod["serviceAccount"]
        return f"serviceAccount: {old} renamed to serviceAccountName (the same ServiceAccount)"
    del pod["serviceAccount"]
    if current == old:
        return "removed the deprecated serviceAccount (serviceAccountName already says the same)"
    return (
        f"removed serviceAccount: {old}; the pod runs as serviceAccountName {current}, which "
        "already took precedence, so nothing changes except what a reader sees"
    )


@fixer("KAI-JOB-003")
def _job_restart_policy(t: Target) -> str:
    pod, _ = _pod(t)
    before = pod.get("restartPolicy")
    pod["restartPolicy"] = "Never"
    was = (
        f"restartPolicy {before}" if before is not None else "no restartPolicy (Always by default)"
    )
    return (
        f"{was} replaced by restartPolicy: Never, which the API server accepts for a Job: a "
        "failed pod is replaced by a new one (up to backoffLimit) and keeps its logs; use "
        "OnFailure instead to restart the container in the same pod"
    )


# ---------- the fix stage ----------


def _yaml(text: str) -> Any:
    from ruamel.yaml import YAML

    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap long strings
    # Keep the file's own list style: "containers:\n  - name" (indented) or "containers:\n- name".
    indented = re.search(r"^( *)[\w.-]+:\s*\n\1  - ", text, re.M) is not None
    flush = re.search(r"^( *)[\w.-]+:\s*\n\1- ", text, re.M) is not None
    if flush and not indented:
        y.indent(mapping=2, sequence=2, offset=0)
    else:
        y.indent(mapping=2, sequence=4, offset=2)
    return y


def _doc_line(doc: Any) -> int | None:
    lc = getattr(doc, "lc", None)
    return lc.line + 1 if lc is not None and lc.line is not None else None


_FIXING: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def _fixing(engine: Engine) -> Engine:
    """The fixable rules of `engine`: what each pass evaluates (about half the work of all of
    them); what remains is evaluated once with all, after the last pass."""
    part = _FIXING.get(engine)
    if part is None:
        part = _FIXING[engine] = engine.restricted(lambda r: r.id in FIXERS)
    return part


def fix_engine(rules: Sequence[Rule], fail_on: Severity | None = None) -> Engine:
    """The engine fix_text evaluates with: every rule when what remains is asked for (the last
    evaluation then says it), else only the fixable ones. Build it once for many files."""
    return Engine(list(rules) if fail_on is not None else [r for r in rules if r.id in FIXERS])


def _apply(
    report: Any,
    by_line: dict[int | None, Any],
    manifests: Sequence[Manifest],
    namespace: str,
    defaults: dict[str, Any],
    new_docs: list[tuple[Any, str]],
    result: FileFix,
    seen_declines: set[tuple[str, str, str]],
) -> bool:
    """Run the fixer of each fixable finding on its document (`by_line`: a document's first
    line to it); True when any changed. Declines are said once per (rule, object, reason)."""
    manifests = [Manifest(ref=m.ref, source=m.source, obj=decoded(m.obj)) for m in manifests]
    ctx = Context(manifests, namespace)
    by_ref = {(m.source.line, m.ref.display()): m for m in manifests}

    def decline(f: Finding, reason: str) -> None:
        key = (f.rule, f.object.display(), reason)
        if key not in seen_declines:
            seen_declines.add(key)
            result.declined.append(Change(f.rule, f.object.display(), reason))

    changed = False
    for f in report.findings:
        if f.suppressed or f.rule not in FIXERS:
            continue
        doc = by_line.get(f.line)
        manifest = by_ref.get((f.line, f.object.display()))
        if doc is None or manifest is None or doc.get("kind") != f.object.kind:
            decline(f, "objects inside a List are not fixed")
            continue
        try:
            description = FIXERS[f.rule](Target(doc, f, manifest, ctx, defaults, new_docs))
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            # The document's shape is not what the finding's path says (a wrong type the API
            # would reject): leave it to the person rather than guess.
            decline(f, "the object's structure is malformed here: correct it first")
            continue
        except Decline as d:
            decline(f, str(d))
            continue
        result.changes.append(Change(f.rule, f.object.display(), description))
        changed = True
    return changed


@dataclass(slots=True)
class _Pass:
    """One evaluation's fixing: what _apply needs besides the documents."""

    report: Any
    manifests: Sequence[Manifest]
    namespace: str
    defaults: dict[str, Any]
    result: FileFix
    seen_declines: set[tuple[str, str, str]]

    def apply(self, by_line: dict[int | None, Any], new_docs: list[tuple[Any, str]]) -> bool:
        return _apply(
            self.report,
            by_line,
            self.manifests,
            self.namespace,
            self.defaults,
            new_docs,
            self.result,
            self.seen_declines,
        )

    def try_apply(self, by_line: dict[int | None, Any]) -> None:
        """The same fixes on other copies of the documents, recording nothing."""
        scratch = FileFix(file=self.result.file, original="", fixed="")
        _apply(
            self.report, by_line, self.manifests, self.namespace, self.defaults, [], scratch, set()
        )


def _shares_nodes(doc: Any) -> bool:
    """Whether a mapping or list is reached twice in `doc` (a YAML alias), or a mapping merges
    another (`<<: *base`, which ruamel writes back as a reference to the edited base)."""
    from ruamel.yaml.comments import merge_attrib

    seen: set[int] = set()
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, (dict, list)):
            if id(node) in seen or getattr(node, merge_attrib, None):
                return True
            seen.add(id(node))
            stack.extend(node.values() if isinstance(node, dict) else node)
    return False


def _unshared(node: Any) -> Any:
    """A copy of `node` in which every place holds its own mapping or list (aliases and merge keys
    written out), comments, styles and line numbers kept."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq, merge_attrib

    if isinstance(node, dict):
        out: Any = CommentedMap()
        if isinstance(node, CommentedMap):
            node.copy_attributes(out, memo={})
            if hasattr(out, merge_attrib):
                delattr(out, merge_attrib)  # the merged keys are written out below
        for k, v in node.items():
            out[k] = _unshared(v)
        return out
    if isinstance(node, list):
        out = CommentedSeq(_unshared(v) for v in node)
        if isinstance(node, CommentedSeq):
            node.copy_attributes(out, memo={})
        return out
    return node


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _keep_aliases(
    docs: list[Any],
    lines: list[int | None],
    shared: dict[int, Any],
    fixing: _Pass,
) -> None:
    """Put each aliased document back as the file wrote it (its anchors kept) when the same fixes
    applied to it mean the same object as the unshared copy; otherwise keep the copy, and say so."""
    fixing.try_apply({lines[i]: d for i, d in shared.items()})
    for i, original in shared.items():
        if _plain(original) == _plain(docs[i]):
            docs[i] = original
        else:
            meta = original.get("metadata")
            name = meta.get("name") if isinstance(meta, dict) else None
            fixing.result.notes.append(
                f"{original.get('kind')}/{name}: YAML aliases written out in full: a fix changes "
                "a node the document shares between places (an anchor and its aliases), and "
                "editing it in place would change them all"
            )


def _fixable_lines(report: Any, result: FileFix) -> set[int]:
    """The lines of the documents a fixer may change: a finding already declined (said once)
    is not a reason to parse its document again."""
    declined = {(c.rule, c.object) for c in result.declined}
    return {
        f.line
        for f in report.findings
        if not f.suppressed and f.rule in FIXERS and (f.rule, f.object.display()) not in declined
    }


def _remaining(report: Any, fail_on: Severity) -> list[Finding]:
    return [f for f in report.findings if not f.suppressed and f.severity.rank >= fail_on.rank]


MAX_EDIT_NODES = 10_000


@dataclass(slots=True)
class EditBudget:
    """How much YAML kai fix parses and writes round-trip in one file, in nodes (_nodes). A
    Deployment is ~25 and costs ruamel ~20 ms to load, fix and dump, its new PDB and
    NetworkPolicy included (2 cores): the default, ~400 Deployments, is ~10 s. Past it the file is
    refused with the count, so no input keeps kai fix busy for minutes; the person can raise it
    (--edit-limit)."""

    limit: int = MAX_EDIT_NODES
    spent: int = 0

    def spend(self, file: str, documents: int, nodes: int, first: bool) -> bool:
        """Whether the edit fits. A file's first pass past the limit is refused (nothing was
        done yet); later passes, which mostly edit what kai added (a PDB's eviction policy), may
        spend up to twice the limit, and past that are not made (earlier fixes stay)."""
        if self.spent + nodes > self.limit * (1 if first else 2):
            if not first:
                return False
            many = documents != 1
            about = " (about 10 s)" if self.limit == MAX_EDIT_NODES else ""
            raise InputError(
                f"{file}: refused: {documents:,} document{'s' if many else ''} "
                f"need{'' if many else 's'} edits, {nodes:,} units of work (a unit: about a line "
                f"of YAML), past kai fix's bound of {self.limit:,} per file{about}; split the "
                "file, or raise the bound with --edit-limit"
            )
        self.spent += nodes
        return True


def _nodes(text: str) -> int:
    """ruamel's cost of a document, in lines: ~0.7 ms a line, ~0.2 ms a flow item, ~1.5 us a
    byte of a long scalar (measured on 2 cores)."""
    return text.count("\n") + text.count(",") // 4 + len(text) // 512 + 1


_SEPARATOR = re.compile(r"---(?:[ \t]+#.*|[ \t]*)\r?\n?")
_MARKER_START = re.compile(r"(?:---|\.\.\.)(?:[ \t\r\n]|$)")


def _documents(text: str) -> list[tuple[str, str, int]] | None:
    """The file split at its `---` lines: (separator line, content, content's first line) per
    document. A `---` at the start of a line always ends a document (YAML forbids it inside
    scalars), so the split is exact. None when the file uses what a per-document edit cannot
    keep: directives (`%YAML`), `...` end markers, or content on a `---` line."""
    out: list[tuple[str, str, int]] = []
    separator, first = "", 1
    content: list[str] = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if line.startswith("%"):
            return None
        if _MARKER_START.match(line):
            if not line.startswith("---") or not _SEPARATOR.fullmatch(line):
                return None
            out.append((separator, "".join(content), first))
            separator, content, first = line, [], number + 1
        else:
            content.append(line)
    out.append((separator, "".join(content), first))
    return out


def _stopped(file: str, documents: int) -> str:
    return (
        f"{file}: stopped before fixing {documents} more document{'s' if documents != 1 else ''}"
        " (what earlier fixes added): kai fix's edit bound was reached; run kai fix again on the "
        "result, or raise --edit-limit"
    )


def _edit(
    y: Any,
    text: str,
    lines: set[int],
    file: str,
    budget: EditBudget,
    fixing: _Pass,
    first: bool,
) -> str | None:
    """One pass of edits: parse the documents holding `lines` round-trip, run the fixers on them
    (`apply`), and write back only the documents that changed. None when nothing changed."""
    from ruamel.yaml.error import YAMLError

    chunks = _documents(text)
    if chunks is None:  # directives or markers: the whole file round-trip, as one stream
        chunks, whole = [("", text, 1)], True
    else:
        whole = False
    starts = [first for _, _, first in chunks]
    picked = sorted({max(bisect.bisect_right(starts, line) - 1, 0) for line in lines})
    if not budget.spend(file, len(picked), sum(_nodes(chunks[j][1]) for j in picked), first):
        fixing.result.notes.append(_stopped(file, len(picked)))
        return None
    docs: list[Any] = []
    owners: list[int] = []  # the chunk each parsed document came from
    doc_lines: list[int | None] = []
    for j in picked:
        try:
            parsed = list(y.load_all(chunks[j][1]))
        except YAMLError as e:
            raise InputError(f"{file}: cannot edit this YAML: {str(e).splitlines()[0]}") from None
        offset = chunks[j][2] - 1
        for d in parsed:
            docs.append(d)
            owners.append(j)
            line = _doc_line(d) if isinstance(d, dict) else None
            doc_lines.append(line + offset if line is not None else None)
    # a document whose YAML aliases share a node (`labels: &l` and `matchLabels: *l`) is
    # fixed as an unshared copy, so a fix to one place cannot change the other
    shared = {i: d for i, d in enumerate(docs) if isinstance(d, dict) and _shares_nodes(d)}
    for i, d in shared.items():
        docs[i] = _unshared(d)
    before = [_plain(d) for d in docs] if not whole else []
    new_docs: list[tuple[Any, str]] = []
    if not fixing.apply({line: d for line, d in zip(doc_lines, docs, strict=True)}, new_docs):
        return None
    if shared:
        _keep_aliases(docs, doc_lines, shared, fixing)
    for obj, comment in new_docs:
        obj.yaml_set_start_comment(comment)
    if whole:
        out = io.StringIO()
        y.dump_all(docs + [obj for obj, _ in new_docs], out)
        return _keep_header(text, out.getvalue())
    contents = [content for _, content, _ in chunks]
    for i, d in enumerate(docs):
        if _plain(d) != before[i]:  # an untouched document keeps its own text
            out = io.StringIO()
            y.dump(d, out)
            contents[owners[i]] = out.getvalue()
    edited = "".join(sep + content for (sep, _, _), content in zip(chunks, contents, strict=True))
    if new_docs:
        out = io.StringIO()
        y.dump_all([obj for obj, _ in new_docs], out)
        edited += ("" if edited.endswith("\n") or not edited else "\n") + "---\n" + out.getvalue()
    return edited


def fix_text(
    text: str,
    file: str,
    rules: Sequence[Rule],
    defaults: dict[str, Any] | None = None,
    namespace: str = "default",
    fail_on: Severity | None = None,
    engine: Engine | None = None,
    budget: EditBudget | None = None,
) -> FileFix:
    """Apply every applicable fix to one file's text, repeating until nothing more changes.

    Each pass evaluates first, then parses round-trip (ruamel) only the documents a fixable
    finding names, and writes back only those: the others stay byte for byte. With `fail_on`,
    the findings at or above it that the last evaluation still gives are `remaining`. `engine`
    (fix_engine) may be shared by many files; `budget` bounds the round trips of a run.
    """
    defaults = defaults or {}
    budget = budget if budget is not None else EditBudget()
    result = FileFix(file=file, original=text, fixed=text)
    if engine is None:
        engine = fix_engine(rules, fail_on)
    fixing_engine = _fixing(engine)
    current = text
    seen_declines: set[tuple[str, str, str]] = set()
    y = _yaml(text)
    for number in range(MAX_PASSES):
        manifests, notes = load_text(current, file)
        report = fixing_engine.evaluate(manifests, notes, default_namespace=namespace)
        lines = _fixable_lines(report, result)
        if not lines:
            break  # nothing to fix: no round-trip parse

        fixing = _Pass(report, manifests, namespace, defaults, result, seen_declines)
        edited = _edit(y, current, lines, file, budget, fixing, first=number == 0)
        if edited is None:
            break
        current = edited
    if fail_on is not None:  # every rule, once, on the text as written back
        manifests, notes = load_text(current, file)
        result.remaining = _remaining(
            engine.evaluate(manifests, notes, default_namespace=namespace), fail_on
        )
    result.fixed = current
    return result


def _editable(value: Any) -> Any:
    """JSON data as ruamel's round-trip types, which the fixers edit (insert at a place)."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, dict):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = _editable(v)
        return out
    if isinstance(value, list):
        return CommentedSeq(_editable(v) for v in value)
    return value


def fix_objects(
    docs: list[Any],
    file: str,
    rules: Sequence[Rule],
    defaults: dict[str, Any] | None = None,
    namespace: str = "default",
    fail_on: Severity | None = None,
    engine: Engine | None = None,
    budget: EditBudget | None = None,
) -> tuple[list[Any], FileFix]:
    """fix_text for a JSON file's documents (decoded JSON: no comments or layout to keep, so no
    YAML round trip): the documents as fixed (objects a fixer adds at the end) and the changes.
    Document i is "line" i + 1 to the findings; the caller writes the JSON and its lines."""
    from kai.manifests import split_objects

    defaults = defaults or {}
    result = FileFix(file=file, original="", fixed="")
    if engine is None:
        engine = fix_engine(rules, fail_on)

    def evaluate(plain: list[Any], with_engine: Engine) -> tuple[list[Manifest], Any]:
        manifests, notes = [], []
        for i, d in enumerate(plain):
            m, n = split_objects(d, file, i + 1)
            manifests += m
            notes += n
        return manifests, with_engine.evaluate(manifests, notes, default_namespace=namespace)

    budget = budget if budget is not None else EditBudget()
    plain, editable = docs, None
    seen_declines: set[tuple[str, str, str]] = set()
    for number in range(MAX_PASSES):
        manifests, report = evaluate(plain, _fixing(engine))
        lines = _fixable_lines(report, result)
        if not lines:
            break
        picked = [plain[line - 1] for line in lines if 0 < line <= len(plain)]
        # no round trip: ~4 ms a Deployment (~6 nodes by its compact text) against ~25 ms
        cost = sum(len(json.dumps(d, ensure_ascii=False)) // 64 + 1 for d in picked)
        if not budget.spend(file, len(picked), cost, first=number == 0):
            result.notes.append(_stopped(file, len(picked)))
            break
        if editable is None:
            editable = [_editable(d) for d in plain]
        by_line: dict[int | None, Any] = {
            i + 1: d for i, d in enumerate(editable) if isinstance(d, dict)
        }
        new_docs: list[tuple[Any, str]] = []
        if not _apply(
            report, by_line, manifests, namespace, defaults, new_docs, result, seen_declines
        ):
            break
        editable += [obj for obj, _ in new_docs]
        plain = json.loads(json.dumps(editable))  # what the next pass evaluates: plain data
    if fail_on is not None:  # at line 1, as kai.manifests.load_text places a JSON file's objects
        report = evaluate(plain, engine)[1]
        result.remaining = [replace(f, line=1) for f in _remaining(report, fail_on)]
    return plain, result


def _keep_header(original: str, dumped: str) -> str:
    """ruamel keeps comments, but not a leading `---` the file started with."""
    if original.lstrip().startswith("---") and not dumped.lstrip().startswith("---"):
        return "---\n" + dumped
    return dumped

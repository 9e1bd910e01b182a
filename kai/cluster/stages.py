"""The cluster stages of `kai apply`: live context, permission preflight, server-side dry run,
diff, ordered apply; and `kai review --cluster`.

Each stage is a function over typed values; `kai/cli.py` renders them and asks for confirmation.
The watch stage is kai/cluster/rollout.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kai.cluster.client import Cluster, LiveRead, NotServed, ServerResult
from kai.errors import ClusterError
from kai.models import Finding, Manifest, Note, Report, Rule, Source
from kai.textdiff import unified_diff

# Apply order: what others depend on first; NetworkPolicies before the workloads they protect,
# so no pod ever runs unprotected; what refers to workloads after them.
KIND_ORDER = {
    kind: rank
    for rank, kinds in enumerate(
        [
            ("Namespace",),
            ("CustomResourceDefinition",),
            ("ServiceAccount",),
            ("ClusterRole", "Role"),
            ("ClusterRoleBinding", "RoleBinding"),
            ("ConfigMap", "Secret"),
            ("StorageClass", "PersistentVolume", "PersistentVolumeClaim"),
            ("NetworkPolicy",),
            ("Service",),
            ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"),
            ("HorizontalPodAutoscaler",),
            ("PodDisruptionBudget",),
            ("Ingress",),
        ]
    )
    for kind in kinds
}
NOISE_METADATA = (
    "managedFields",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "selfLink",
)


def ordered(manifests: Sequence[Manifest]) -> list[Manifest]:
    """Dependency order (stable within a rank; unknown kinds, such as custom resources, last)."""
    return sorted(manifests, key=lambda m: KIND_ORDER.get(m.ref.kind, len(KIND_ORDER)))


@dataclass(slots=True)
class Change:
    manifest: Manifest
    action: str  # create | update | unchanged | error
    diff: str = ""
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    conflict: bool = False
    # Not dry-run yet: it needs a Namespace or CRD this run creates first (a dry run creates
    # nothing, so the server would answer 404). The diff is the manifest itself (the object
    # cannot exist yet); it is dry-run on the server after those are created, before it is applied.
    waits_for: str | None = None


@dataclass(slots=True)
class DryRun:
    changes: list[Change]
    missing_permissions: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "unchanged": 0, "error": 0}
        for c in self.changes:
            out[c.action] += 1
        return out

    @property
    def ok(self) -> bool:
        return not self.missing_permissions and all(c.action != "error" for c in self.changes)


@dataclass(slots=True)
class Applied:
    applied: list[str] = field(default_factory=list)
    failed: str | None = None
    error: str | None = None
    not_attempted: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    steps: list[str] = field(
        default_factory=list
    )  # what happened between the applies (CRDs established)


def clean(obj: dict[str, Any] | None) -> dict[str, Any]:
    """An object without what the server manages (the noise `kubectl diff` hides)."""
    if not obj:
        return {}
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = dict(out.get("metadata") or {})
    for key in NOISE_METADATA:
        meta.pop(key, None)
    annotations = dict(meta.get("annotations") or {})
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    annotations.pop("deployment.kubernetes.io/revision", None)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    out["metadata"] = meta
    return out


def diff(live: dict[str, Any] | None, after: dict[str, Any] | None, name: str) -> str:
    from kai.model.redact import mask_secrets
    from kai.yamlio import dump

    live, after = mask_secrets(clean(live) if live else None, clean(after) if after else None)
    before_text = dump(live) if live else ""
    after_text = dump(after) if after else ""
    return "".join(
        unified_diff(
            before_text.splitlines(keepends=True),
            after_text.splitlines(keepends=True),
            f"live/{name}",
            f"kai/{name}",
        )
    )


# ---------- live context ----------


@dataclass(slots=True)
class LiveContext:
    """Live objects in the namespaces a run touches, and what could not be read there."""

    existing: list[Manifest] = field(default_factory=list)
    unreadable: dict[str, dict[str, str]] = field(default_factory=dict)  # namespace -> kind -> why

    def notes(self) -> list[Note]:
        out = []
        for ns, kinds in sorted(self.unreadable.items()):
            names = ", ".join(sorted(kinds))
            why = next(iter(kinds.values()))
            out.append(
                Note(
                    f"cluster:{ns}",
                    1,
                    f"could not list {names} in namespace {ns} ({why}): findings that depend on them are unknown",
                )
            )
        return out


def _as_manifests(cluster: Cluster, read: LiveRead) -> list[Manifest]:
    from kai.manifests import object_ref

    origin = f"cluster:{cluster.context}/{read.namespace}"
    return [Manifest(object_ref(o), Source(origin, 1), o) for o in read.objects]


def live_context(cluster: Cluster, manifests: Sequence[Manifest]) -> LiveContext:
    """Live objects in the target namespaces, for cross-object rules (those being applied excluded)."""
    from kai.cluster.client import live_objects

    namespaces = {
        m.ref.namespace or cluster.namespace for m in manifests if m.ref.kind != "Namespace"
    }
    ours = {(m.ref.kind, m.ref.namespace or cluster.namespace, m.ref.name) for m in manifests}
    out = LiveContext()
    for ns in sorted(namespaces):
        read = live_objects(cluster, ns)
        if read.unreadable:
            out.unreadable[ns] = read.unreadable
        for m in _as_manifests(cluster, read):
            if (m.ref.kind, m.ref.namespace or ns, m.ref.name) not in ours:
                out.existing.append(m)
    return out


# Kinds kai never reads from a cluster (their data is credentials): a finding that depends on one
# cannot be decided there unless the object is among the reviewed files.
NEVER_READ = frozenset({"Secret"})


def mark_unknown(
    report: Report,
    rules: Sequence[Rule],
    unreadable: dict[str, dict[str, str]],
    default_namespace: str,
) -> Report:
    """Findings of cross-object rules that read a kind the identity could not list (in the
    object's namespace), or a kind kai never reads (Secrets), become "unknown": kai cannot tell
    whether the missing object exists."""
    from kai.policy.checks import READS

    by_id = {r.id: r for r in rules}
    findings = []
    for f in report.findings:
        rule = by_id.get(f.rule)
        reads = READS.get(rule.python or "", frozenset()) if rule else frozenset()
        ns = f.object.namespace or default_namespace
        blind = sorted(reads & set(unreadable.get(ns, {})))
        if blind:
            f = replace(
                f,
                unknown=True,
                message=f"{f.message} (unknown: could not list {', '.join(blind)} in namespace {ns})",
            )
        elif reads & NEVER_READ:
            f = replace(
                f,
                unknown=True,
                message=f"{f.message} (unknown: kai never reads "
                f"{', '.join(sorted(reads & NEVER_READ))} from a cluster)",
            )
        findings.append(f)
    report.findings = findings
    return report


def review_cluster(cluster: Cluster, rules: Sequence[Rule]) -> Report:
    """`kai review --cluster`: the live objects of one namespace, evaluated as they are.

    Read-only, Secrets never read. A namespace that does not exist, or that the identity may not
    read at all, is an error (exit 4), never an empty PASS.
    """
    from kai.cluster.client import live_objects
    from kai.pipeline import evaluate

    ns = cluster.namespace
    read = live_objects(cluster, ns)
    if read.exists is False:
        raise ClusterError(
            f"namespace {ns} does not exist (context {cluster.context}, server {cluster.server})"
        )
    if read.unreadable and not read.objects and _all_denied(cluster, read):
        # Nothing at all could be read: forbidden (for an identity without access the server
        # does not say whether the namespace exists).
        first = next(iter(read.unreadable.values()))
        raise ClusterError(
            f"forbidden: the identity of context {cluster.context} may not read namespace {ns}: {first}"
        )
    report = evaluate(_as_manifests(cluster, read), rules, namespace=ns)
    ctx = LiveContext(unreadable={ns: read.unreadable} if read.unreadable else {})
    report.notes += ctx.notes()
    return mark_unknown(report, rules, ctx.unreadable, ns)


def _all_denied(cluster: Cluster, read: LiveRead) -> bool:
    """Every kind kai reads (that the server serves) was denied."""
    from kai.cluster.client import LIVE_KINDS

    served = 0
    for api_version, kind in LIVE_KINDS:
        try:
            if cluster.resources(api_version).get(kind) is not None:
                served += 1
        except NotServed:
            continue
    return served > 0 and len(read.unreadable) >= served


def admission_findings(plan: DryRun, rules: Sequence[Rule]) -> Report:
    """The dry run's admission and deprecation warnings as findings of KAI-SRV-001."""
    rule = next((r for r in rules if r.server == "admission-warning" and r.enabled), None)
    findings = []
    if rule is not None:
        for c in plan.changes:
            m = c.manifest
            findings += [
                Finding(rule.id, rule.severity, w, m.ref, m.source.file, m.source.line)
                for w in c.warnings
            ]
    return Report(
        findings=findings,
        objects=[c.manifest.ref for c in plan.changes],
        rules=[rule.id] if rule else [],
    )


# ---------- what this run creates first ----------


@dataclass(slots=True)
class Pending:
    """Namespaces and CRDs this run creates, which later objects need before a dry run can see them."""

    namespaces: dict[str, Manifest] = field(default_factory=dict)
    crds: dict[tuple[str, str], Manifest] = field(default_factory=dict)  # (group, kind) -> CRD

    def waits_for(self, cluster: Cluster, m: Manifest) -> str | None:
        group = m.ref.apiVersion.split("/")[0] if "/" in m.ref.apiVersion else ""
        crd = self.crds.get((group, m.ref.kind))
        if crd is not None:
            return f"CustomResourceDefinition {crd.ref.name}"
        if m.ref.kind in ("Namespace", "CustomResourceDefinition"):
            return None
        ns = m.ref.namespace or cluster.namespace
        if ns in self.namespaces and self.namespaced(cluster, m):
            return f"Namespace {ns}"
        return None

    def namespaced(self, cluster: Cluster, m: Manifest) -> bool:
        group = m.ref.apiVersion.split("/")[0] if "/" in m.ref.apiVersion else ""
        crd = self.crds.get((group, m.ref.kind))
        if crd is not None:
            return bool((crd.obj.get("spec") or {}).get("scope", "Namespaced") == "Namespaced")
        return cluster.namespaced(m.obj)

    def plural(self, m: Manifest) -> str | None:
        group = m.ref.apiVersion.split("/")[0] if "/" in m.ref.apiVersion else ""
        crd = self.crds.get((group, m.ref.kind))
        if crd is None:
            return None
        return str(((crd.obj.get("spec") or {}).get("names") or {}).get("plural") or "") or None


def pending(cluster: Cluster, manifests: Sequence[Manifest]) -> Pending:
    """The Namespaces and CRDs among `manifests` that do not exist on the server yet."""
    out = Pending()
    for m in manifests:
        if m.ref.kind == "Namespace" and m.ref.apiVersion == "v1":
            if cluster.get(m.obj) is None:
                out.namespaces[m.ref.name] = m
        elif m.ref.kind == "CustomResourceDefinition" and m.ref.apiVersion.startswith(
            "apiextensions.k8s.io/"
        ):
            spec = m.obj.get("spec") or {}
            kind = (spec.get("names") or {}).get("kind")
            if not spec.get("group") or not kind:
                continue
            served = False
            for v in spec.get("versions") or []:
                if not isinstance(v, dict) or not v.get("served", True):
                    continue
                try:
                    served = kind in cluster.resources(f"{spec['group']}/{v.get('name')}")
                except NotServed:
                    served = False
                if served:
                    break
            if not served:
                out.crds[(str(spec["group"]), str(kind))] = m
    return out


# ---------- preflight, dry run, apply ----------


def preflight(
    cluster: Cluster,
    manifests: Sequence[Manifest],
    creates: set[int] | None = None,
    later: Pending | None = None,
    verbs: tuple[str, ...] = ("get", "patch"),
) -> list[str]:
    """What the current identity may not do, all listed together. Server-side apply is a patch,
    and a patch that creates the object also needs `create` (`creates`: ids of those manifests;
    None: every one may be a creation)."""
    later = later or Pending()
    missing = []
    seen: set[tuple[str, str, str | None, str]] = set()
    for m in manifests:
        ns = (m.ref.namespace or cluster.namespace) if later.namespaced(cluster, m) else None
        wanted = list(verbs)
        if (creates is None or id(m) in creates) and "create" not in wanted:
            wanted.append("create")
        for verb in wanted:
            key = (m.ref.apiVersion, m.ref.kind, ns, verb)
            if key in seen:
                continue
            seen.add(key)
            if not cluster.can_i(verb, m.ref.apiVersion, m.ref.kind, ns, later.plural(m)):
                where = f" in namespace {ns}" if ns else " (cluster-wide)"
                missing.append(f"{verb} {m.ref.kind} ({m.ref.apiVersion}){where}")
    return missing


_POD_SECURITY = re.compile(r'would violate PodSecurity "(privileged|baseline|restricted):')
_LEVELS = {"privileged": 0, "baseline": 1, "restricted": 2}
ENFORCE = "pod-security.kubernetes.io/enforce"


def _enforced_level(cluster: Cluster, ns: str, later: Pending) -> str | None:
    """The namespace's enforced Pod Security level (None: not set, or not readable)."""
    if ns in later.namespaces:
        labels = (later.namespaces[ns].obj.get("metadata") or {}).get("labels") or {}
    else:
        r = cluster.call("GET", f"/api/v1/namespaces/{ns}")
        if r.status >= 300 or not isinstance(r.data, dict):
            return None  # a restricted identity may not read Namespaces: the warning stays one
        labels = (r.data.get("metadata") or {}).get("labels") or {}
    level = labels.get(ENFORCE)
    return str(level) if level in _LEVELS else None


def enforced_violations(cluster: Cluster, change: Change, later: Pending) -> str | None:
    """A Pod Security warning about a level the namespace *enforces*: every pod the workload
    creates will be rejected, so it is an error before apply, not a warning."""
    levels = [m.group(1) for w in change.warnings for m in [_POD_SECURITY.search(w)] if m]
    if not levels:
        return None
    ns = change.manifest.ref.namespace or cluster.namespace
    enforced = _enforced_level(cluster, ns, later)
    if enforced is None:
        return None
    if any(_LEVELS[enforced] >= _LEVELS[level] and level != "privileged" for level in levels):
        warning = next(w for w in change.warnings if _POD_SECURITY.search(w))
        return (
            f"namespace {ns} enforces Pod Security {enforced!r}: every pod of "
            f"{change.manifest.ref.kind} {change.manifest.ref.name} would be rejected: {warning}"
        )
    return None


def _with_namespace(cluster: Cluster, m: Manifest, later: Pending) -> dict[str, Any]:
    if not later.namespaced(cluster, m):
        return m.obj
    meta = dict(m.obj.get("metadata") or {})
    meta["namespace"] = meta.get("namespace") or cluster.namespace
    return {**m.obj, "metadata": meta}


def _server_dry_run(
    cluster: Cluster, m: Manifest, live: dict[str, Any] | None, force: bool, later: Pending
) -> Change:
    try:
        server: ServerResult = cluster.apply(m.obj, dry_run=True, force=force)
    except ClusterError as e:
        return Change(m, "error", error=e.message)
    if server.error:
        return Change(
            m, "error", warnings=server.warnings, error=server.error, conflict=server.conflict
        )
    text = diff(live, server.obj, m.ref.display())
    action = "create" if live is None else ("update" if text else "unchanged")
    change = Change(m, action, text, server.warnings)
    if why := enforced_violations(cluster, change, later):
        return Change(m, "error", text, server.warnings, error=why)
    return change


def dry_run(cluster: Cluster, manifests: Sequence[Manifest], force: bool = False) -> DryRun:
    """Server-side apply with dryRun=All for every object, and the diff against what is live.

    Objects that need a Namespace or CRD this run creates cannot be dry-run yet (a dry run
    creates nothing): they are listed as creations with the manifest as their diff, and
    `apply` dry-runs them on the server once what they need exists.
    """
    later = pending(cluster, manifests)
    result = DryRun(changes=[])
    result.missing_permissions = preflight(cluster, manifests, creates=set(), later=later)
    if result.missing_permissions:
        return result  # all of them listed together, before anything is sent
    live: dict[int, dict[str, Any] | None] = {}
    waits: dict[int, str] = {}
    for m in manifests:
        if why := later.waits_for(cluster, m):
            waits[id(m)] = why
            live[id(m)] = None
            continue
        try:
            live[id(m)] = cluster.get(m.obj)
        except ClusterError as e:
            result.changes.append(Change(m, "error", error=e.message))
    creates = {id(m) for m in manifests if id(m) in live and live[id(m)] is None}
    result.missing_permissions = preflight(
        cluster, [m for m in manifests if id(m) in creates], creates, later, verbs=()
    )
    if result.missing_permissions:
        return result
    for m in ordered(manifests):
        if id(m) not in live:
            continue  # its read failed: already an error
        if id(m) in waits:
            text = diff(None, _with_namespace(cluster, m, later), m.ref.display())
            result.changes.append(Change(m, "create", text, waits_for=waits[id(m)]))
            continue
        result.changes.append(_server_dry_run(cluster, m, live[id(m)], force, later))
    result.changes.sort(key=lambda c: KIND_ORDER.get(c.manifest.ref.kind, len(KIND_ORDER)))
    return result


def wait_established(
    cluster: Cluster, crd: Manifest, timeout: float = 30.0, sleep: Any = None
) -> str | None:
    """Wait until a CRD is Established (its kinds are served); None, or why it is not."""
    import time

    sleep = sleep or time.sleep
    deadline = time.monotonic() + timeout
    while True:
        live = cluster.get(crd.obj) or {}
        for cond in (live.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "Established" and cond.get("status") == "True":
                cluster.forget()
                return None
            if cond.get("type") == "NamesAccepted" and cond.get("status") == "False":
                return f"names not accepted: {cond.get('message', '')}"
        if time.monotonic() >= deadline:
            return f"not Established after {timeout:g} s"
        sleep(0.2)


def _apply_one(cluster: Cluster, change: Change, force: bool) -> ServerResult:
    try:
        return cluster.apply(change.manifest.obj, dry_run=False, force=force)
    except ClusterError as e:
        return ServerResult(0, error=e.message)


def apply(cluster: Cluster, plan: DryRun, force: bool = False) -> Applied:
    """Apply for real, in the order the dry run used; stop at the first failure and say what was done.

    Objects that waited for a Namespace or CRD are dry-run on the server once those exist (CRDs
    Established), all together before the first of them is applied.
    """
    out = Applied()
    todo = [c for c in plan.changes if c.action in ("create", "update")]
    later = Pending()
    checked = False
    for i, change in enumerate(todo):
        if change.waits_for and not checked:
            checked = True
            failure = _dry_run_waiting(cluster, todo[i:], force, later, out)
            if failure is not None:
                out.failed, out.error = failure
                out.not_attempted = [
                    c.manifest.ref.display()
                    for c in todo[i:]
                    if c.manifest.ref.display() != out.failed
                ]
                return out
        server = _apply_one(cluster, change, force)
        out.warnings += server.warnings
        if server.error:
            out.failed = change.manifest.ref.display()
            out.error = server.error
            out.not_attempted = [c.manifest.ref.display() for c in todo[i + 1 :]]
            return out
        out.applied.append(change.manifest.ref.display())
        m = change.manifest
        if m.ref.kind == "CustomResourceDefinition":
            later.crds[("", m.ref.name)] = m  # applied: waited for before its resources
    return out


def _dry_run_waiting(
    cluster: Cluster, rest: list[Change], force: bool, later: Pending, out: Applied
) -> tuple[str, str] | None:
    """Wait for the CRDs applied so far, then dry-run each waiting object: (object, error) or None."""
    for crd in later.crds.values():
        if why := wait_established(cluster, crd):
            return crd.ref.display(), f"CustomResourceDefinition not ready: {why}"
        out.steps.append(f"{crd.ref.display()} is Established")
    cluster.forget()
    for change in rest:
        if not change.waits_for:
            continue
        try:
            live = cluster.get(change.manifest.obj)
        except ClusterError as e:
            return change.manifest.ref.display(), e.message
        checked = _server_dry_run(cluster, change.manifest, live, force, Pending())
        if checked.action == "error":
            return (
                change.manifest.ref.display(),
                f"dry run after {change.waits_for} was created: {checked.error}",
            )
        change.warnings = checked.warnings
        out.warnings += checked.warnings
    return None

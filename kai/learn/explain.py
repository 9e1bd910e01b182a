"""`kai explain`: a guided walk through a manifest for someone learning Kubernetes.

Each object in order: what its kind is for, then the fields it sets (depth-limited, noise
skipped), each with the description `kubectl explain` shows, read offline from the OpenAPI
schemas kubernetes-validate ships. The evaluator's findings sit under the object or field they
apply to, with the rule's rationale, the concept to study and the docs page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kai.models import Finding, Manifest, Note, ObjectRef, Report, Rule

# What each kind is for, in a learner's words (the schema's own description follows it).
KINDS: dict[str, tuple[str, str]] = {
    "Deployment": (
        "Runs a set of identical, interchangeable pods and replaces them gradually when you "
        "change the template (rolling updates); the usual home of a stateless service.",
        "https://kubernetes.io/docs/concepts/workloads/controllers/deployment/",
    ),
    "StatefulSet": (
        "Runs pods with stable names and their own persistent volumes, started and stopped in "
        "order: for databases and other stateful software.",
        "https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/",
    ),
    "DaemonSet": (
        "Runs one copy of a pod on every node (or a chosen set): log shippers, node agents.",
        "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
    ),
    "Job": (
        "Runs pods until a task completes successfully, retrying failures.",
        "https://kubernetes.io/docs/concepts/workloads/controllers/job/",
    ),
    "CronJob": (
        "Creates a Job on a schedule, like cron.",
        "https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/",
    ),
    "Pod": (
        "The smallest unit Kubernetes runs: one or more containers sharing a network and "
        "volumes. You rarely write Pods directly; controllers such as Deployments create them.",
        "https://kubernetes.io/docs/concepts/workloads/pods/",
    ),
    "Service": (
        "A stable name and virtual IP in front of the pods its selector matches, load-balancing "
        "connections across them; its type decides whether it is reachable from outside.",
        "https://kubernetes.io/docs/concepts/services-networking/service/",
    ),
    "Ingress": (
        "HTTP(S) routing from outside the cluster to Services, by host and path, served by an "
        "ingress controller.",
        "https://kubernetes.io/docs/concepts/services-networking/ingress/",
    ),
    "NetworkPolicy": (
        "A firewall for pods: once a policy selects a pod, only the traffic it allows gets in "
        "(or out).",
        "https://kubernetes.io/docs/concepts/services-networking/network-policies/",
    ),
    "ConfigMap": (
        "Non-secret configuration as key-value pairs, given to pods as environment variables "
        "or files.",
        "https://kubernetes.io/docs/concepts/configuration/configmap/",
    ),
    "Secret": (
        "Sensitive values (passwords, keys, tokens) kept apart from pod specs and given to pods "
        "by reference.",
        "https://kubernetes.io/docs/concepts/configuration/secret/",
    ),
    "ServiceAccount": (
        "An identity for the processes in a pod, used to authorise their calls to the API.",
        "https://kubernetes.io/docs/concepts/security/service-accounts/",
    ),
    "Namespace": (
        "A named scope that groups objects and carries policies, quotas and access rules.",
        "https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/",
    ),
    "PodDisruptionBudget": (
        "Limits how many of an application's pods voluntary disruptions (node drains, upgrades) "
        "may take down at once.",
        "https://kubernetes.io/docs/concepts/workloads/pods/disruptions/",
    ),
    "HorizontalPodAutoscaler": (
        "Adds and removes replicas of a workload to follow a metric such as CPU utilisation.",
        "https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/",
    ),
    "PersistentVolumeClaim": (
        "A request for storage that outlives pods; a pod mounts the claim as a volume.",
        "https://kubernetes.io/docs/concepts/storage/persistent-volumes/",
    ),
    "Role": (
        "A set of permissions (verbs on resources) inside one namespace.",
        "https://kubernetes.io/docs/reference/access-authn-authz/rbac/",
    ),
    "ClusterRole": (
        "A set of permissions across the whole cluster, or reusable in any namespace.",
        "https://kubernetes.io/docs/reference/access-authn-authz/rbac/",
    ),
    "RoleBinding": (
        "Grants a Role's (or ClusterRole's) permissions to users, groups or service accounts in "
        "one namespace.",
        "https://kubernetes.io/docs/reference/access-authn-authz/rbac/",
    ),
    "ClusterRoleBinding": (
        "Grants a ClusterRole's permissions cluster-wide.",
        "https://kubernetes.io/docs/reference/access-authn-authz/rbac/",
    ),
}

# Fields the server writes or that only tools read: they teach nothing about the design.
_NOISE_TOP = {"apiVersion", "kind", "status"}
_NOISE_META = {
    "managedFields",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
}
_NOISE_ANNOTATIONS = {"kubectl.kubernetes.io/last-applied-configuration"}
_MORE_INFO = re.compile(r"\s*More info:\s*(\S+?)\.?(?=\s|$)")
_BARE_URL = re.compile(r"\s*(https?://\S+?)\.?(?=\s|$)")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "Ex.", "vs.", "approx.")
DEFAULT_DEPTH = 6


@dataclass(slots=True)
class FindingNote:
    """A finding with what a learner needs to understand it."""

    finding: Finding
    title: str = ""
    rationale: str = ""
    remediation: str = ""
    concept: str | None = None
    docs: str | None = None


@dataclass(slots=True)
class FieldNote:
    """One set field: where, its value (scalars and small maps), what the schema says about it."""

    path: str
    key: str
    depth: int
    value: str | None = None
    description: str = ""
    docs: str | None = None
    known: bool = True  # False: the schema has no such field
    repeated: bool = False  # the same schema field was described earlier in this object
    findings: list[FindingNote] = field(default_factory=list)


@dataclass(slots=True)
class ObjectNote:
    manifest: Manifest
    purpose: str = ""
    purpose_docs: str | None = None
    description: str = ""
    schema: bool = True
    fields: list[FieldNote] = field(default_factory=list)
    findings: list[FindingNote] = field(default_factory=list)  # object-level


@dataclass(slots=True)
class Explanation:
    objects: list[ObjectNote] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    report: Report = field(default_factory=Report)
    kubernetes_version: str = ""
    narrative: str | None = None
    model: dict[str, Any] | None = None
    omitted: int = 0  # objects past max_objects: evaluated and counted, not walked


# ---------- descriptions ----------


def _sentences(text: str) -> list[str]:
    """Split on sentence ends, not on abbreviations or list numbers ("1. IPs are not allowed")."""
    out: list[str] = []
    start = 0
    for m in re.finditer(r"[.!?](?=\s+[A-Z(\"'`])", text):
        candidate = text[start : m.end()].strip()
        if any(candidate.endswith(a) for a in _ABBREVIATIONS) or re.search(
            r"(?:^|\s)\d{1,2}\.$", candidate
        ):
            continue
        out.append(candidate)
        start = m.end()
    rest = text[start:].strip()
    if rest:
        out.append(rest)
    return out


def summarize(description: str, sentences: int = 2, limit: int = 300) -> tuple[str, str | None]:
    """The first sentence or two of a schema description, trimmed; and its "More info" link."""
    text = " ".join(description.split())
    link = None
    m = _MORE_INFO.search(text)
    if m:
        link = m.group(1)
        text = _MORE_INFO.sub("", text).strip()
    bare = _BARE_URL.search(text)
    if bare:  # some descriptions end with a link and no "More info:"
        link = link or bare.group(1)
        text = _BARE_URL.sub("", text).strip()
    short = " ".join(_sentences(text)[:sentences])
    if len(short) > limit:
        short = short[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return short, link


# ---------- the schema of a kind, as data ----------


class KindSchema:
    """One kind's OpenAPI schema with $refs resolved on demand."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.root = data
        self.defs: dict[str, Any] = data.get("$defs") or {}

    def resolve(self, node: Any) -> dict[str, Any]:
        seen = 0
        while isinstance(node, dict) and "$ref" in node and seen < 32:
            seen += 1
            target = self.defs.get(str(node["$ref"]).rsplit("/", 1)[-1])
            if not isinstance(target, dict):
                break
            node = target
        return node if isinstance(node, dict) else {}

    @staticmethod
    def describe(node: Any, resolved: dict[str, Any]) -> str:
        # A property's own description (next to its $ref) says what the field means here.
        own = node.get("description") if isinstance(node, dict) else None
        return str(own or resolved.get("description") or "")


def kind_schema(
    api_version: str, kind: str, version: str, cache: dict[tuple[str, str], KindSchema | None]
) -> KindSchema | None:
    """The bundled schema of a kind, through kai.policy.validate's store (no kubernetes_validate import)."""
    key = (api_version, kind)
    if key not in cache:
        from kai.policy.validate import SchemaStore

        text = SchemaStore(version, strict=False).schema_text(api_version, kind)
        cache[key] = KindSchema(json.loads(text)) if text is not None else None
    return cache[key]


# ---------- walking an object ----------


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _inline(value: Any) -> str:
    """A small map or list of scalars on one line."""
    if isinstance(value, dict):
        if not value:
            return "{}"
        parts = [
            f"{k}={_inline(v) if isinstance(v, dict | list) else _scalar(v)}"
            for k, v in value.items()
        ]
        text = ", ".join(parts)
    elif isinstance(value, list):
        if not value:
            return "[]"
        text = ", ".join(_inline(v) if isinstance(v, dict | list) else _scalar(v) for v in value)
    else:
        return _scalar(value)
    return text if len(text) <= 100 else text[:99] + "…"


def _is_noise(path: Sequence[str | int], key: str) -> bool:
    if len(path) == 0:
        return key in _NOISE_TOP
    if path == ["metadata"]:
        return key in _NOISE_META
    return list(path) == ["metadata", "annotations"] and key in _NOISE_ANNOTATIONS


def _dotted(path: Sequence[str | int]) -> str:
    from kai.policy.validate import dotted

    return dotted(path)


def walk(
    obj: dict[str, Any], schema: KindSchema | None, max_depth: int = DEFAULT_DEPTH
) -> list[FieldNote]:
    """The object's set fields in order, each with its schema description."""
    notes: list[FieldNote] = []
    described: set[str] = set()

    def visit(value: Any, node: Any, path: list[str | int], depth: int) -> None:
        resolved = schema.resolve(node) if schema is not None else {}
        if isinstance(value, dict):
            props = resolved.get("properties") or {}
            extra = resolved.get("additionalProperties")
            for key, child in value.items():
                if child is None or _is_noise(path, str(key)):
                    continue
                child_node = props.get(key)
                known = schema is None or child_node is not None or extra not in (None, False)
                if child_node is None and isinstance(extra, dict):
                    child_node = extra
                child_resolved = schema.resolve(child_node) if schema is not None else {}
                child_path = [*path, str(key)]
                description, docs = summarize(KindSchema.describe(child_node, child_resolved))
                shape = _schema_path(child_path)
                note = FieldNote(
                    _dotted(child_path),
                    str(key),
                    depth + 1,
                    description=description if known else "",
                    docs=docs,
                    known=known,
                    repeated=shape in described,
                )
                described.add(shape)
                notes.append(note)
                is_map = (
                    isinstance(child, dict)
                    and not child_resolved.get("properties")
                    and child_resolved.get("additionalProperties") is not None
                )
                scalars_only = isinstance(child, list) and not any(
                    isinstance(i, dict) for i in child
                )
                if not isinstance(child, dict | list):
                    note.value = _scalar(child)
                elif (
                    is_map
                    or scalars_only
                    or depth + 1 >= max_depth
                    or (schema is not None and not known)
                ):
                    note.value = _inline(child)
                else:
                    visit(child, child_node, child_path, depth + 1)
        elif isinstance(value, list):
            items = resolved.get("items")
            for i, item in enumerate(value):
                item_path = [*path, i]
                label = item.get("name") if isinstance(item, dict) else None
                notes.append(
                    FieldNote(
                        _dotted(item_path),
                        f"[{i}]",
                        depth,
                        value=str(label) if isinstance(label, str) else None,
                    )
                )
                if isinstance(item, dict):
                    visit(item, items, item_path, depth)
                else:
                    notes[-1].value = _scalar(item)

    visit(obj, schema.root if schema is not None else None, [], 0)
    return notes


def _schema_path(path: Sequence[str | int]) -> str:
    """spec.template.spec.containers.resources: the form `kubectl explain` takes."""
    return ".".join(str(p) for p in path if not isinstance(p, int))


# ---------- putting findings where they belong ----------


def note_for(finding: Finding, rules: dict[str, Rule]) -> FindingNote:
    rule = rules.get(finding.rule)
    if rule is None:
        return FindingNote(finding)
    return FindingNote(
        finding,
        rule.title,
        rule.rationale.strip(),
        rule.remediation.strip(),
        rule.concept,
        rule.references.docs,
    )


def _owner(
    finding: Finding,
    by_ref: dict[int, Manifest],
    by_value: dict[tuple[ObjectRef, str], Manifest],
) -> Manifest | None:
    found = by_ref.get(id(finding.object))
    if found is not None and found.ref is finding.object:
        return found
    # a finding built from a copy of the ref (rare); a dict, not a scan of the shown objects
    # per finding (at 60,000 objects that scan was 190 million comparisons)
    return by_value.get((finding.object, finding.file))


def _attach(obj: ObjectNote, fn: FindingNote) -> None:
    """Under the deepest field shown whose path is the finding's path or a prefix of it."""
    path = fn.finding.path
    best: FieldNote | None = None
    if path:
        for f in obj.fields:
            covers = path == f.path or path.startswith((f.path + ".", f.path + "["))
            if covers and (best is None or len(f.path) > len(best.path)):
                best = f
    (best.findings if best is not None else obj.findings).append(fn)


def explain(
    manifests: Sequence[Manifest],
    report: Report,
    rules: Sequence[Rule],
    kubernetes_version: str | None = None,
    max_depth: int = DEFAULT_DEPTH,
    max_objects: int | None = None,
) -> Explanation:
    """Walk every object (the first `max_objects` of them, when given: the rest are evaluated
    and counted in `omitted`); findings inline under their object or field."""
    from kai.model.redact import redact_object
    from kai.policy.validate import resolve_version

    version = resolve_version(kubernetes_version)
    by_id = {r.id: r for r in rules}
    cache: dict[tuple[str, str], KindSchema | None] = {}
    result = Explanation(notes=list(report.notes), report=report, kubernetes_version=version)
    index: dict[int, ObjectNote] = {}
    shown_manifests = manifests if not max_objects else manifests[:max_objects]
    result.omitted = len(manifests) - len(shown_manifests)
    for m in shown_manifests:
        # Values are shown to the person and may be pasted anywhere: secrets are masked.
        shown = redact_object(m.obj)
        schema = kind_schema(m.ref.apiVersion, m.ref.kind, version, cache) if m.ref.kind else None
        purpose, purpose_docs = KINDS.get(m.ref.kind, ("", None))
        description = summarize(str(schema.root.get("description") or ""))[0] if schema else ""
        note = ObjectNote(
            m,
            purpose,
            purpose_docs,
            description,
            schema is not None,
            walk(shown, schema, max_depth),
        )
        result.objects.append(note)
        index[id(m)] = note
    by_ref = {id(m.ref): m for m in shown_manifests}
    by_value: dict[tuple[ObjectRef, str], Manifest] = {}
    for m in shown_manifests:
        by_value.setdefault((m.ref, m.source.file), m)  # the first, as the scan found it
    for f in report.active():
        owner = _owner(f, by_ref, by_value)
        if owner is not None and id(owner) in index:
            _attach(index[id(owner)], note_for(f, by_id))
    return result


def evaluate_all(
    manifests: Sequence[Manifest],
    notes: Sequence[Note],
    rules: Sequence[Rule],
    namespace: str = "default",
    kubernetes_version: str | None = None,
) -> Report:
    """The evaluator's verdict as `kai review` gives it: policy rules plus schema validation."""
    from kai.pipeline import SchemaOptions, evaluate, validate

    report = evaluate(manifests, rules, notes, namespace)
    if any(r.schema is not None and r.enabled for r in rules):
        findings, schema_notes = validate(
            manifests, rules, SchemaOptions(kubernetes_version=kubernetes_version)
        )
        report.findings = sorted(
            report.findings + findings,
            key=lambda f: (f.file, f.line, -f.severity.rank, f.rule, f.path or ""),
        )
        report.notes += schema_notes
    return report


# ---------- the model's narrative ----------


def finding_lines(findings: Sequence[Finding], rules: dict[str, Rule]) -> str:
    lines = []
    for f in findings:
        rule = rules.get(f.rule)
        title = f" ({rule.title})" if rule else ""
        where = f" at {f.path}" if f.path else ""
        lines.append(f"- {f.rule}{title} {f.object.display()}{where}: {f.message}")
    return "\n".join(lines) or "(none)"


def narrative_messages(
    manifests: Sequence[Manifest], report: Report, rules: Sequence[Rule]
) -> list[dict[str, str]]:
    """The explain prompt: the objects (redacted) and the evaluator's findings."""
    from kai.manifests import dump_yaml
    from kai.model.prompts import render
    from kai.model.redact import redact_object

    return render(
        "explain",
        manifests=dump_yaml(redact_object(m.obj) for m in manifests).strip(),
        findings=finding_lines(report.active(), {r.id: r for r in rules}),
    )


def add_narrative(result: Explanation, rules: Sequence[Rule], llm: Any) -> None:
    """Ask the model for a short narrative (plain prose) and record the calls it cost."""
    from kai.errors import ModelError

    messages = narrative_messages([o.manifest for o in result.objects], result.report, rules)
    completion = llm.complete(messages)
    text = completion.text.strip()
    if not text:
        raise ModelError("the model's narrative was empty")
    result.narrative = text
    result.model = usage_data(llm)


def usage_data(llm: Any) -> dict[str, Any]:
    return {
        "model": llm.settings.model,
        "calls": llm.calls,
        "prompt_tokens": llm.prompt_tokens,
        "completion_tokens": llm.completion_tokens,
        "cost_usd": llm.cost_usd,
    }


# ---------- rendering ----------


def finding_data(fn: FindingNote) -> dict[str, Any]:
    from kai.render import _finding_data

    return {
        **_finding_data(fn.finding),
        "title": fn.title,
        "rationale": fn.rationale,
        "remediation": fn.remediation,
        "concept": fn.concept,
        "docs": fn.docs,
    }


def explanation_data(result: Explanation) -> dict[str, Any]:
    """The `kai explain -o json` shape."""
    from kai.render import SCHEMA_VERSION, _note_data, _ref_data

    objects = []
    for o in result.objects:
        kind = o.manifest.ref.kind.lower()
        objects.append(
            {
                "object": _ref_data(o.manifest.ref),
                "file": o.manifest.source.file,
                "line": o.manifest.source.line,
                "purpose": o.purpose or None,
                "purpose_docs": o.purpose_docs,
                "description": o.description or None,
                "schema": o.schema,
                "findings": [finding_data(fn) for fn in o.findings],
                "fields": [
                    {
                        "path": f.path,
                        "kubectl_explain": f"{kind}.{_schema_path(_split(f.path))}"
                        if not f.key.startswith("[")
                        else None,
                        "value": f.value,
                        "description": f.description or None,
                        "docs": f.docs,
                        "known": f.known,
                        "findings": [finding_data(fn) for fn in f.findings],
                    }
                    for f in o.fields
                ],
            }
        )
    active = result.report.active()
    return {
        "version": SCHEMA_VERSION,
        "kubernetes_version": result.kubernetes_version,
        "objects": objects,
        "notes": [_note_data(n) for n in result.notes],
        "findings": len(active),
        "narrative": result.narrative,
        "model": result.model,
        "omitted_objects": result.omitted,
    }


def _parent_path(path: str) -> str:
    m = re.search(r"(\.[^.\[]+|\[\d+\])$", path)
    return path[: m.start()] if m else ""


def _split(path: str) -> list[str | int]:
    return [p for p in re.split(r"\.|\[\d+\]", path) if p]


def print_explanation(console: Any, result: Explanation) -> None:
    """A tree per object: kind, fields with descriptions, findings under what they concern."""
    from rich.markup import escape
    from rich.tree import Tree

    from kai.render import TABLE_NOTES, _sev

    def add_findings(tree: Any, findings: Sequence[FindingNote]) -> None:
        for fn in findings:
            f = fn.finding
            branch = tree.add(f"{_sev(f.severity)} [bold]{escape(f.rule)}[/] {escape(f.message)}")
            if fn.rationale:
                branch.add(f"[bold]why[/] {escape(summarize(fn.rationale)[0])}")
            if fn.remediation:
                branch.add(f"[bold]fix[/] {escape(summarize(fn.remediation)[0])}")
            study = []
            if fn.concept:
                study.append(f"[bold]study[/] {escape(fn.concept)}")
            if fn.docs:
                study.append(f"[link={fn.docs}]{escape(fn.docs)}[/link]")
            if study:
                branch.add(" · ".join(study))

    if result.narrative:
        console.print(f"[bold]In short[/] {escape(result.narrative)}\n")
    for o in result.objects:
        m = o.manifest
        head = (
            f"[bold]{escape(m.ref.display())}[/] [dim]{escape(m.ref.apiVersion)} · "
            f"{escape(m.source.file)}:{m.source.line}[/]"
        )
        tree = Tree(head, guide_style="dim")
        if o.purpose:
            tree.add(f"[italic]{escape(o.purpose)}[/]")
        if o.description:
            tree.add(f"[dim]schema:[/] {escape(o.description)}")
        if not o.schema:
            tree.add(
                "[yellow]no bundled schema for this kind: fields listed without descriptions[/]"
            )
        add_findings(tree, o.findings)
        nodes: dict[str, Any] = {}
        for f in o.fields:
            parent = nodes.get(_parent_path(f.path), tree)
            is_item = f.key.startswith("[")
            label = f"[bold]{escape(f.key)}[/]"
            if f.value is not None:
                label += (
                    f" [green]{escape(f.value)}[/]"
                    if is_item
                    else f" = [green]{escape(f.value)}[/]"
                )
            if not f.known:
                label += " [red]unknown field: not in the schema[/]"
            elif f.description and not f.repeated:
                label += f"  [dim]{escape(f.description)}[/]"
            nodes[f.path] = parent.add(label)
            add_findings(nodes[f.path], f.findings)
        console.print(tree)
    if result.omitted:
        console.print(
            f"[dim]... and {result.omitted} more object{'s' if result.omitted != 1 else ''} "
            "evaluated but not walked (--max-objects N, 0 for all)[/]"
        )
    for note in result.notes[:TABLE_NOTES]:
        console.print(f"[dim]note:[/] {escape(note.file)}:{note.line}: {escape(note.message)}")
    if len(result.notes) > TABLE_NOTES:
        console.print(
            f"[dim]... and {len(result.notes) - TABLE_NOTES} more notes (-o json lists them all)[/]"
        )
    active = result.report.active()
    total = len(result.objects) + result.omitted
    console.print(
        f"{total} object{'s' if total != 1 else ''}, "
        f"{len(active)} finding{'s' if len(active) != 1 else ''} · descriptions from the "
        f"Kubernetes {result.kubernetes_version} OpenAPI schema (what `kubectl explain` shows)"
    )
    if result.model:
        console.print(f"[dim]narrative by {escape(str(result.model['model']))}[/]")


def make_llm(model: str | None, api_base: str | None, cache: bool, timeout: float) -> Any:
    """The model client for the learning commands, with kai's on-disk response cache."""
    from kai.model.client import LLM, settings_from
    from kai.policy.catalog import cache_dir

    settings = settings_from(model, api_base=api_base, cache=cache, timeout=timeout)
    folder = cache_dir()
    return LLM(settings, folder / "llm" if folder else None)

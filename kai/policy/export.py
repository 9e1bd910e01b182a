"""Export per-object CEL rules as ValidatingAdmissionPolicy + binding, for in-cluster enforcement.

The rule's own expression is used unchanged except that `podSpec` becomes `variables.podSpec`
(and container rules iterate `variables.containers`), because a policy declares its helpers as
variables rather than with cel.bind. Objects that opt out with kai.dev/ignore annotations are
skipped by a matchCondition, as `kai review` reports them suppressed.

An export must not be able to take a cluster down: every binding leaves out the system namespaces
(kube-system, kube-node-lease, kube-public, or the list given) with a namespaceSelector on
kubernetes.io/metadata.name, which the API server sets on every namespace; the policies fail open
(failurePolicy: Ignore, so an expression that errors never blocks a request) unless asked
otherwise; and the bindings warn and audit unless deny is asked for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kai.errors import InputError
from kai.models import Rule
from kai.policy.cel import POD_SPEC_EXPR, containers_expr
from kai.policy.workload import POD_KINDS

# kind -> (API group, resource) for the kinds rules name.
RESOURCES: dict[str, tuple[str, str]] = {
    "Pod": ("", "pods"),
    "PodTemplate": ("", "podtemplates"),
    "ReplicationController": ("", "replicationcontrollers"),
    "Service": ("", "services"),
    "ConfigMap": ("", "configmaps"),
    "Secret": ("", "secrets"),
    "ServiceAccount": ("", "serviceaccounts"),
    "Namespace": ("", "namespaces"),
    "Deployment": ("apps", "deployments"),
    "StatefulSet": ("apps", "statefulsets"),
    "DaemonSet": ("apps", "daemonsets"),
    "ReplicaSet": ("apps", "replicasets"),
    "Job": ("batch", "jobs"),
    "CronJob": ("batch", "cronjobs"),
    "Ingress": ("networking.k8s.io", "ingresses"),
    "NetworkPolicy": ("networking.k8s.io", "networkpolicies"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers"),
    "PodDisruptionBudget": ("policy", "poddisruptionbudgets"),
    "Role": ("rbac.authorization.k8s.io", "roles"),
    "ClusterRole": ("rbac.authorization.k8s.io", "clusterroles"),
    "RoleBinding": ("rbac.authorization.k8s.io", "rolebindings"),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io", "clusterrolebindings"),
}
ACTIONS = {"warn": ["Warn", "Audit"], "deny": ["Deny"], "audit": ["Audit"]}
SYSTEM_NAMESPACES = ("kube-system", "kube-node-lease", "kube-public")
FAILURE_POLICIES = {"ignore": "Ignore", "fail": "Fail"}
NAMESPACE_LABEL = "kubernetes.io/metadata.name"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_POD_SPEC = re.compile(r"(?<![.\w])podSpec\b")


def exportable(rule: Rule) -> bool:
    """Per-object CEL rules can be enforced by the API server; cross-object checks cannot, nor
    can expressions that bind names with cel.bind inside a comprehension: kube-apiserver
    v1.36.2 rejects them as undeclared references (tests/cluster/test_vap.py). The built-in rules
    bind a name with a one-element comprehension instead (`[expr].all(x, ...)`), which it accepts."""
    return rule.cel is not None and rule.enabled and "cel.bind(" not in rule.cel.expression


def policy_name(rule: Rule) -> str:
    """A DNS-1123 name: kai-res-001 for KAI-RES-001, kai-team-001 for TEAM-001."""
    name = re.sub(r"[^a-z0-9-]+", "-", rule.id.lower()).strip("-")
    return name if name.startswith("kai-") else f"kai-{name}"


def _resource_rules(rule: Rule) -> list[dict[str, Any]]:
    assert rule.cel is not None
    kinds = list(rule.match.kinds) or (
        list(POD_KINDS) if rule.cel.scope in ("pod", "container") else []
    )
    kinds = [k for k in kinds if k not in rule.match.exclude_kinds]
    operations = ["CREATE", "UPDATE"]
    if not kinds:
        return [
            {"apiGroups": ["*"], "apiVersions": ["*"], "operations": operations, "resources": ["*"]}
        ]
    by_group: dict[str, list[str]] = {}
    for kind in kinds:
        if kind in RESOURCES:
            group, resource = RESOURCES[kind]
            by_group.setdefault(group, []).append(resource)
    return [
        {
            "apiGroups": [group],
            "apiVersions": ["*"],
            "operations": operations,
            "resources": sorted(resources),
        }
        for group, resources in sorted(by_group.items())
    ]


def _not_ignored(rule: Rule) -> str:
    rid = rule.id
    return (
        "!has(object.metadata.annotations) || ("
        f"!('ignore.kai.dev/{rid}' in object.metadata.annotations) && "
        "!('kai.dev/ignore' in object.metadata.annotations && "
        f"object.metadata.annotations['kai.dev/ignore'].split(',').exists(x, x.trim() == '{rid}' || x.trim() == '*')))"
    )


def policy(rule: Rule, failure_policy: str = "ignore") -> dict[str, Any]:
    """The ValidatingAdmissionPolicy enforcing one per-object CEL rule."""
    check = rule.cel
    assert check is not None
    expression = " ".join(_POD_SPEC.sub("variables.podSpec", check.expression).split())
    variables = [
        {"name": name, "expression": " ".join(_POD_SPEC.sub("variables.podSpec", expr).split())}
        for name, expr in check.variables.items()
    ]
    if check.scope in ("pod", "container"):
        variables.insert(0, {"name": "podSpec", "expression": POD_SPEC_EXPR})
    if check.scope == "container":
        containers = containers_expr(check.containers).replace("podSpec.", "variables.podSpec.")
        variables.insert(1, {"name": "containers", "expression": containers})
        expression = f"variables.containers.all(container, {expression})"
    message = f"{rule.title} ({rule.id}; see kai policies show {rule.id})"
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {
            "name": policy_name(rule),
            "labels": {"app.kubernetes.io/managed-by": "kai"},
            "annotations": {"kai.dev/rule": rule.id, "kai.dev/severity": rule.severity.value},
        },
        "spec": {
            "failurePolicy": FAILURE_POLICIES[failure_policy],
            "matchConstraints": {"resourceRules": _resource_rules(rule)},
            "matchConditions": [
                {"name": "not-ignored-by-annotation", "expression": _not_ignored(rule)}
            ],
            **({"variables": variables} if variables else {}),
            "validations": [{"expression": expression, "message": message, "reason": "Invalid"}],
        },
    }


def binding(
    rule: Rule, action: str, exclude_namespaces: Sequence[str] = SYSTEM_NAMESPACES
) -> dict[str, Any]:
    spec: dict[str, Any] = {"policyName": policy_name(rule), "validationActions": ACTIONS[action]}
    if exclude_namespaces:
        spec["matchResources"] = {
            "namespaceSelector": {
                "matchExpressions": [
                    {
                        "key": NAMESPACE_LABEL,
                        "operator": "NotIn",
                        "values": list(exclude_namespaces),
                    }
                ]
            }
        }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": policy_name(rule), "labels": {"app.kubernetes.io/managed-by": "kai"}},
        "spec": spec,
    }


def check_namespaces(names: Sequence[str]) -> list[str]:
    """The namespaces to exclude, each a DNS label (a one-line error otherwise), duplicates dropped."""
    out: list[str] = []
    for name in names:
        if len(name) > 63 or not _DNS_LABEL.fullmatch(name):
            raise InputError(
                f"--exclude-namespace {name[:70]!r}: not a namespace name (a DNS label)"
            )
        if name not in out:
            out.append(name)
    return out


def export_vap(
    rules: list[Rule],
    action: str = "warn",
    exclude_namespaces: Sequence[str] = SYSTEM_NAMESPACES,
    failure_policy: str = "ignore",
) -> tuple[list[dict[str, Any]], list[Rule]]:
    """Policy and binding for every exportable rule, and the rules that could not be exported.

    The objects share no sub-object, so YAML dumps them without anchors and aliases.
    """
    excluded = check_namespaces(exclude_namespaces)
    objects: list[dict[str, Any]] = []
    skipped: list[Rule] = []
    for rule in rules:
        if exportable(rule):
            objects += [policy(rule, failure_policy), binding(rule, action, excluded)]
        elif rule.enabled:
            skipped.append(rule)
    return json.loads(json.dumps(objects)), skipped


HEADER = "# ValidatingAdmissionPolicies generated by kai (admissionregistration.k8s.io/v1, Kubernetes 1.30+).\n"


@dataclass(slots=True)
class Exported:
    """`kai policies export`'s result: the YAML, how many policies it holds, the namespaces the
    bindings leave alone and the rules it could not export."""

    text: str
    policies: int
    excluded: list[str]
    skipped: list[Rule]


def export_policies(
    policies: Sequence[str],
    action: str,
    exclude_namespaces: Sequence[str] | None,
    failure_policy: str,
    out: str | None,
) -> Exported:
    """Every per-object CEL rule (built-in plus `policies`, as .kai.yaml selects them) as a
    policy and a binding, written to `out` (atomically) when given. `exclude_namespaces` None
    means the system namespaces; blank names are dropped."""
    from kai.config import load_config
    from kai.manifests import dump_yaml
    from kai.pipeline import rules_for
    from kai.policy.fixfile import write_atomic

    excluded = (
        list(SYSTEM_NAMESPACES)
        if exclude_namespaces is None
        else [n for n in exclude_namespaces if n.strip()]
    )
    objects, skipped = export_vap(
        rules_for(load_config(), policies=list(policies)), action, excluded, failure_policy
    )
    text = HEADER + dump_yaml(objects)
    if out:
        write_atomic(out, text)
    return Exported(text, len(objects) // 2, excluded, skipped)

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from kai.manifests import load_text
from kai.models import CelCheck, Finding, Rule, Severity
from kai.policy.catalog import load_rules, select
from kai.policy.engine import Engine


def _rule(expression: str, scope: str = "object", **kw: object) -> Rule:
    return Rule(
        id="T-001",
        title="test rule",
        severity=Severity.WARNING,
        category="test",
        rationale="r",
        remediation="r",
        cel=CelCheck(expression=expression, scope=scope, message=kw.pop("message", None)),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def _review(text: str, *rules: Rule):
    manifests, notes = load_text(text, "t.yaml")
    return Engine(rules).evaluate(manifests, notes)


ROLLOUT = """\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: r}
spec:
  template:
    metadata: {labels: {app: r}}
    spec:
      containers:
        - {name: app, image: "app:latest"}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
spec: {size: 3}
"""


def test_custom_resource_with_pod_template_is_checked_and_others_noted() -> None:
    rule = _rule(
        "!container.image.endsWith(':latest')",
        scope="container",
        message="{kind} {container} uses latest",
    )
    report = _review(ROLLOUT, rule)
    assert [(f.object.kind, f.message, f.path) for f in report.findings] == [
        ("Rollout", "Rollout app uses latest", "spec.template.spec.containers[0]")
    ]
    assert any("example.com/v1 Widget is not a built-in kind" in n.message for n in report.notes)
    assert not any("Rollout" in n.message for n in report.notes)


def test_custom_resource_with_only_generic_rules_gets_a_note() -> None:
    report = Engine(load_rules()).evaluate(*load_text(ROLLOUT, "t.yaml"))
    notes = [n.message for n in report.notes]
    assert notes == [
        "example.com/v1 Widget is not a built-in kind (a custom resource?): only generic checks (API version, metadata) apply"
    ]
    assert any(f.object.kind == "Rollout" and f.rule == "KAI-IMG-001" for f in report.findings)


def test_container_scope_covers_init_and_ephemeral_containers_in_order() -> None:
    text = """\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers: [{name: init, image: busybox}]
  containers: [{name: a, image: a}, {name: b, image: b}]
  ephemeralContainers: [{name: debug, image: busybox}]
"""
    report = _review(text, _rule("false", scope="container", message="{field}/{container}"))
    assert {(f.message, f.path) for f in report.findings} == {
        ("containers/a", "spec.containers[0]"),
        ("containers/b", "spec.containers[1]"),
        ("initContainers/init", "spec.initContainers[0]"),
        ("ephemeralContainers/debug", "spec.ephemeralContainers[0]"),
    }


def test_cronjob_nested_template_is_found() -> None:
    text = """\
apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: job, image: job}]
"""
    report = _review(
        text, _rule("has(podSpec.restartPolicy) && podSpec.restartPolicy == 'Never'", scope="pod")
    )
    assert report.findings[0].path == "spec.jobTemplate.spec.template.spec"


def test_a_failing_expression_fails_closed_with_a_note_not_a_crash() -> None:
    report = _review(
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
        _rule("object.spec.type == 'NodePort'"),
    )
    # Never a silent pass: the object counts as failing the rule, and a note says why.
    assert [(f.rule, "could not be checked" in f.message) for f in report.findings] == [
        ("T-001", True)
    ]
    assert any(
        n.message.startswith("rule T-001 could not evaluate Service/s") for n in report.notes
    )


def test_malformed_containers_do_not_crash_rules() -> None:
    text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers: [1, 'x', null]\n"
    rules = load_rules()
    report = Engine(rules).evaluate(*load_text(text, "t.yaml"))
    assert report.objects  # evaluated, and nothing raised


def test_wildcard_suppression_and_reason() -> None:
    text = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  annotations: {kai.dev/ignore: "*", kai.dev/ignore-reason: generated}\n'
    report = _review(text, _rule("false"))
    assert report.findings[0].suppressed and report.findings[0].suppression_reason == "generated"
    assert report.summary(Severity.INFO).passed


def test_select_specific_beats_broad() -> None:
    rules = load_rules()
    selected = {r.id: r.enabled for r in select(rules, enable=["KAI-RES-001"], disable=["all"])}
    assert selected["KAI-RES-001"] is True
    assert not any(v for k, v in selected.items() if k != "KAI-RES-001")
    by_category = {r.id: r.enabled for r in select(rules, disable=["probes"])}
    assert by_category["KAI-PRB-001"] is False and by_category["KAI-RES-001"] is True


def test_disabled_rules_do_not_run() -> None:
    rule = replace(_rule("false"), enabled=False)
    assert _review("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", rule).findings == []


def test_namespace_defaulting_for_cross_object_rules() -> None:
    text = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    metadata: {labels: {app: d}}
    spec: {containers: [{name: c, image: c}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: default}
spec: {podSelector: {}}
"""
    rules = [r for r in load_rules() if r.id == "KAI-NET-001"]
    manifests, notes = load_text(text, "t.yaml")
    assert Engine(rules).evaluate(manifests, notes, default_namespace="default").findings == []
    assert len(Engine(rules).evaluate(manifests, notes, default_namespace="prod").findings) == 1


def test_batched_evaluation_isolates_a_failing_rule() -> None:
    good = replace(_rule("false", message="always"), id="T-GOOD")
    bad = replace(_rule("object.spec.type == 'NodePort'"), id="T-BAD")
    report = _review("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", good, bad)
    # T-GOOD keeps its own verdict; T-BAD fails closed on its own.
    assert [(f.rule, f.message) for f in report.findings] == [
        ("T-BAD", report.findings[0].message),
        ("T-GOOD", "always"),
    ]
    assert "could not be checked" in report.findings[0].message
    assert [n.message.split(" could")[0] for n in report.notes] == ["rule T-BAD"]


def test_findings_of_a_report_share_equal_messages_and_paths() -> None:
    """50,000 objects give ~160,000 findings but ~55,000 distinct messages: one string each
    (issue 17's memory bound at 50k), and a new report does not keep the last one's."""
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n    - {{name: c, image: nginx:1.27}}\n"
    text = "---\n".join(pod.format(name=n) for n in ("a", "b"))
    manifests, notes = load_text(text, "x.yaml")
    report = Engine(load_rules()).evaluate(manifests, notes)
    by_object: dict[str, dict[tuple[str, str | None], Finding]] = {}
    for f in report.findings:
        by_object.setdefault(f.object.name, {})[(f.rule, f.path)] = f
    a, b = by_object["a"], by_object["b"]
    shared = [k for k in a if k in b and a[k].message == b[k].message]
    assert len(shared) > 5
    for key in shared:
        assert a[key].message is b[key].message
        assert a[key].path is b[key].path


def test_one_batched_program_gives_each_rules_own_value() -> None:
    """cel.batch binds the PodSpec and each container list once for all rules: every item must
    still equal what the rule's own program (cel.wrap) gives, container fields and order kept."""
    from kai.policy import cel

    checks = [
        ("object.metadata.name == 'd'", "object", ()),
        ("has(podSpec.hostNetwork)", "pod", ()),
        ("container.name != 'b'", "container", ("containers", "initContainers")),
        ("has(container.image)", "container", ("initContainers",)),
        ("container.name.size() > 0", "container", ("containers", "initContainers")),
    ]
    manifests, _ = load_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n"
        "    spec:\n      containers: [{name: a, image: x}, {name: b}]\n"
        "      initContainers: [{name: i}]\n",
        "t.yaml",
    )
    activation = cel.activation(manifests[0].obj)
    together = cel.Program(cel.batch(checks)).evaluate(activation)
    alone = [cel.Program(cel.wrap(e, s, f)).evaluate(activation) for e, s, f in checks]
    assert together == alone == [True, False, [True, False, True], [False], [True, True, True]]


def test_a_deployment_is_judged_by_the_batched_program_not_the_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batch must evaluate on ordinary objects: a batch that always failed would fall back to
    one program per rule with the same verdicts, and be 5x slower without any test noticing."""
    from kai.policy import compile as compile_module

    def no_single_runs(self: Any, m: Any, ctx: Any) -> Any:
        raise AssertionError(f"{self.rule.id} ran on its own")

    monkeypatch.setattr(compile_module._CelRule, "run", no_single_runs)
    rules = [r for r in load_rules() if r.cel is not None and not r.cel.variables]
    manifests, notes = load_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector:\n"
        "    matchLabels: {app: d}\n  template:\n    metadata: {labels: {app: d}}\n    spec:\n"
        "      containers: [{name: a, image: 'nginx:1.27'}]\n      initContainers: [{name: i, image: 'busybox:1.36'}]\n",
        "t.yaml",
    )
    report = Engine(rules).evaluate(manifests, notes)
    assert report.findings and not report.notes


def test_objects_sharing_a_pod_spec_get_the_verdicts_each_would_get_alone() -> None:
    """Pod-only rules are evaluated once per distinct PodSpec: that must never change a verdict,
    across kinds (a Pod and a Deployment with one PodSpec), names, or values that only look alike
    (1 and "1", true and "true", a key order)."""
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n"
        "  securityContext: {{runAsNonRoot: {flag}{uid}}}\n"
        "  containers: [{{name: c, image: 'nginx:1.27', ports: [{{containerPort: 80}}]}}]\n"
    )
    deployment = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n"
        "  selector: {{matchLabels: {{app: x}}}}\n  template:\n    metadata: {{labels: {{app: x}}}}\n"
        "    spec:\n      securityContext: {{runAsNonRoot: {flag}{uid}}}\n"
        "      containers: [{{name: c, image: 'nginx:1.27', ports: [{{containerPort: 80}}]}}]\n"
    )
    docs = [
        pod.format(name="p1", flag="true", uid=""),
        deployment.format(name="d1", flag="true", uid=""),
        pod.format(name="p2", flag="true", uid=""),
        pod.format(name="p3", flag="'true'", uid=""),
        deployment.format(name="d2", flag="true", uid=", runAsUser: '1000'"),
        deployment.format(name="d3", flag="true", uid=", runAsUser: 0"),
        deployment.format(name="d4", flag="true", uid=""),
    ]
    rules = load_rules()
    together = {
        (f.rule, f.object.display(), f.path, f.message)
        for f in _review("---\n".join(docs), *rules).findings
    }
    alone = {
        (f.rule, f.object.display(), f.path, f.message)
        for doc in docs
        for f in _review(doc, *rules).findings
    }
    assert together == alone
    by_object: dict[str, set[str]] = {}
    for rule, name, _, _ in together:
        by_object.setdefault(name, set()).add(rule)
    assert by_object["Pod/p1"] == by_object["Pod/p2"]
    assert by_object["Pod/p3"] != by_object["Pod/p1"]  # "true" is not true
    assert by_object["Deployment/d3"] != by_object["Deployment/d1"]  # uid 0
    assert by_object["Deployment/d4"] == by_object["Deployment/d1"]

"""Property-based tests: no input makes the loader or the engine raise an unhandled exception."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kai.errors import InputError
from kai.manifests import _fast_documents, load_text
from kai.policy.catalog import load_rules
from kai.policy.engine import Engine
from kai.yamlio import iter_documents

RULES = load_rules()
ENGINE = Engine(RULES)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["yes", "no", "on", "0755", "latest", "ALL", "*", "RuntimeDefault", "0", ""]),
)
KEYS = [
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "labels",
    "annotations",
    "spec",
    "template",
    "containers",
    "initContainers",
    "ephemeralContainers",
    "image",
    "securityContext",
    "runAsUser",
    "runAsNonRoot",
    "resources",
    "requests",
    "limits",
    "ports",
    "containerPort",
    "selector",
    "matchLabels",
    "matchExpressions",
    "podSelector",
    "policyTypes",
    "rules",
    "verbs",
    "replicas",
    "jobTemplate",
    "hostNetwork",
    "volumes",
    "hostPath",
    "env",
    "value",
    "capabilities",
    "add",
    "drop",
    "items",
    "readinessProbe",
    "livenessProbe",
    "httpGet",
    "port",
    "scaleTargetRef",
    "metrics",
    "tls",
    "type",
]
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=6
        ),
    ),
    max_leaves=40,
)
kinds = st.sampled_from(
    [
        "Deployment",
        "Pod",
        "CronJob",
        "Service",
        "Ingress",
        "NetworkPolicy",
        "Role",
        "ClusterRoleBinding",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "StatefulSet",
        "List",
        "Widget",
    ]
)
objects = st.builds(
    lambda kind, api, rest: {**rest, "kind": kind, "apiVersion": api},
    kinds,
    st.sampled_from(["v1", "apps/v1", "batch/v1", "extensions/v1beta1", "example.com/v1"]),
    st.dictionaries(st.sampled_from(KEYS), values, max_size=6),
)


@SETTINGS
@given(st.text(max_size=400))
def test_loader_never_raises_anything_but_input_error(text: str) -> None:
    try:
        load_text(text, "fuzz.yaml")
    except InputError as e:
        assert e.message.startswith("fuzz.yaml") and "\n" not in e.message


@SETTINGS
@given(st.lists(objects, min_size=1, max_size=4))
def test_engine_never_raises(objs: list[dict[str, Any]]) -> None:
    text = yaml.safe_dump_all(objs)
    manifests, notes = load_text(text, "fuzz.yaml")
    report = ENGINE.evaluate(manifests, notes)
    assert len(report.objects) == len(manifests)


@SETTINGS
@given(st.lists(st.one_of(objects, values), min_size=1, max_size=4), st.booleans())
def test_fast_and_careful_parsers_agree(docs: list[Any], explicit_start: bool) -> None:
    text = yaml.safe_dump_all(docs, explicit_start=explicit_start, sort_keys=False)
    fast = _fast_documents(text)
    if fast is None:
        return  # the fast path declined: nothing to compare
    careful = [(line, data) for line, data in iter_documents(text, "x.yaml") if data is not None]
    assert repr(fast) == repr(careful)  # repr, so that NaN equals NaN

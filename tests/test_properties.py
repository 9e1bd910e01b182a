"""Property-based tests: no input makes the loader or the engine raise an unhandled exception."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kai.errors import InputError
from kai.manifests import _careful_documents, _documents, load_text
from kai.policy.catalog import load_rules
from kai.policy.engine import Engine

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
    # where YAML 1.2 (yaml-rs) and go-yaml v2 (Kubernetes) read a plain scalar differently
    st.sampled_from(
        ["y", "N", "Off", "0E0", "1e3", "0o17", "0x_1F", "1_000", "_1", ".iNf", "<<", "1:30"]
    ),
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
    try:
        manifests, notes = load_text(text, "fuzz.yaml")
    except InputError as e:
        # NaN and infinities: json.Marshal refuses them, and so does kai, with the line
        assert "not a number JSON can carry" in e.message, e.message
        return
    report = ENGINE.evaluate(manifests, notes)
    assert len(report.objects) == len(manifests)


def _decode(decode: Any, text: str) -> Any:
    try:
        # repr, so that NaN equals NaN; empty documents are skipped either way
        return repr([(line, d) for line, d in decode(text, "x.yaml") if d is not None])
    except InputError as e:
        return e.message


@settings(SETTINGS, derandomize=True)
@given(st.lists(st.one_of(objects, values), min_size=1, max_size=4), st.booleans())
def test_fast_and_careful_parsers_agree(docs: list[Any], explicit_start: bool) -> None:
    """The one reader gives what the source-reading decoder gives, for every document.

    (Where yaml-rs's YAML 1.2 result cannot tell, the reader decodes from the source: the two
    agreeing is what makes which one ran invisible.)"""
    text = yaml.safe_dump_all(docs, explicit_start=explicit_start, sort_keys=False)
    careful = _decode(_careful_documents, text)
    assert _decode(_documents, text) == careful

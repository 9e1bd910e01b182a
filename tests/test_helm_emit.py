"""The chart generator's YAML: its fast emitter writes exactly what PyYAML's would, and every
chart value reads back, as helm and the API server read it (go-yaml), as the value it was."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kai.helm import chart
from kai.manifests import _documents

# Strings near every edge of plain YAML: indicators, ": ", " #", numbers and booleans of both
# YAML 1.1 (PyYAML) and go-yaml, timestamps, long keys.
_ATOMS = st.sampled_from(
    [
        "a",
        "Z",
        "0",
        "7",
        "_",
        ".",
        "/",
        "-",
        ":",
        " ",
        "#",
        ",",
        "=",
        "+",
        "@",
        "~",
        "%",
        "(",
        "$",
        "'",
        '"',
        "*",
        "&",
        "!",
        "|",
        ">",
        "?",
        "[",
        "{",
        "\t",
        "\n",
        "é",
        "e",
        "E",
        "x",
        "inf",
        "nan",
        "0x",
        "0o",
        "1e3",
        "1_0",
        "yes",
        "on",
        "y",
        "n",
        "null",
        "true",
        "2026-12-02",
        "<<",
        "{{",
    ]
)
_STRINGS = st.one_of(st.lists(_ATOMS, max_size=6).map("".join), st.text(max_size=8))
_SCALARS = st.one_of(
    _STRINGS,
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
)
_KEYS = st.one_of(_STRINGS, st.just("k" * 130))
_DATA = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=3)),
    max_leaves=12,
)


def _pyyaml(data: Any) -> str:
    return str(
        yaml.dump(
            data,
            Dumper=chart._IndentDumper,
            sort_keys=False,
            default_flow_style=False,
            allow_unicode=True,
            width=1_000_000,
        )
    )


@settings(max_examples=600, deadline=None)
@example({"a": [[1, 2], {"b": [{"c": 1}], "d": {}}, [], {}], "e": "nginx:1.27", "f": "a b"})
@example({"image": "registry.example.com/team/app:1.2.3", "args": ["--port=8080", "-v"]})
@example({"-": "- x", "---": "...", "a ": "a  b", "a:": "a: b", "x": ["a #b", "#", "-"]})
@given(st.dictionaries(_KEYS, _DATA, min_size=1, max_size=4))
def test_the_fast_emitter_writes_what_pyyaml_writes(data: dict[str, Any]) -> None:
    try:
        fast = chart._block(data)
    except chart._Unusual:
        return
    assert fast == _pyyaml(data)


def test_ordinary_manifests_take_the_fast_path() -> None:
    obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app.kubernetes.io/name": "web"}},
        "spec": {
            "replicas": 2,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.27",
                            "ports": [{"containerPort": 8080}],
                            "resources": {"limits": {"memory": "128Mi", "cpu": "500m"}},
                            "securityContext": {
                                "runAsNonRoot": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ]
                }
            },
        },
    }
    assert chart._block(obj) == _pyyaml(obj)


@settings(max_examples=400, deadline=None)
@example({"m": "1e3"})  # YAML 1.1 (PyYAML) reads a string, go-yaml a float: it must be quoted
@example({"x": "0o17", "y": "1_000", "z": ".iNf"})
@example({"nel": "\x85", "ls": "a\u2028b", "ps": "\u2029"})  # YAML 1.1 line breaks
@example({"y": "y", "N": "N", "on": "off", "empty": ""})  # go-yaml's booleans and null
@given(st.dictionaries(_STRINGS.filter(lambda k: k != "<<"), _DATA, min_size=1, max_size=4))
def test_a_chart_value_reads_back_as_helm_reads_it(data: dict[str, Any]) -> None:
    docs = list(_documents(chart._dump(data), "values.yaml"))
    assert [d for _, d in docs] == [_as_go_reads(data)]


def _as_go_reads(value: Any) -> Any:
    """What the API server keeps of a value that went through YAML: floats that are whole
    numbers become integers (encoding/json), as kai's reader does."""
    from kai.goyaml import json_number

    if isinstance(value, dict):
        return {k: _as_go_reads(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_go_reads(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return json_number(value)
    return value

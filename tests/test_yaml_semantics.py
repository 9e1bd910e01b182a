"""kai reads YAML as kubectl and the API server do: sigs.k8s.io/yaml over go-yaml v2.4.

The table is written from go-yaml v2.4.0's resolve.go (resolveMapList, yamlStyleFloat,
strconv.ParseInt/ParseUint with base 0), sigs.k8s.io/yaml's convertToJSONableObject (keys) and
encoding/json + the unstructured decoder (a number is an int64 when its JSON text parses as
one, else a float64). Each row: the plain scalar as written, and the JSON value Kubernetes gets.
Both decoders are checked: the fast one (yaml-rs plus the post-pass) and the source-reading one.
"""

from __future__ import annotations

from typing import Any

import pytest

from kai.errors import InputError
from kai.manifests import _careful_documents, _documents

REFUSED = object()

TABLE: list[tuple[str, Any]] = [
    # booleans: go-yaml v2 keeps YAML 1.1's words, y and n included
    ("true", True),
    ("True", True),
    ("TRUE", True),
    ("yes", True),
    ("Yes", True),
    ("YES", True),
    ("y", True),
    ("Y", True),
    ("on", True),
    ("On", True),
    ("ON", True),
    ("false", False),
    ("no", False),
    ("NO", False),
    ("n", False),
    ("N", False),
    ("off", False),
    ("OFF", False),
    ("tRUE", "tRUE"),
    ("yEs", "yEs"),
    # null
    ("", None),
    ("~", None),
    ("null", None),
    ("Null", None),
    ("NULL", None),
    ("nULL", "nULL"),
    # integers: ParseInt(s, 0, 64) after removing underscores; a leading 0 is octal
    ("0", 0),
    ("-0", 0),
    ("+12", 12),
    ("0777", 511),
    ("-0777", -511),
    ("0o777", 511),
    ("0x1F", 31),
    ("0X1F", 31),
    ("-0x1F", -31),
    ("0b101", 5),
    ("1_000", 1000),
    ("0x_1F", 31),
    ("08", 8),  # not octal: yamlStyleFloat reads 8.0, which JSON writes as 8
    ("_1", "_1"),  # no hint for "_": a string
    ("0x", "0x"),
    ("9223372036854775807", 9223372036854775807),
    ("9223372036854775808", 9.223372036854776e18),  # a uint64: the server reads a float
    ("18446744073709551616", 1.8446744073709552e19),  # past uint64: yamlStyleFloat
    ("0xFFFFFFFFFFFFFFFFFF", "0xFFFFFFFFFFFFFFFFFF"),  # past uint64, not a float: a string
    # floats: json.Marshal writes integral ones below 1e21 without a point: integers
    ("1e3", 1000),
    ("1E3", 1000),
    ("0E0", 0),
    ("1.", 1),
    ("1.5", 1.5),
    (".5", 0.5),
    ("+.5", 0.5),
    ("-.5", -0.5),
    ("1e20", 1e20),  # past int64: a float
    ("1e21", 1e21),
    ("1e", "1e"),
    ("1e999", "1e999"),  # ParseFloat's range error: a string
    (".iNf", ".iNf"),
    ("1:30", "1:30"),  # no base-60 numbers in go-yaml
    # json.Marshal refuses these: so does kubectl, and so does kai
    (".inf", REFUSED),
    ("-.Inf", REFUSED),
    (".nan", REFUSED),
    (".NaN", REFUSED),
    # timestamps stay strings (go-yaml v2 into interface{})
    ("2001-12-14", "2001-12-14"),
    ("2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"),
    # quoted and tagged scalars are strings unless the tag says otherwise
    ('"on"', "on"),
    ("'0777'", "0777"),
    ('"1e3"', "1e3"),
    ("!!str 0777", "0777"),
    ("!!str yes", "yes"),
    ('!!int "0x10"', 16),
    ("!!float 1", 1),
    ("<<", "<<"),  # a merge key only as a key
    ("=", "="),
]


def _value(decode: Any, scalar: str) -> Any:
    text = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata:\n  a: {scalar}\n"
    try:
        docs = list(decode(text, "t.yaml"))
    except InputError as e:
        assert e.message.startswith("t.yaml:5: refused:"), e.message
        return REFUSED
    return docs[0][1]["data"]["a"]


@pytest.mark.parametrize("decode", [_documents, _careful_documents], ids=["fast", "source"])
@pytest.mark.parametrize(("scalar", "expected"), TABLE, ids=[s or "empty" for s, _ in TABLE])
def test_scalar_decodes_as_kubernetes_reads_it(decode: Any, scalar: str, expected: Any) -> None:
    value = _value(decode, scalar)
    assert (
        value is REFUSED
        if expected is REFUSED
        else (value, type(value))
        == (
            expected,
            type(expected),
        )
    )


KEYS: list[tuple[str, str | None]] = [
    ("yes", "true"),
    ("on", "true"),
    ("n", "false"),
    ("1", "1"),
    ("0777", "511"),
    ("1.5", "1.5"),
    ("1e3", "1000"),  # FormatFloat(f, 'g', -1, 32)
    ("0.1", "0.1"),
    ("1e6", "1e+06"),
    ("123456", "123456"),
    ("1234567.5", "1.2345675e+06"),  # exact in float32: eight digits
    ("0.0001", "0.0001"),
    ("0.00001", "1e-05"),
    (".inf", ".inf"),
    ("1E100", ".inf"),  # beyond float32: FormatFloat gives "+Inf", written ".inf"
    ("-1e39", "-.inf"),
    ("3.4028235e38", "3.4028235e+38"),  # float32's largest finite value stays a number
    ('"on"', "on"),
    ("~", None),  # a null key: refused
]


@pytest.mark.parametrize("decode", [_documents, _careful_documents], ids=["fast", "source"])
@pytest.mark.parametrize(("key", "expected"), KEYS)
def test_keys_become_strings_as_sigs_k8s_io_yaml_writes_them(
    decode: Any, key: str, expected: str | None
) -> None:
    text = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata:\n  {key}: x\n"
    if expected is None:
        with pytest.raises(InputError, match=r"^t\.yaml:5: refused: a mapping key is null"):
            list(decode(text, "t.yaml"))
        return
    assert next(iter(decode(text, "t.yaml")))[1]["data"] == {expected: "x"}


@pytest.mark.parametrize("decode", [_documents, _careful_documents], ids=["fast", "source"])
def test_merge_keys_copy_at_their_place_later_keys_win(decode: Any) -> None:
    # go-yaml v2 decodes a merge into the map being built: a key after `<<` overrides the
    # merged one, a key before it is overridden; in a list, earlier mappings take precedence
    text = (
        "base: &b {x: 1, w: 1}\nother: &o {w: 2, z: 2}\n"
        "after: {<<: *b, x: 3}\nbefore: {x: 3, <<: *b}\nboth: {<<: [*b, *o]}\n"
    )
    data = next(iter(decode(text, "m.yaml")))[1]
    assert data["after"] == {"x": 3, "w": 1}
    assert data["before"] == {"x": 1, "w": 1}
    assert data["both"] == {"x": 1, "w": 1, "z": 2}


@pytest.mark.parametrize("decode", [_documents, _careful_documents], ids=["fast", "source"])
def test_a_one_point_two_reading_never_leaks_beside_an_unrelated_value(decode: Any) -> None:
    # issue 16: `data: {a: 1e3}` must read the same whether or not `c: on` sits beside it
    alone = next(iter(decode("data: {a: 1e3}\n", "a.yaml")))[1]
    beside = next(iter(decode("data: {a: 1e3}\nc: on\n", "a.yaml")))[1]
    assert alone["data"] == beside["data"] == {"a": 1000}
    assert beside["c"] is True


@pytest.mark.parametrize("decode", [_documents, _careful_documents], ids=["fast", "source"])
def test_duplicate_keys_are_refused_with_both_lines(decode: Any) -> None:
    with pytest.raises(
        InputError, match=r"d\.yaml:5: duplicate key 'a' \(first at line 3, again at line 5\)"
    ):
        list(decode("---\nx: 1\na: 1\nb: 2\na: 3\n", "d.yaml"))

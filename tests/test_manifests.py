from __future__ import annotations

from pathlib import Path

import pytest

from kai.errors import InputError
from kai.inputs import load_paths
from kai.manifests import discover, load_text

MULTI = """\
# Source: agent/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: a
  namespace: ns
---
---
# Source: agent/templates/empty.yaml
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: b
"""


def test_multi_document_with_lines_and_helm_empty_documents() -> None:
    manifests, notes = load_text(MULTI, "chart.yaml")
    assert [(m.ref.kind, m.ref.name, m.ref.namespace, m.source.line) for m in manifests] == [
        ("Service", "a", "ns", 2),
        ("Deployment", "b", None, 11),
    ]
    assert notes == []


def test_list_objects_are_expanded() -> None:
    text = """\
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: one}
  - apiVersion: v1
    kind: ServiceList
    items:
      - {apiVersion: v1, kind: Service, metadata: {name: two}}
"""
    manifests, _ = load_text(text, "list.yaml")
    assert [m.ref.name for m in manifests] == ["one", "two"]


def test_json_file_and_json_array() -> None:
    m, _ = load_text(
        '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}', "c.json"
    )
    assert m[0].ref.name == "c"
    m, _ = load_text(
        '[{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}]', "s.json"
    )
    assert m[0].ref.kind == "Secret"


def test_non_objects_are_reported_not_crashed_on() -> None:
    text = "just a string\n---\n42\n---\n- a\n- b\n---\nfoo: bar\n---\nkind: Thing\n"
    manifests, notes = load_text(text, "junk.yaml")
    assert manifests == []
    assert len(notes) == 5
    assert notes[0].message == "skipped: document is a string, not a Kubernetes object"
    assert [n.line for n in notes] == [1, 3, 5, 8, 10]
    assert "no apiVersion and kind" in notes[3].message
    assert "has no apiVersion;" in notes[4].message


def test_malformed_yaml_reports_file_line_and_column() -> None:
    with pytest.raises(InputError) as e:
        load_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n", "bad.yaml")
    msg = e.value.message
    assert msg.startswith("bad.yaml:5:1: invalid YAML:") or msg.startswith("bad.yaml:4:")
    assert "\n" not in msg


def test_tabs_and_bad_indentation() -> None:
    with pytest.raises(InputError, match=r"^t\.yaml:\d+:\d+: invalid YAML"):
        load_text("a:\n\tb: 1\n", "t.yaml")


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev = chr(96 + i)
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{prev}"] * 9) + "]")
    with pytest.raises(InputError, match="alias bomb"):
        load_text("\n".join(lines), "bomb.yaml")


def test_modest_alias_use_is_fine() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: &m {name: c}\ndata: {x: &v yv, z: *v}\n"
    manifests, _ = load_text(text, "ok.yaml")
    assert manifests[0].obj["data"] == {"x": "yv", "z": "yv"}


def test_a_plain_y_is_true_as_go_yaml_reads_it() -> None:
    # go-yaml v2 (sigs.k8s.io/yaml, kubectl, the API server) resolves y/n like yes/no
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {x: &v y, z: *v}\n"
    manifests, _ = load_text(text, "ok.yaml")
    assert manifests[0].obj["data"] == {"x": True, "z": True}


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5000 + "]" * 5000,
        "a: " + "[" * 5000 + "]" * 5000,
        "- " * 5000 + "x",
        '{"a":' * 5000 + "1" + "}" * 5000,
    ],
)
def test_deep_nesting_is_refused(text: str) -> None:
    with pytest.raises(
        InputError, match=r"refused: nested (more than )?\d+ levels deep|nested too deeply"
    ):
        load_text(text, "deep.yaml")


@pytest.mark.parametrize("file", ["deep.yaml", "deep.json"])
@pytest.mark.parametrize("shape", ["list", "map", "block"])
def test_nesting_up_to_the_limit_loads_and_one_more_is_refused_with_the_depth(
    file: str, shape: str
) -> None:
    from kai.manifests import MAX_DEPTH
    from kai.yamlio import MAX_DEPTH as CAREFUL_MAX_DEPTH

    assert MAX_DEPTH == CAREFUL_MAX_DEPTH

    def text(depth: int) -> str:
        inner = depth - 1  # the object itself is the first level
        if shape == "list":
            value = "[" * inner + "]" * inner
        elif shape == "map":
            value = '{"a": ' * inner + "1" + "}" * inner
        else:
            lines = "".join("\n" + "  " * (i + 1) + "a:" for i in range(inner - 1))
            return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: d}\nx:" + lines + " 1\n"
        return (
            '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}, "x": '
            + value
            + "}"
        )

    manifests, _ = load_text(text(MAX_DEPTH), file if shape != "block" else "deep.yaml")
    assert [m.ref.name for m in manifests] == ["d"]
    with pytest.raises(
        InputError, match=f"nested {MAX_DEPTH + 1} levels deep, over the limit of {MAX_DEPTH}"
    ):
        load_text(text(MAX_DEPTH + 1), file if shape != "block" else "deep.yaml")


def test_timestamps_stay_strings_like_kubernetes() -> None:
    m, _ = load_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {when: 2024-01-01}\n", "c.yaml"
    )
    assert m[0].obj["data"]["when"] == "2024-01-01"


def test_python_tags_are_not_executed() -> None:
    with pytest.raises(
        InputError, match=r"evil.yaml:1: refused: the !!python/object/apply:os.system tag"
    ):
        load_text("!!python/object/apply:os.system ['echo pwned']\n", "evil.yaml")


def test_discover_recurses_and_skips_hidden(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.yaml").write_text("{}")
    (tmp_path / "a" / "y.yml").write_text("{}")
    (tmp_path / "a" / "z.json").write_text("{}")
    (tmp_path / "a" / "README.md").write_text("no")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "h.yaml").write_text("{}")
    files = discover([str(tmp_path)])
    assert [Path(f).name for f in files] == ["x.yaml", "y.yml", "z.json"]


def test_missing_path_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no such file"):
        discover(["/nonexistent/kai.yaml"])


def test_not_utf8(tmp_path: Path) -> None:
    f = tmp_path / "b.yaml"
    f.write_bytes(b"\xff\xfe\x00garbage\x80")
    with pytest.raises(InputError, match="not UTF-8"):
        load_paths([str(f)])


def test_large_input_is_processed_in_bounded_time(tmp_path: Path) -> None:
    doc = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c{i}\ndata:\n  blob: '"
        + "x" * 2000
        + "'\n---\n"
    )
    f = tmp_path / "big.yaml"
    f.write_text("".join(doc.format(i=i) for i in range(6000)))  # about 12 MB
    manifests, _ = load_paths([str(f)])
    assert len(manifests) == 6000


def test_input_size_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import kai.manifests as mod

    monkeypatch.setattr(mod, "MAX_INPUT_BYTES", 100)
    f = tmp_path / "f.yaml"
    f.write_text("a: " + "x" * 200)
    with pytest.raises(InputError, match="input limit"):
        load_paths([str(f)])

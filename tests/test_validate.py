"""Schema validation: paths and lines, strictness, versions, CRDs, and the kubeconform backend."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from kai.errors import InputError
from kai.inputs import load_paths
from kai.policy.validate import available_versions, resolve_version, validate

CRD = str(ROOT / "tests" / "data" / "widget-crd.yaml")

TYPO = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replica: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: app
          image: ghcr.io/acme/app:1.0
          ports:
            - containerPort: "8080"
"""

WIDGETS = """\
apiVersion: example.com/v1
kind: Widget
metadata: {name: ok}
spec: {size: 3, port: http, extra: {anything: [1, 2]}}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: bad}
spec: {size: "3", colour: red}
"""


def _write(tmp_path: Path, name: str, text: str) -> str:
    f = tmp_path / name
    f.write_text(text)
    return str(f)


def test_typo_is_caught_with_path_and_line(tmp_path: Path) -> None:
    manifests, _ = load_paths([_write(tmp_path, "d.yaml", TYPO)])
    result = validate(manifests, backend="builtin")
    got = sorted((f.rule, f.path, f.line, f.message) for f in result.findings)
    assert got == [
        ("KAI-SCH-001", "spec.replica", 6, 'unknown field "replica"'),
        (
            "KAI-SCH-002",
            "spec.template.spec.containers[0].ports[0].containerPort",
            17,
            "expected integer, got string",
        ),
    ]
    assert result.notes == []  # no "not validated" note: the object was validated


def test_no_strict_relaxes_unknown_fields_only(tmp_path: Path) -> None:
    manifests, _ = load_paths([_write(tmp_path, "d.yaml", TYPO)])
    rules = {f.rule for f in validate(manifests, strict=False, backend="builtin").findings}
    assert rules == {"KAI-SCH-002"}


def test_custom_resources_without_their_crd_are_noted(tmp_path: Path) -> None:
    manifests, _ = load_paths([_write(tmp_path, "w.yaml", WIDGETS)])
    result = validate(manifests, backend="builtin")
    assert result.findings == []
    assert [n.message for n in result.notes] == [
        "not validated: no schema for example.com/v1/Widget (pass its CRD with --crd)"
    ] * 2


def test_custom_resources_with_their_crd_are_validated(tmp_path: Path) -> None:
    from kai.inputs import load_crds

    manifests, _ = load_paths([_write(tmp_path, "w.yaml", WIDGETS)])
    result = validate(manifests, crds=load_crds([CRD]), backend="builtin")
    got = sorted((f.object.name, f.rule, f.path, f.line) for f in result.findings)
    assert got == [("bad", "KAI-SCH-001", "spec.colour", 9), ("bad", "KAI-SCH-002", "spec.size", 9)]
    assert result.notes == []


def test_a_crd_among_the_reviewed_objects_is_used(tmp_path: Path) -> None:
    both = Path(CRD).read_text() + "---\n" + WIDGETS
    manifests, _ = load_paths([_write(tmp_path, "all.yaml", both)])
    assert {f.object.name for f in validate(manifests, backend="builtin").findings} == {"bad"}


def test_versions() -> None:
    versions = available_versions()
    assert versions[0] <= "1.30.0" and len(versions) >= 5
    assert resolve_version("1.30") == "1.30.0"
    assert resolve_version("v1.30.7") == "1.30.0"
    assert resolve_version(None) == versions[-1]
    assert resolve_version("1.99") == versions[-1]
    with pytest.raises(InputError, match=r"no schemas for Kubernetes 1\.2"):
        resolve_version("1.2")
    with pytest.raises(InputError, match="expected a version like"):
        resolve_version("latest")


def test_removed_api_versions_have_no_schema_in_new_releases(tmp_path: Path) -> None:
    old = "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: i}\nspec: {}\n"
    manifests, _ = load_paths([_write(tmp_path, "i.yaml", old)])
    (finding,) = validate(manifests, backend="builtin").findings
    # The API server no longer serves it: an error naming the version it does serve.
    assert finding.rule == "KAI-SCH-004" and "as networking.k8s.io/v1" in finding.message


# kubeconform's `-output json -verbose` for TYPO, as kubeconform v0.6 prints it.
KUBECONFORM_OUTPUT = {
    "resources": [
        {
            "filename": "stdin",
            "kind": "Deployment",
            "name": "web",
            "version": "apps/v1",
            "status": "statusInvalid",
            "msg": "problem validating schema. Check JSON formatting: jsonschema: '/spec' does not validate with "
            "file:///schemas/deployment-apps-v1.json#/additionalProperties: additionalProperties 'replica' not allowed",
            "validationErrors": [
                {"path": "/spec", "msg": "additionalProperties 'replica' not allowed"},
                {
                    "path": "/spec/template/spec/containers/0/ports/0/containerPort",
                    "msg": "expected integer or null, but got string",
                },
            ],
        }
    ],
    "summary": {"valid": 0, "invalid": 1, "errors": 0, "skipped": 0},
}


@pytest.fixture
def fake_kubeconform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kubeconform on PATH that records its argv and stdin and replays a recorded answer."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "kubeconform-call.json"
    script = bindir / "kubeconform"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'stdin': sys.stdin.read()}}, open({str(log)!r}, 'w'))\n"
        f"print(json.dumps({KUBECONFORM_OUTPUT!r}, indent=2))\n"
        "sys.exit(1)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return log


def test_kubeconform_backend_gives_identical_findings(
    tmp_path: Path, fake_kubeconform: Path
) -> None:
    manifests, _ = load_paths([_write(tmp_path, "d.yaml", TYPO)])
    builtin = validate(manifests, backend="builtin")
    external = validate(manifests, backend="kubeconform")
    assert external.backend == "kubeconform" and builtin.backend == "builtin"
    # auto never picks the slower path, even with kubeconform on PATH
    assert validate(manifests, backend="auto").backend == "builtin"

    def key(r):
        return sorted((f.rule, f.path, f.line, f.message) for f in r.findings)

    assert key(external) == key(builtin)
    call = json.loads(fake_kubeconform.read_text())
    argv = call["argv"]
    assert argv[:3] == ["-output", "json", "-verbose"] and "-strict" in argv and argv[-1] == "-"
    location = argv[argv.index("-schema-location") + 1]
    assert location.endswith("{{ .ResourceKind }}{{ .KindSuffix }}.json")
    # The standalone schema kubeconform will look for is where the template points.
    assert Path(
        location.replace("{{ .ResourceKind }}{{ .KindSuffix }}", "deployment-apps-v1")
    ).is_file()
    docs = [json.loads(d) for d in call["stdin"].split("---\n") if d.strip()]
    assert [d["spec"]["replica"] for d in docs] == [3]  # JSON documents, one per object


def test_explicit_kubeconform_without_the_binary_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    manifests, _ = load_paths([_write(tmp_path, "d.yaml", TYPO)])
    with pytest.raises(InputError, match="kubeconform binary is not on PATH"):
        validate(manifests, backend="kubeconform")


def test_review_includes_schema_findings_and_can_skip_them(kai, tmp_path: Path) -> None:
    f = _write(tmp_path, "d.yaml", TYPO)
    rules = {x["rule"] for x in kai("review", f, "-o", "json").json()["findings"]}
    assert {"KAI-SCH-001", "KAI-SCH-002"} <= rules
    rules = {x["rule"] for x in kai("review", f, "-o", "json", "--no-validate").json()["findings"]}
    assert not rules & {"KAI-SCH-001", "KAI-SCH-002"}


def test_validate_command(kai, tmp_path: Path) -> None:
    f = _write(tmp_path, "w.yaml", WIDGETS)
    r = kai("validate", f, "--crd", CRD, "-o", "json")
    assert r.code == 1
    assert {(x["rule"], x["path"]) for x in r.json()["findings"]} == {
        ("KAI-SCH-001", "spec.colour"),
        ("KAI-SCH-002", "spec.size"),
    }
    r = kai("validate", f)
    assert r.code == 0 and "not validated: no schema for example.com/v1/Widget" in r.out
    assert kai("validate", f, "--kubernetes-version", "banana").code == 2
    assert kai("validate", f, "--crd", str(ROOT / "examples")).code == 2  # no CRD there


def test_cached_schemas_are_not_reused_once_their_source_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pruned-schema cache is named by the source's stamp as well as the version: a new
    kubernetes-validate (new schema files) must not validate with the last one's schemas."""
    from kai.policy.validate import SchemaStore

    monkeypatch.setenv("KAI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("KAI_NO_CACHE", raising=False)
    source = tmp_path / "schemas"
    source.mkdir()
    store = SchemaStore("1.99.0", strict=True)
    store.folder = source

    def install(required: str, definitions: str) -> None:
        (source / "configmap-v1.json").write_text(
            json.dumps({"type": "object", "required": [required]})
        )
        (source / "_definitions.json").write_text(json.dumps({"$defs": {}}) + definitions)

    install("data", "")
    first = store.schema_text("v1", "ConfigMap")
    assert first is not None and '"data"' in first
    install("binaryData", "\n")  # an upgrade: other files, another stamp
    again = SchemaStore("1.99.0", strict=True)
    again.folder = source
    second = again.schema_text("v1", "ConfigMap")
    assert second is not None and '"binaryData"' in second

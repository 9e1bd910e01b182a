"""`kai package helm`, the chart renderer, and `kai review` on a chart directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import EXAMPLES, ROOT

from kai.errors import InputError
from kai.helm import chart as helm
from kai.helm import runner
from kai.helm.chart import build_chart
from kai.helm.runner import render_chart
from kai.inputs import load_paths

AGENT = EXAMPLES / "agent-hardened"
APP = ROOT / "tests" / "data" / "helm" / "app.yaml"
HAS_HELM = shutil.which("helm") is not None


@pytest.fixture
def no_helm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force kai's own renderer, whatever is on PATH."""
    monkeypatch.setattr(runner, "helm_binary", lambda: None)


def _objects(path: Path) -> list[dict[str, Any]]:
    return [m.obj for m in load_paths([str(path)])[0]]


def _write_chart(objects: list[dict[str, Any]], name: str, out: Path) -> Path:
    for rel, text in build_chart(objects, name).items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text, encoding="utf-8")
    return out


def _key(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True)


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    return sorted(map(_key, a)) == sorted(map(_key, b))


def _diff(a: Any, b: Any, path: str = "") -> set[str]:
    """Paths where two parsed objects differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return {p for k in a.keys() | b.keys() for p in _diff(a.get(k), b.get(k), f"{path}.{k}")}
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return {
            p
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for p in _diff(x, y, f"{path}[{i}]")
        }
    return set() if a == b else {path}


def _changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> set[str]:
    ident = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    old = {ident(o): o for o in before}
    new = {ident(o): o for o in after}
    assert old.keys() == new.keys()
    return {f"{k[0]}{p}" for k in old for p in _diff(old[k], new[k])}


@pytest.fixture
def agent_chart(kai: Any, tmp_path: Path) -> Path:
    r = kai("package", "helm", str(AGENT), "--name", "agent", "--out", str(tmp_path / "agent"))
    assert r.code == 0, r.err
    return tmp_path / "agent"


def test_package_writes_an_idiomatic_chart(agent_chart: Path) -> None:
    names = {p.relative_to(agent_chart).as_posix() for p in agent_chart.rglob("*") if p.is_file()}
    for f in ("Chart.yaml", "values.yaml", "templates/_helpers.tpl", "templates/NOTES.txt"):
        assert f in names
    inputs = _objects(AGENT)
    for obj in inputs:
        assert f"templates/{obj['kind'].lower()}-{obj['metadata']['name']}.yaml" in names
    chart = yaml.safe_load((agent_chart / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert (chart["name"], chart["version"], chart["appVersion"]) == ("agent", "0.1.0", "1.4.0")
    helpers = (agent_chart / "templates" / "_helpers.tpl").read_text()
    for define in ("name", "fullname", "labels", "selectorLabels"):
        assert f'{{{{- define "agent.{define}" -}}}}' in helpers
    deployment = (agent_chart / "templates" / "deployment-agent.yaml").read_text()
    assert '{{ include "agent.fullname" . }}' in deployment
    assert '{{- include "agent.labels" . | nindent 4 }}' in deployment
    assert "{{- toYaml .Values.agent.resources | nindent 12 }}" in deployment
    assert ".Values.agent.image.repository" in deployment


def test_values_hold_what_teams_change(agent_chart: Path) -> None:
    values = yaml.safe_load((agent_chart / "values.yaml").read_text())
    deployment = next(o for o in _objects(AGENT) if o["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    agent = values["agent"]
    assert agent["image"] == {
        "repository": "ghcr.io/acme/agent",
        "tag": "1.4.0",
        "pullPolicy": "IfNotPresent",
    }
    assert agent["resources"] == container["resources"]
    assert agent["service"] == {"type": "ClusterIP", "port": 80}
    # The HPA owns the replica count: it is in values as autoscaling min/max.
    assert agent["autoscaling"] == {"enabled": True, "minReplicas": 2, "maxReplicas": 10}
    assert agent["replicaCount"] == 2
    assert agent["ingress"]["host"] == "agent.example.com"
    assert agent["ingress"]["tls"] == [{"hosts": ["agent.example.com"], "secretName": "agent-tls"}]
    assert values["fullnameOverride"] == "agent"


@pytest.mark.usefixtures("no_helm")
def test_default_render_reproduces_the_input(agent_chart: Path) -> None:
    assert _same(render_chart(agent_chart), _objects(AGENT))


@pytest.mark.usefixtures("no_helm")
def test_overrides_change_exactly_those_fields(agent_chart: Path) -> None:
    inputs = _objects(AGENT)
    rendered = render_chart(
        agent_chart,
        {"agent.autoscaling.minReplicas": 5, "agent": {"image": {"tag": "1.5.0"}}},
    )
    assert _changes(inputs, rendered) == {
        "HorizontalPodAutoscaler.spec.minReplicas",
        "Deployment.spec.template.spec.containers[0].image",
    }
    deployment = next(o for o in rendered if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "ghcr.io/acme/agent:1.5.0"
    )
    hpa = next(o for o in rendered if o["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] == 5
    # Autoscaling and ingress off: the HPA and Ingress go, the Deployment gets replicaCount.
    off = render_chart(
        agent_chart, {"agent.autoscaling.enabled": False, "agent.ingress.enabled": False}
    )
    assert {o["kind"] for o in off} == {o["kind"] for o in inputs} - {
        "HorizontalPodAutoscaler",
        "Ingress",
    }
    assert next(o for o in off if o["kind"] == "Deployment")["spec"]["replicas"] == 2


@pytest.mark.usefixtures("no_helm")
def test_replicas_env_and_port_overrides(tmp_path: Path) -> None:
    inputs = _objects(APP)
    chart = _write_chart(inputs, "shop", tmp_path / "shop")
    assert _same(render_chart(chart), inputs)
    rendered = render_chart(
        chart,
        {"shop": {"replicaCount": 5, "env": {"LOG_LEVEL": "info"}, "service": {"port": 9090}}},
    )
    assert _changes(inputs, rendered) == {
        "Deployment.spec.replicas",
        "Deployment.spec.template.spec.containers[0].env[0].value",
        "Service.spec.ports[0].port",
    }
    deployment = next(o for o in rendered if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 5
    # nameOverride flows into every label that carried the chart name.
    renamed = render_chart(chart, {"nameOverride": "store"})
    assert all(
        o["metadata"].get("labels", {}).get("app.kubernetes.io/name") in (None, "store")
        for o in renamed
    )


def test_secret_data_never_lands_in_values(tmp_path: Path) -> None:
    files = build_chart(_objects(APP), "shop")
    values_text = files["values.yaml"]
    values = yaml.safe_load(values_text)
    for secret in ("hunter2-very-secret", "c2VjcmV0LXRva2Vu", "plain-text-password"):
        assert secret not in values_text
    assert "DB_PASSWORD" not in values["shop"]["env"]
    # Plain literals do land there, typed as strings ("4", "yes", "n" stay strings).
    assert values["shop"]["env"] == {
        "LOG_LEVEL": "debug",
        "WORKERS": "4",
        "FEATURE_ON": "yes",
        "VERBOSE": "n",
    }
    assert values["shop"]["image"] == {"repository": "registry.local:5000/acme/shop", "tag": "2.1"}
    assert values["shop"]["sidecars"]["logShipper"]["image"]["digest"].startswith("sha256:")


@pytest.mark.usefixtures("no_helm")
def test_every_rule_fixture_round_trips(tmp_path: Path) -> None:
    """Charts of all the policy fixtures (varied kinds and shapes) render back to their input."""
    checked = 0
    for i, fixture in enumerate(sorted((ROOT / "policies" / "tests").glob("*/*.yaml"))):
        inputs = _objects(fixture)
        if not inputs:
            continue
        chart = _write_chart(inputs, "fixture", tmp_path / f"c{i}")
        assert _same(render_chart(chart), inputs), fixture
        checked += 1
    assert checked > 100


def test_template_text_in_input_stays_literal(tmp_path: Path) -> None:
    files = build_chart(_objects(APP), "shop")
    assert '{{ "{{" }} .Values }}' in files["templates/deployment-shop.yaml"]


def _chart_with(tmp_path: Path, template: str, values: str = "a: {b: 1}\n") -> Path:
    chart = tmp_path / "c"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text(values)
    (chart / "templates" / "t.yaml").write_text(template)
    return chart


@pytest.mark.parametrize(
    "renderer",
    [
        "kai",
        pytest.param("helm", marks=pytest.mark.skipif(not HAS_HELM, reason="helm is not on PATH")),
    ],
)
def test_renderer_follows_helm_whitespace_and_functions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, renderer: str
) -> None:
    """The same expectations hold for kai's renderer and for `helm template`."""
    if renderer == "kai":
        monkeypatch.setattr(runner, "helm_binary", lambda: None)
    template = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Chart.Name }}-{{ .Release.Name }}\n"
        "  labels:\n    {{- toYaml .Values.labels | nindent 4 }}\n"
        "data:\n"
        '  missing: {{ .Values.nope | default "dflt" | quote }}\n'
        "  {{- with .Values.labels }}\n  tier: {{ .tier | quote }}\n  {{- end }}\n"
        "  {{- if .Values.off }}\n  off: x\n  {{- else }}\n  enabled: {{ not .Values.off | quote }}\n  {{- end }}\n"
        "  nested: |\n{{ .Values.text | indent 4 }}\n"
        '  trimmed: {{ "abcdef-" | trunc 6 | trimSuffix "-" | quote }}\n'
        "  {{- /* a comment */ -}}\n"
    )
    values = 'labels: {tier: web, count: "1"}\noff: false\ntext: "l1\\nl2"\n'
    out = render_chart(_chart_with(tmp_path, template, values))
    assert out == [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c-c", "labels": {"tier": "web", "count": "1"}},
            "data": {
                "missing": "dflt",
                "tier": "web",
                "enabled": "true",
                "nested": "l1\nl2\n",
                "trimmed": "abcdef",
            },
        }
    ]


@pytest.mark.usefixtures("no_helm")
@pytest.mark.parametrize(
    "action",
    [
        "{{ range .Values.a }}x{{ end }}",
        "{{ $x := 1 }}",
        "{{ .Capabilities.KubeVersion.Version }}",
        "{{ .Release.Namespace }}",
        '{{ .Files.Get "x" }}',
        '{{ printf "%s" "x" }}',
        "{{ tpl .Values.a . }}",
        '{{ lookup "v1" "Secret" "ns" "x" }}',
        "{{ if .Values.a }}x{{ else if .Values.b }}y{{ end }}",
        '{{ template "x" . }}',
        "{{ .Values.a }}",  # a map printed as text: helm would write map[b:1]
    ],
)
def test_unsupported_constructs_are_refused(tmp_path: Path, action: str) -> None:
    chart = _chart_with(tmp_path, f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {action}\n")
    with pytest.raises(InputError, match="unsupported by kai's renderer"):
        render_chart(chart)


@pytest.mark.usefixtures("no_helm")
def test_chart_dependencies_are_refused(tmp_path: Path) -> None:
    chart = _chart_with(tmp_path, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    (chart / "Chart.yaml").write_text(
        "apiVersion: v2\nname: c\nversion: 0.1.0\ndependencies:\n- name: redis\n  version: 1.0.0\n"
    )
    with pytest.raises(InputError, match="dependencies"):
        render_chart(chart)


def _findings(out: str) -> list[tuple[Any, ...]]:
    data = json.loads(out)
    return sorted(
        (f["rule"], f["severity"], f["message"], f["path"], json.dumps(f["object"]))
        for f in data["findings"]
    )


@pytest.mark.usefixtures("no_helm")
@pytest.mark.parametrize("example", ["agent-hardened", "agent-draft"])
def test_review_of_chart_matches_review_of_manifests(
    kai: Any, tmp_path: Path, example: str
) -> None:
    chart = tmp_path / "chart"
    assert (
        kai("package", "helm", str(EXAMPLES / example), "--name", "agent", "--out", str(chart)).code
        == 0
    )
    direct = kai("review", str(EXAMPLES / example), "-o", "json")
    via_chart = kai("review", str(chart), "-o", "json")
    assert via_chart.code == direct.code
    assert _findings(via_chart.out) == _findings(direct.out)
    assert json.loads(via_chart.out)["summary"] == json.loads(direct.out)["summary"]
    assert "kai's own renderer, which supports only kai-generated charts" in via_chart.err
    assert len(via_chart.err.strip().splitlines()) == 1
    if example == "agent-draft":
        assert _findings(direct.out)  # the comparison means something only with findings


@pytest.mark.usefixtures("no_helm")
def test_review_refuses_a_chart_it_cannot_render(kai: Any, tmp_path: Path) -> None:
    chart = _chart_with(tmp_path, "{{ range .Values.a }}x{{ end }}\n")
    r = kai("review", str(chart))
    assert r.code == 2
    assert "unsupported by kai's renderer" in r.err and "Traceback" not in r.err


def test_package_input_errors(kai: Any, tmp_path: Path) -> None:
    r = kai("package", "helm", str(AGENT), "--name", "Bad_Name")
    assert r.code == 2 and "chart name" in r.err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    r = kai("package", "helm", str(AGENT), "--name", "agent", "--out", str(tmp_path / "full"))
    assert r.code == 2 and "not empty" in r.err
    r = kai("package", "helm", "-", "--name", "agent", stdin="")
    assert r.code == 2 and "nothing to package" in r.err


def test_package_from_stdin_defaults_out_to_name(kai: Any, tmp_path: Path) -> None:
    r = kai("package", "helm", "-", "--name", "shop", stdin=APP.read_text())
    assert r.code == 0, r.err
    assert (tmp_path / "shop" / "templates" / "deployment-shop.yaml").is_file()


@pytest.mark.skipif(not HAS_HELM, reason="helm is not on PATH")
@pytest.mark.parametrize("source,name", [(AGENT, "agent"), (APP, "shop")])
def test_real_helm_renders_the_chart_like_kai(tmp_path: Path, source: Path, name: str) -> None:
    inputs = _objects(source)
    chart = _write_chart(inputs, name, tmp_path / name)
    lint = subprocess.run(["helm", "lint", str(chart)], capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert runner.helm_binary() is not None
    assert _same(render_chart(chart), inputs)  # through `helm template`
    overrides = {f"{helm.camel(name)}.image.tag": "9.9.9", "nameOverride": "renamed"}
    by_helm = render_chart(chart, overrides)
    helm_binary = runner.helm_binary
    try:
        runner.helm_binary = lambda: None
        by_kai = render_chart(chart, overrides)
    finally:
        runner.helm_binary = helm_binary
    assert _same(by_helm, by_kai)


def _fake_helm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `helm` on PATH that records its argv (one JSON list per call) and renders nothing."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    log = tmp_path / "helm-argv.jsonl"
    script = bindir / "helm"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    return log


@pytest.mark.parametrize(
    "name", ["--post-renderer=/bin/sh", "-x", "a b", "UPPER", "x" * 54, "../up", "a\x1b[2J"]
)
def test_a_chart_name_that_is_no_release_name_never_reaches_helm(
    kai, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    log = _fake_helm(tmp_path, monkeypatch)
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        json.dumps({"apiVersion": "v2", "name": name, "version": "0.1.0"})
    )
    r = kai("review", str(chart))
    assert r.code == 2 and "invalid chart name" in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert not log.exists()  # helm was never run


def test_helm_gets_double_dash_before_the_release_name_and_chart(
    kai, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _fake_helm(tmp_path, monkeypatch)
    chart = tmp_path / "-chart"  # even a directory that looks like a flag
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: web.v1\nversion: 0.1.0\n")
    kai("review", str(chart))
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls and calls[0][0] == "template"
    assert calls[0][-3:] == ["--", "web.v1", str(chart)]
    render_chart(chart, {"replicas": 2})
    argv = json.loads(log.read_text().splitlines()[-1])
    assert argv[1] == "--values" and argv[-3:] == ["--", "web.v1", str(chart)]


def _configmaps(count: int, seed: int = 0) -> str:
    import random

    rng = random.Random(seed)  # hex noise: gzip shrinks it only about twofold
    return "".join(
        f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n"
        f"  blob: {rng.getrandbits(8192):x}\n"
        for i in range(count)
    )


def test_a_release_helm_could_not_store_is_refused_before_anything_is_written(
    kai: Any, tmp_path: Path
) -> None:
    # 800 x 2 KiB of noise: ~0.85 MiB gzip'd, held twice in helm's release record (templates and
    # manifest), base64'd: over helm's 1 MiB release Secret, so `helm install` would fail
    src = tmp_path / "big.yaml"
    src.write_text(_configmaps(800))
    r = kai("package", "helm", str(src), "--name", "big", "--out", str(tmp_path / "big"))
    assert r.code == 2
    assert "Helm release of more than" in r.err and "at most 1 MiB" in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert not (tmp_path / "big").exists()


def test_a_release_under_helms_limit_is_packaged(kai: Any, tmp_path: Path) -> None:
    from kai.helm.chart import release_size_floor
    from kai.manifests import load_text

    text = _configmaps(100)  # ~0.1 MiB gzip'd
    assert release_size_floor(load_text(text, "s.yaml")[0]) is None
    src = tmp_path / "small.yaml"
    src.write_text(text)
    r = kai("package", "helm", str(src), "--name", "small", "--out", str(tmp_path / "small"))
    assert r.code == 0, r.err
    assert len(list((tmp_path / "small" / "templates").glob("*.yaml"))) == 100

"""Rendering charts to objects: `helm template` when helm is on PATH, else kai's renderer;
loading chart directories given as input.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kai.errors import InputError
from kai.helm.template import _lex, _Node, _parse, _Renderer, _Root, _Unsupported, merge_values
from kai.models import Manifest, Note, Source

RELEASE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
MAX_RELEASE_NAME = 53


def _load_yaml_file(path: Path) -> Any:
    from kai.manifests import read_file
    from kai.yamlio import iter_documents

    docs = list(iter_documents(read_file(path), str(path)))
    return docs[0][1] if docs else None


def _chart_meta(chart_dir: Path) -> dict[str, Any]:
    chart = chart_dir / "Chart.yaml"
    if not chart.is_file():
        raise InputError(f"{chart_dir}: not a Helm chart (no Chart.yaml)")
    meta = _load_yaml_file(chart)
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise InputError(f"{chart}: Chart.yaml needs a name")
    name = meta["name"]
    # The name becomes helm template's release name: Helm's own rule (a DNS subdomain, at most
    # 53 characters), which also keeps a name like `--post-renderer=/bin/sh` from being a flag.
    if len(name) > MAX_RELEASE_NAME or not RELEASE_NAME.fullmatch(name):
        raise InputError(
            f"{chart}: invalid chart name {name!r}: use lowercase letters, digits, '-' and '.', "
            f"starting and ending with a letter or digit, at most {MAX_RELEASE_NAME} characters"
        )
    return meta


def _render_with_kai(chart_dir: Path, overrides: dict[str, Any]) -> list[tuple[str, str]]:
    """(template path, rendered text) for each template, by kai's own renderer."""
    meta = _chart_meta(chart_dir)
    if meta.get("dependencies") or any((chart_dir / "charts").glob("*")):
        raise InputError(
            f"{chart_dir}: unsupported by kai's renderer: chart dependencies (install helm to render it)"
        )
    values_file = chart_dir / "values.yaml"
    values = _load_yaml_file(values_file) if values_file.is_file() else {}
    values = merge_values(values if isinstance(values, dict) else {}, overrides)
    root = _Root(
        values,
        {"Name": meta["name"]},
        {
            "Name": meta["name"],
            "Version": meta.get("version"),
            "AppVersion": meta.get("appVersion"),
        },
    )
    from kai.manifests import read_file

    tdir = chart_dir / "templates"
    files = sorted(p for p in tdir.rglob("*") if p.is_file()) if tdir.is_dir() else []
    parsed: list[tuple[Path, list[_Node]]] = []
    defines: dict[str, list[_Node]] = {}
    try:
        for p in files:
            if p.name == "NOTES.txt":
                continue
            nodes, defs = _parse(_lex(read_file(p), str(p)), str(p))
            defines.update(defs)
            if not p.name.startswith("_"):
                parsed.append((p, nodes))
        out = []
        for p, nodes in parsed:
            out.append((str(p), _Renderer(defines, str(p)).render(nodes, root)))
    except _Unsupported as e:
        raise InputError(
            f"unsupported by kai's renderer (it renders only kai-generated charts; install helm): {e}"
        ) from None
    return out


def _render_with_helm(
    helm: str, chart_dir: Path, overrides: dict[str, Any]
) -> list[tuple[str, str]]:
    meta = _chart_meta(chart_dir)
    with tempfile.TemporaryDirectory(prefix="kai-helm-") as tmp:
        argv = [helm, "template"]
        if overrides:
            vf = Path(tmp) / "overrides.yaml"
            vf.write_text(json.dumps(merge_values({}, overrides)), encoding="utf-8")
            argv += ["--values", str(vf)]
        argv += ["--", meta["name"], str(chart_dir)]  # positionals are never read as flags
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise InputError(f"{chart_dir}: helm template failed: {e}") from None
    if proc.returncode != 0:
        msg = next((ln for ln in proc.stderr.splitlines() if ln.strip()), "no message")
        raise InputError(f"{chart_dir}: helm template failed: {msg}")
    out: list[tuple[str, str]] = []
    for chunk in re.split(r"(?m)^---[ \t]*$", proc.stdout):
        m = re.search(r"(?m)^# Source: [^/]+/(.+)$", chunk)
        out.append((str(chart_dir / m.group(1)) if m else str(chart_dir), chunk))
    return out


def helm_binary() -> str | None:
    return shutil.which("helm")


def render_chart_manifests(
    chart_dir: str | Path, values_overrides: dict[str, Any] | None = None
) -> tuple[list[Manifest], list[Note]]:
    """Render a chart (helm when on PATH, else kai's renderer) into manifests."""
    from kai.manifests import load_text

    chart_dir = Path(chart_dir)
    helm = helm_binary()
    rendered = (
        _render_with_helm(helm, chart_dir, values_overrides or {})
        if helm
        else _render_with_kai(chart_dir, values_overrides or {})
    )
    manifests: list[Manifest] = []
    notes: list[Note] = []
    for file, text in rendered:
        if not text.strip():
            continue
        m, n = load_text(text, file)
        # Lines refer to the rendered text, not the template: point at the template's top.
        manifests += [Manifest(x.ref, Source(file, 1), x.obj) for x in m]
        notes += n
    return manifests, notes


def render_chart(
    chart_dir: str | Path, values_overrides: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The objects a chart renders to, with optional value overrides (nested or dotted keys)."""
    return [m.obj for m in render_chart_manifests(chart_dir, values_overrides)[0]]


def is_chart(path: str) -> bool:
    return path != "-" and (Path(path) / "Chart.yaml").is_file()


def renderer_notice(paths: Iterable[str]) -> str | None:
    """The one line to show when charts are reviewed without helm."""
    if helm_binary() or not any(is_chart(p) for p in paths):
        return None
    return (
        "note: helm is not on PATH: reviewing the chart with kai's own renderer, "
        "which supports only kai-generated charts"
    )


def load_charts(paths: Iterable[str]) -> tuple[list[Manifest], list[Note], list[str]]:
    """Render the chart directories among `paths`; returns their objects and the other paths."""
    manifests: list[Manifest] = []
    notes: list[Note] = []
    rest: list[str] = []
    for p in paths:
        if is_chart(p):
            m, n = render_chart_manifests(p)
            manifests += m
            notes += n
        else:
            rest.append(p)
    return manifests, notes, rest

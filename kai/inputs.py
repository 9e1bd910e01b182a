"""What kai reads: files, directories, standard input and Helm chart directories, as Manifests.

The YAML reader itself is kai/manifests.py; a chart directory is rendered first (kai/helm/), so
this module sits above both and neither imports the other's caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from kai.errors import InputError
from kai.manifests import discover, load_text, read_source
from kai.models import Manifest, Note


def load_paths(
    paths: Iterable[str], stdin_text: str | None = None
) -> tuple[list[Manifest], list[Note]]:
    """Load all objects from files, directories, chart directories and "-" (stdin)."""
    manifests: list[Manifest] = []
    notes: list[Note] = []
    paths = list(paths)
    if any(p != "-" and Path(p, "Chart.yaml").is_file() for p in paths):
        from kai.helm.runner import load_charts  # a chart directory is rendered, not read as YAML

        manifests, notes, paths = load_charts(paths)
    for f in discover(paths):
        m, n = load_text(read_source(f, stdin_text), f)
        manifests += m
        notes += n
    return manifests, notes


def load_crds(paths: Sequence[str]) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions in `paths` (`--crd`), for validating custom resources."""
    manifests, _ = load_paths(paths)
    crds = [m.obj for m in manifests if m.ref.kind == "CustomResourceDefinition"]
    if paths and not crds:
        raise InputError(f"--crd {', '.join(paths)}: no CustomResourceDefinition found")
    return crds

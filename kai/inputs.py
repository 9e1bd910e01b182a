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
    shared: dict[str, str] = {}
    for f in discover(paths):
        m, n = load_text(read_source(f, stdin_text), f)
        for one in m:
            one.obj = _shared(one.obj, shared)
        manifests += m
        notes += n
    return manifests, notes


def _shared(data: Any, strings: dict[str, str]) -> Any:
    """`data` with one str object for each equal key and short string value across the run.

    The parser makes a new str for every key it reads: at 50,000 objects the same 80 key names
    were 1.2 million objects (~40% of what the loaded objects held). Equal values, same order;
    the dicts and lists are new ones (nothing holds the parser's yet)."""
    t = type(data)
    if t is dict:
        return {
            (strings.setdefault(k, k) if type(k) is str else k): _shared(v, strings)
            for k, v in data.items()
        }
    if t is list:
        return [_shared(v, strings) for v in data]
    if t is str and len(data) <= _SHARED_LEN:
        return strings.setdefault(data, data)
    return data


_SHARED_LEN = 64  # longer values (certificates, scripts) are seldom repeated


def load_crds(paths: Sequence[str]) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions in `paths` (`--crd`), for validating custom resources."""
    manifests, _ = load_paths(paths)
    crds = [m.obj for m in manifests if m.ref.kind == "CustomResourceDefinition"]
    if paths and not crds:
        raise InputError(f"--crd {', '.join(paths)}: no CustomResourceDefinition found")
    return crds

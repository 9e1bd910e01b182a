"""The kubeconform backend: the same schemas, checked by the kubeconform binary.

kai writes each kind's standalone schema where kubeconform's -schema-location template finds it
({{ .ResourceKind }}{{ .KindSuffix }}.json: deployment-apps-v1.json), feeds the objects on stdin
and reads `-output json -verbose`, whose results look like
{"resources": [{"filename": "stdin", "kind": "Deployment", "name": "web", "version": "apps/v1",
"status": "statusInvalid", "msg": "...", "validationErrors": [{"path": "/spec/replicas",
"msg": "expected integer, but got string"}]}], "summary": {...}}.
Its messages are mapped to kai's wording so both backends give identical findings.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kai.errors import InputError
from kai.models import MISSING_FIELD, UNKNOWN_FIELD, WRONG_TYPE, Issue, Manifest

if TYPE_CHECKING:
    from kai.policy.validate import SchemaStore

_ADDITIONAL = re.compile(r"additionalProperties '([^']+)' not allowed")
_MISSING = re.compile(r"missing propert(?:y|ies):? (.+)")
_TYPE = re.compile(r"expected ([\w, ]+?), but got (\w+)")
TIMEOUT_SECONDS = 120


def _path(pointer: str, obj: Any) -> list[str | int]:
    """A JSON pointer as kai's path, with list indexes as ints (decided by walking the object)."""
    out: list[str | int] = []
    node = obj
    for raw in [p for p in pointer.split("/") if p != ""]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list) and part.isdigit():
            out.append(int(part))
            node = node[int(part)] if int(part) < len(node) else None
        else:
            out.append(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


def _issues(errors: Sequence[dict[str, Any]], obj: dict[str, Any]) -> list[Issue]:
    out: list[Issue] = []
    for e in errors:
        path = _path(str(e.get("path", "")), obj)
        msg = str(e.get("msg", ""))
        if m := _ADDITIONAL.search(msg):
            for name in m.group(1).split("', '"):
                out.append(Issue(UNKNOWN_FIELD, [*path, name], f'unknown field "{name}"'))
        elif m := _MISSING.search(msg):
            for name in re.findall(r"'([^']+)'", m.group(1)):
                out.append(Issue(MISSING_FIELD, [*path, name], f'missing required field "{name}"'))
        elif m := _TYPE.search(msg):
            types = re.split(r",\s*|\s+or\s+", m.group(1))
            want = " or ".join(t.strip() for t in types if t.strip() and t.strip() != "null")
            out.append(Issue(WRONG_TYPE, path, f"expected {want}, got {m.group(2)}"))
        else:
            out.append(Issue(WRONG_TYPE, path, msg))
    return out


def run_kubeconform(
    binary: str, manifests: Sequence[Manifest], store: SchemaStore
) -> dict[int, list[Issue]]:
    """Validate `manifests` with kubeconform; issues keyed by id(manifest)."""
    for m in manifests:
        store.schema_text(
            m.ref.apiVersion, m.ref.kind
        )  # writes the standalone schema into kai's cache
    folder = store.cache_folder()
    if folder is None:
        raise InputError("--validator kubeconform needs kai's cache directory (unset KAI_NO_CACHE)")
    argv = [
        binary,
        "-output",
        "json",
        "-verbose",
        "-kubernetes-version",
        store.version,
        "-schema-location",
        str(folder / "{{ .ResourceKind }}{{ .KindSuffix }}.json"),
    ]
    if store.strict:
        argv.append("-strict")
    argv.append("-")
    try:
        proc = subprocess.run(
            argv,
            # JSON is YAML: one compact JSON document per object, serialized in C, not PyYAML's
            # Python representer (two thirds of the time kubeconform's path took at 10k objects)
            input="".join("---\n" + json.dumps(m.obj) + "\n" for m in manifests),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InputError(f"kubeconform failed to run: {e}") from None
    try:
        results = json.loads(proc.stdout)["resources"]
    except (ValueError, KeyError, TypeError):
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise InputError(
            f"kubeconform gave no JSON result (exit {proc.returncode}): {detail[0] if detail else 'no output'}"
        ) from None
    # Results may come back in any order (kubeconform validates in parallel): match on identity.
    pending: dict[tuple[str, str, str], deque[Manifest]] = defaultdict(deque)
    for m in manifests:
        pending[(m.ref.apiVersion, m.ref.kind, m.ref.name)].append(m)
    out: dict[int, list[Issue]] = {}
    for r in results:
        queue = pending.get((str(r.get("version")), str(r.get("kind")), str(r.get("name"))))
        if not queue:
            continue
        m = queue.popleft()
        status = r.get("status")
        if status == "statusInvalid":
            errors = r.get("validationErrors") or [{"path": "", "msg": r.get("msg", "")}]
            out[id(m)] = _issues(errors, m.obj)
        elif status == "statusError":
            raise InputError(
                f"kubeconform could not validate {m.ref.display()}: {r.get('msg', '')}"
            )
        else:
            out[id(m)] = []
    return out

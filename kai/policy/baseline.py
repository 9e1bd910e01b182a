"""Baselines: adopt kai on an existing repository and fail only on new findings.

A baseline records each finding by what it is about, not where it sits: the rule, the object's
identity (kind, namespace, name) and the path inside the object. Moving an object to another
line or file keeps it baselined; a new container, a new object or a new rule's finding does not.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

from kai.errors import InputError
from kai.models import Finding, Report

VERSION = 1
REASON = "in the baseline"


def _key(f: Finding) -> str:
    return f"{f.rule} {f.object.kind}/{f.object.namespace or ''}/{f.object.name} {f.path or ''}"


def write(path: Path, report: Report) -> int:
    """Record the report's active findings; returns how many."""
    keys = sorted(_key(f) for f in report.active())
    try:
        path.write_text(
            json.dumps({"version": VERSION, "findings": keys}, indent=2) + "\n", encoding="utf-8"
        )
    except OSError as e:
        raise InputError(f"{path}: cannot write the baseline: {e.strerror or e}") from None
    return len(keys)


def read(path: Path) -> Counter[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: baseline not found (create it with --write-baseline)") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{path}: not a kai baseline: {e}") from None
    if (
        not isinstance(data, dict)
        or data.get("version") != VERSION
        or not isinstance(data.get("findings"), list)
        or not all(isinstance(k, str) for k in data["findings"])
    ):
        raise InputError(f"{path}: not a kai baseline (version {VERSION} with a findings list)")
    return Counter(data["findings"])


def apply(known: Counter[str], report: Report) -> Report:
    """Mark findings present in the baseline as suppressed ("in the baseline"); each entry covers
    as many findings as it was recorded for, so a second identical finding is new."""
    left = Counter(known)
    findings = []
    for f in report.findings:
        key = _key(f)
        if not f.suppressed and left[key] > 0:
            left[key] -= 1
            f = replace(f, suppressed=True, suppression_reason=REASON)
        findings.append(f)
    return replace(report, findings=findings)

"""Loading rule files (built-in and user) into validated Rule values, with a cache.

Rule files are validated by pydantic (kai.schema) the first time they are seen; the result is
cached as JSON keyed by kai's version and every file's path, size and mtime, so a normal run
reads one small file and never imports pydantic.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from kai import __version__
from kai.digest import sha256
from kai.errors import PolicyError
from kai.models import CelCheck, References, Rule, RuleMatch, Severity
from kai.resources import data_dir

RULE_SUFFIXES = (".yaml", ".yml")
# The tools a rule's `equivalents` may name (pss: the Pod Security Standards controls).
PEER_TOOLS = ("kube-linter", "kube-score", "polaris", "checkov", "pss")
FIXTURE_DIR = "tests"


def builtin_dir() -> Path:
    return data_dir("policies")


def cache_dir() -> Path | None:
    """Where kai keeps derived data; None when caching is off (KAI_NO_CACHE=1)."""
    from kai.startup import cache_home  # one definition, shared with the launcher

    base = cache_home()
    return Path(base) if base is not None else None


def rule_files(directory: Path) -> list[Path]:
    """Every rule file under `directory`, not descending into fixture folders named tests/."""
    found: list[Path] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d != FIXTURE_DIR and not d.startswith("."))
        found += [Path(root) / f for f in files if f.endswith(RULE_SUFFIXES)]
    return sorted(found)


def load_rule_file(path: Path) -> Rule:
    """Read and validate one rule file (unknown keys, bad severities... are errors)."""
    from kai import schema
    from kai.yamlio import YAMLError, load_one

    try:
        data = load_one(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError) as e:
        raise PolicyError(f"{path}: cannot load rule: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: a rule file must be a mapping with id, title, severity, ...")
    try:
        rule = schema.validate(Rule, {**data, "source": str(path)})
    except ValueError as e:
        raise PolicyError(f"{path}: invalid rule: {e}") from None
    unknown = sorted(set(rule.equivalents) - set(PEER_TOOLS))
    if unknown:
        raise PolicyError(
            f"{path}: equivalents name unknown tools {unknown}; use {', '.join(PEER_TOOLS)}"
        )
    if sum(x is not None for x in (rule.cel, rule.python, rule.schema, rule.server)) != 1:
        raise PolicyError(f"{path}: rule {rule.id} needs exactly one check: `cel:` or `python:`")
    return rule


def _from_cache(d: dict[str, Any]) -> Rule:
    """Rebuild a Rule from data kai itself validated and wrote."""
    cel = d.get("cel")
    return Rule(
        **{
            **d,
            "severity": Severity(d["severity"]),
            "references": References(**d["references"]),
            "match": RuleMatch(**d["match"]),
            "cel": CelCheck(**cel) if cel else None,
        }
    )


def _fingerprint(files: list[Path]) -> str:
    h = sha256(__version__.encode())
    folders: dict[str, str] = {}  # each folder resolved once, not once per file in it
    for f in files:
        st = f.lstat()
        if stat.S_ISLNK(st.st_mode):
            where, st = str(f.resolve()), f.stat()
        else:  # f.resolve() is its folder's, resolved, and its name
            folder = os.path.dirname(f)
            if folder not in folders:
                folders[folder] = os.path.realpath(folder)
            where = os.path.join(folders[folder], f.name)
        h.update(f"{where}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def _load_files(files: list[Path]) -> list[Rule]:
    cache = cache_dir()
    path = cache / f"rules-{_fingerprint(files)}.json" if cache else None
    if path is not None:
        try:
            return [_from_cache(d) for d in json.loads(path.read_text(encoding="utf-8"))]
        except (OSError, ValueError, TypeError, KeyError):
            pass  # no cache yet, or a stale or damaged one: validate afresh
    rules = [load_rule_file(f) for f in files]
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps([asdict(r) for r in rules]), encoding="utf-8")
            tmp.replace(path)
            old = sorted(
                path.parent.glob("rules-*.json"), key=lambda p: p.stat().st_mtime, reverse=True
            )
            for stale in old[16:]:
                stale.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only home is no reason to fail a review
    return rules


def load_rules(extra_dirs: Iterable[str | Path] = (), builtin: bool = True) -> list[Rule]:
    """Built-in rules plus every rule in `extra_dirs`; a user rule may not reuse a built-in id."""
    dirs = [builtin_dir()] if builtin else []
    for d in extra_dirs:
        p = Path(d)
        if not p.is_dir():
            raise PolicyError(f"{d}: --policies expects a directory of rule files")
        dirs.append(p)
    files = [f for d in dirs for f in rule_files(d)]
    rules: dict[str, Rule] = {}
    for rule in _load_files(files):
        if rule.id in rules:
            raise PolicyError(
                f"{rule.source}: rule id {rule.id} is already defined in {rules[rule.id].source}"
            )
        rules[rule.id] = rule
    return sorted(rules.values(), key=lambda r: r.id)


def select(
    rules: list[Rule], enable: Iterable[str] = (), disable: Iterable[str] = ()
) -> list[Rule]:
    """Apply --enable/--disable (rule ids, categories or "all"); unknown names are an error."""
    enable_set = {e.strip() for e in enable if e.strip()}
    disable_set = {d.strip() for d in disable if d.strip()}
    known = {r.id.upper() for r in rules} | {r.category.lower() for r in rules} | {"ALL"}
    for name in enable_set | disable_set:
        if name.upper() not in known and name.lower() not in known:
            raise PolicyError(f"unknown rule or category: {name} (see `kai policies list`)")

    def broad(r: Rule, names: set[str]) -> bool:
        return any(n.upper() == "ALL" or n.lower() == r.category.lower() for n in names)

    def exact(r: Rule, names: set[str]) -> bool:
        return any(n.upper() == r.id.upper() for n in names)

    # A rule id is more specific than a category or "all", so it wins: --disable all --enable X.
    out = []
    for r in rules:
        on = r.enabled
        if broad(r, enable_set):
            on = True
        if broad(r, disable_set):
            on = False
        if exact(r, enable_set):
            on = True
        if exact(r, disable_set):
            on = False
        out.append(r if on == r.enabled else replace(r, enabled=on))
    return out

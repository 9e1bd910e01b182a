"""Loading rule files (built-in and user) into validated Rule models."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import ValidationError

from kai.errors import PolicyError
from kai.manifests import KaiLoader
from kai.models import Rule
from kai.resources import data_dir

RULE_SUFFIXES = (".yaml", ".yml")
FIXTURE_DIR = "tests"


def builtin_dir() -> Path:
    return data_dir("policies")


def rule_files(directory: Path) -> list[Path]:
    """Every rule file under `directory`, skipping fixture folders named tests/."""
    return sorted(
        p
        for p in directory.rglob("*")
        if p.suffix in RULE_SUFFIXES
        and p.is_file()
        and FIXTURE_DIR not in p.relative_to(directory).parts[:-1]
    )


def load_rule_file(path: Path) -> Rule:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=KaiLoader)
    except (OSError, yaml.YAMLError) as e:
        raise PolicyError(f"{path}: cannot load rule: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: a rule file must be a mapping with id, title, severity, ...")
    try:
        rule = Rule.model_validate({**data, "source": str(path)})
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise PolicyError(f"{path}: invalid rule: {loc}: {first['msg']}") from None
    if (rule.cel is None) == (rule.python is None):
        raise PolicyError(f"{path}: rule {rule.id} needs exactly one check: `cel:` or `python:`")
    return rule


def load_rules(extra_dirs: Iterable[str | Path] = (), builtin: bool = True) -> list[Rule]:
    """Built-in rules plus every rule in `extra_dirs`; a user rule may not reuse a built-in id."""
    dirs = [builtin_dir()] if builtin else []
    for d in extra_dirs:
        p = Path(d)
        if not p.is_dir():
            raise PolicyError(f"{d}: --policies expects a directory of rule files")
        dirs.append(p)
    rules: dict[str, Rule] = {}
    for d in dirs:
        for f in rule_files(d):
            rule = load_rule_file(f)
            if rule.id in rules:
                raise PolicyError(f"{f}: rule id {rule.id} is already defined in {rules[rule.id].source}")
            rules[rule.id] = rule
    return sorted(rules.values(), key=lambda r: r.id)


def select(
    rules: list[Rule], enable: Iterable[str] = (), disable: Iterable[str] = ()
) -> list[Rule]:
    """Apply --enable/--disable (rule ids or categories); unknown names are an error."""
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
        out.append(r.model_copy(update={"enabled": on}))
    return out

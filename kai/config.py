"""Configuration: flags > environment (KAI_*) > project .kai.yaml > user config > defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kai.errors import InputError
from kai.models import ReviewConfig

PROJECT_FILE = ".kai.yaml"


@dataclass(slots=True)
class Config:
    """What a team pins in .kai.yaml. Sections for later stages are kept in `extra` as read."""

    namespace: str | None = None
    review: ReviewConfig = field(default_factory=ReviewConfig)
    extra: dict[str, Any] = field(default_factory=dict)
    source: str | None = None


def user_config_path() -> Path | None:
    """~/.config/kai/config.yaml (or under XDG_CONFIG_HOME); None when there is no home."""
    base = os.environ.get("XDG_CONFIG_HOME")
    if not base:
        try:
            base = str(Path.home() / ".config")
        except (RuntimeError, KeyError, OSError):  # no HOME and no passwd entry
            return None
    return Path(base) / "kai" / "config.yaml"


def _exists(path: Path) -> bool:
    """Whether a config file is there; a home kai cannot look into counts as "no file"."""
    try:
        os.stat(path)
    except OSError:
        return False
    return True


def find_project_file(start: Path | None = None) -> Path | None:
    """The nearest .kai.yaml from `start` (default: the working directory) upwards."""
    try:
        here = (start or Path.cwd()).resolve()
    except OSError:  # the working directory was removed
        return None
    for d in (here, *here.parents):
        candidate = d / PROJECT_FILE
        if _exists(candidate):
            return candidate
    return None


def _read(path: Path) -> dict[str, Any]:
    from kai.manifests import read_file
    from kai.yamlio import YAMLError, check_node, load_one

    text = read_file(path)  # a regular file, size-limited, UTF-8: one-line errors
    try:
        data = load_one(text, check=lambda node: check_node(node, str(path)))
    except YAMLError as e:
        raise InputError(
            f"{path}: cannot read configuration: {_printable(str(e).splitlines()[0])}"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: configuration must be a mapping")
    from kai import schema  # only when there is a file to validate

    try:
        schema.check_config_file(data)
    except ValueError as e:
        raise InputError(f"{path}: invalid configuration at {_printable(str(e))}") from None
    return data


def _printable(text: str) -> str:
    from kai.yamlio import printable

    return printable(text)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(project: Path | None = None) -> Config:
    """User config, then the project file over it, then KAI_* environment over both."""
    data: dict[str, Any] = {}
    sources: list[str] = []
    user = user_config_path()
    if user is not None and _exists(user):
        data = _read(user)
        sources.append(str(user))
    project = project or find_project_file()
    if project is not None:
        project_data = _read(project)
        # Policy directories in a project file are relative to that file.
        review = project_data.get("review")
        if isinstance(review, dict) and isinstance(review.get("policies"), list):
            review["policies"] = [
                str((project.parent / str(p)).resolve()) for p in review["policies"]
            ]
        data = _merge(data, project_data)
        sources.append(str(project))
    if os.environ.get("KAI_FAIL_ON"):
        data = _merge(data, {"review": {"fail_on": os.environ["KAI_FAIL_ON"]}})
        sources.append("KAI_FAIL_ON")
    if os.environ.get("KAI_NAMESPACE"):
        data["namespace"] = os.environ["KAI_NAMESPACE"]
    if not data:
        return Config()
    from kai import schema  # only when there is something to validate

    where = " / ".join(sources) or "configuration"
    try:
        review = schema.validate(ReviewConfig, data.get("review") or {})
    except ValueError as e:
        raise InputError(f"{where}: invalid configuration at review.{e}") from None
    namespace = data.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise InputError(f"{where}: invalid configuration at namespace: must be a string")
    extra = {k: v for k, v in data.items() if k not in ("namespace", "review")}
    return Config(
        namespace=namespace, review=review, extra=extra, source=str(project) if project else None
    )

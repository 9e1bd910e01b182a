"""Configuration: flags > environment (KAI_*) > project .kai.yaml > user config > defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kai.errors import InputError
from kai.manifests import KaiLoader
from kai.models import Severity

PROJECT_FILE = ".kai.yaml"


class ReviewConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fail_on: Severity = Severity.ERROR
    enable: list[str] = Field(default_factory=list)
    disable: list[str] = Field(default_factory=list)
    policies: list[str] = Field(default_factory=list)


class Config(BaseModel):
    """Everything a team can pin in .kai.yaml; unknown top-level keys are kept for later stages."""

    model_config = ConfigDict(extra="allow")

    namespace: str | None = None
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    source: str | None = None


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kai" / "config.yaml"


def find_project_file(start: Path | None = None) -> Path | None:
    """The nearest .kai.yaml from `start` (default: the working directory) upwards."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        candidate = d / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=KaiLoader)
    except (OSError, yaml.YAMLError) as e:
        raise InputError(f"{path}: cannot read configuration: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: configuration must be a mapping")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config(project: Path | None = None) -> Config:
    """User config, then the project file over it, then KAI_* environment over both."""
    data: dict[str, Any] = {}
    user = user_config_path()
    if user.is_file():
        data = _read(user)
    project = project or find_project_file()
    if project is not None:
        project_data = _read(project)
        # Policy directories in a project file are relative to that file.
        review = project_data.get("review")
        if isinstance(review, dict) and isinstance(review.get("policies"), list):
            review["policies"] = [str((project.parent / str(p)).resolve()) for p in review["policies"]]
        data = _merge(data, project_data)
    env_fail_on = os.environ.get("KAI_FAIL_ON")
    if env_fail_on:
        data = _merge(data, {"review": {"fail_on": env_fail_on}})
    if os.environ.get("KAI_NAMESPACE"):
        data["namespace"] = os.environ["KAI_NAMESPACE"]
    try:
        return Config.model_validate({**data, "source": str(project) if project else None})
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise InputError(f"{project or user}: invalid configuration at {loc}: {first['msg']}") from None

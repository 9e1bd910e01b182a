"""Opt-in live tests: they talk to a real model and are reported as skipped without one.

KAI_LIVE_MODEL=openai/gpt-4.1-mini OPENAI_API_KEY=... pytest -m live tests/test_live.py
"""

from __future__ import annotations

import os

import pytest
from conftest import EXAMPLES

pytestmark = pytest.mark.live


@pytest.mark.skipif(
    not os.environ.get("KAI_LIVE_MODEL"),
    reason="set KAI_LIVE_MODEL (and its API key) to run live model tests",
)
def test_live_model_passes_a_task() -> None:
    from kai.config import Config
    from kai.evaluation import check, load_tasks
    from kai.generate import generate
    from kai.model.client import LLM, settings_from
    from kai.policy.catalog import load_rules

    task = next(t for t in load_tasks(EXAMPLES / "tasks") if t.id == "01-agent-ingress")
    settings = settings_from(os.environ["KAI_LIVE_MODEL"], cache=False)
    result = generate(task.request, settings, load_rules(), Config(), llm=LLM(settings))
    assert check(task, result) == [], result.failing
    assert result.model_calls <= 3

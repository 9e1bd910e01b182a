"""Stage composition. `kai review` enters the pipeline at "evaluate"."""

from __future__ import annotations

from collections.abc import Sequence

from kai.config import Config
from kai.manifests import load_paths
from kai.models import Manifest, Note, Report, Rule
from kai.policy.catalog import load_rules, select
from kai.policy.engine import Engine


def rules_for(
    config: Config,
    enable: Sequence[str] = (),
    disable: Sequence[str] = (),
    policies: Sequence[str] = (),
) -> list[Rule]:
    """The rule set after config and flags: flags add to what .kai.yaml sets."""
    rules = load_rules([*config.review.policies, *policies])
    return select(rules, [*config.review.enable, *enable], [*config.review.disable, *disable])


def evaluate(
    manifests: Sequence[Manifest],
    rules: Sequence[Rule],
    notes: Sequence[Note] = (),
    namespace: str = "default",
) -> Report:
    """The evaluate stage: manifests in, Report out."""
    return Engine(rules).evaluate(manifests, notes, default_namespace=namespace)


def review(
    paths: Sequence[str],
    rules: Sequence[Rule],
    namespace: str = "default",
    stdin_text: str | None = None,
) -> Report:
    """Load files, directories or stdin and evaluate them."""
    manifests, notes = load_paths(paths, stdin_text=stdin_text)
    return evaluate(manifests, rules, notes, namespace)

"""Stage composition. `kai review` enters the pipeline at "evaluate" and also validates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from kai.config import Config
from kai.inputs import load_crds, load_paths
from kai.models import Finding, Manifest, Note, Report, Rule
from kai.policy.catalog import load_rules, select
from kai.policy.engine import Engine, suppressions

if TYPE_CHECKING:
    from kai.policy.fix import FileFix


@dataclass(slots=True)
class SchemaOptions:
    """How the validate stage runs (kai validate, and kai review unless --no-validate)."""

    enabled: bool = True
    kubernetes_version: str | None = None
    strict: bool = True
    crds: list[str] = field(default_factory=list)
    backend: str = "auto"


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
    existing: Sequence[Manifest] = (),
) -> Report:
    """The evaluate stage: manifests in, Report out (`existing`: live objects for cross-object checks)."""
    return Engine(rules).evaluate(manifests, notes, default_namespace=namespace, existing=existing)


def validate(
    manifests: Sequence[Manifest], rules: Sequence[Rule], options: SchemaOptions
) -> tuple[list[Finding], list[Note]]:
    """The validate stage as findings of the enabled schema rules, annotations honoured."""
    from kai.policy import validate as schema_validation

    crds = load_crds(options.crds) if options.crds else []
    result = schema_validation.validate(
        manifests, options.kubernetes_version, options.strict, crds, options.backend
    )
    enabled = {r.id for r in rules if r.schema is not None and r.enabled}
    ignored_by_object = {id(m.ref): suppressions(m.obj) for m in manifests}
    findings = []
    for f in result.findings:
        if f.rule not in enabled:
            continue
        ignored = ignored_by_object.get(id(f.object), {})
        if f.rule in ignored or "*" in ignored:
            f = replace(
                f, suppressed=True, suppression_reason=ignored.get(f.rule) or ignored.get("*")
            )
        findings.append(f)
    return findings, result.notes


def review(
    paths: Sequence[str],
    rules: Sequence[Rule],
    namespace: str = "default",
    stdin_text: str | None = None,
    schema: SchemaOptions | None = None,
) -> Report:
    """Load files, directories or stdin; evaluate the rules and validate against the schema."""
    from kai.manifests import release_sources

    manifests, notes = load_paths(paths, stdin_text=stdin_text)
    schema = schema or SchemaOptions()
    findings: list[Finding] | None = None
    schema_notes: list[Note] = []
    # Validation first: it is the only stage that reads the files' text (a field's line), so the
    # text is released before the rules run (at 50,000 objects, 28 MB no later stage needs).
    if schema.enabled and any(r.schema is not None and r.enabled for r in rules):
        findings, schema_notes = validate(manifests, rules, schema)
    release_sources({m.source.file for m in manifests} | {n.file for n in notes})
    report = evaluate(manifests, rules, notes, namespace)
    if findings:  # (the rules' findings are sorted already)
        report.findings = sorted(
            report.findings + findings,
            key=lambda f: (f.file, f.line, -f.severity.rank, f.rule, f.path or ""),
        )
    report.notes += schema_notes
    return report


def fix_paths(
    paths: Sequence[str], rules: Sequence[Rule], config: Config, namespace: str = "default"
) -> list[FileFix]:
    """The fix stage over files: each file fixed on its own text, comments, order and layout kept."""
    from kai.policy.fixfile import fix_files

    defaults = config.extra.get("defaults")
    return fix_files(paths, rules, defaults if isinstance(defaults, dict) else {}, namespace)

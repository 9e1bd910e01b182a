"""Rule fixtures by convention, as Polaris does: DIR/tests/<RULE-ID>/pass*.yaml and fail*.yaml.

A pass fixture must give no finding for its rule; a fail fixture at least one, or exactly N
when its first line is `# expect: N`. A fixed fixture (fixed*.yaml, for a rule kai fix repairs)
is an input that fails the rule, next to the exact text `kai fix` must turn it into
(fixed*.out.yaml): the fix must apply, leave no finding of the rule, and change nothing when run
again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from kai.manifests import load_text
from kai.models import Rule
from kai.policy.catalog import FIXTURE_DIR, load_rule_file, rule_files
from kai.policy.engine import Engine

_EXPECT = re.compile(r"^#\s*expect:\s*(\d+)\s*$")


@dataclass(slots=True)
class FixtureResult:
    rule: str
    file: str
    outcome: str  # pass | fail | fixed
    expected: str
    found: int
    ok: bool
    messages: list[str]


def fixtures_for(rule: Rule, directory: Path) -> list[tuple[str, Path]]:
    """(outcome, path) for each fixture of `rule` under `directory`/tests/<id>/."""
    folder = directory / FIXTURE_DIR / rule.id
    if not folder.is_dir():
        return []
    out = []
    for f in sorted(folder.iterdir()):
        if f.suffix not in (".yaml", ".yml", ".json"):
            continue
        for outcome in ("pass", "fail"):
            if f.name.startswith(outcome):
                out.append((outcome, f))
    return out


FIXED_SUFFIX = ".out.yaml"


def fixed_fixtures_for(rule: Rule, directory: Path) -> list[tuple[Path, Path]]:
    """(input, expected output) for each fixed*.yaml fixture of `rule`."""
    folder = directory / FIXTURE_DIR / rule.id
    if not folder.is_dir():
        return []
    return [
        (f, f.with_name(f.name[: -len(".yaml")] + FIXED_SUFFIX))
        for f in sorted(folder.glob("fixed*.yaml"))
        if not f.name.endswith(FIXED_SUFFIX)
    ]


def run_fixed_fixture(rule: Rule, path: Path, expected: Path) -> FixtureResult:
    """kai fix, with only `rule`, turns `path` into exactly `expected`, which then passes."""
    from kai.policy.fix import fix_text

    only = [replace(rule, enabled=True)]
    text = path.read_text(encoding="utf-8")
    problems: list[str] = []
    before = run_fixture(rule, "fail", path)
    if not before.found:
        problems.append("the input does not fail the rule")
    result = fix_text(text, str(path), only)
    if not any(c.rule == rule.id for c in result.changes):
        problems.append(f"no fix applied ({[d.description for d in result.declined]})")
    want = expected.read_text(encoding="utf-8") if expected.is_file() else None
    if want is None:
        problems.append(f"{expected.name} is missing")
    elif result.fixed != want:
        problems.append(f"the fixed text differs from {expected.name}:\n{result.fixed}")
    manifests, notes = load_text(result.fixed, str(path))
    left = [
        f
        for f in Engine(only).evaluate(manifests, notes).findings
        if f.rule == rule.id and not f.suppressed
    ]
    if left:
        problems.append(f"still failing after the fix: {[f.message for f in left]}")
    again = fix_text(result.fixed, str(path), only)
    if again.fixed != result.fixed:
        problems.append("fixing twice differs from fixing once")
    return FixtureResult(
        rule=rule.id,
        file=str(path),
        outcome="fixed",
        expected="fixed",
        found=len(left),
        ok=not problems,
        messages=problems,
    )


def run_fixture(rule: Rule, outcome: str, path: Path) -> FixtureResult:
    text = path.read_text(encoding="utf-8")
    manifests, notes = load_text(text, str(path))
    if rule.schema is not None:
        from kai.policy.validate import validate

        findings = validate(manifests, backend="builtin").findings
        errors: list[str] = []
    else:
        report = Engine([replace(rule, enabled=True)]).evaluate(manifests, notes)
        findings = report.findings
        errors = [n.message for n in report.notes if n.message.startswith(f"rule {rule.id} ")]
    hits = [f for f in findings if f.rule == rule.id and not f.suppressed]
    match = _EXPECT.match(text.splitlines()[0]) if text else None
    if outcome == "pass":
        expected, ok = "0", not hits
    elif match:
        expected, ok = match.group(1), len(hits) == int(match.group(1))
    else:
        expected, ok = ">=1", bool(hits)
    return FixtureResult(
        rule=rule.id,
        file=str(path),
        outcome=outcome,
        expected=expected,
        found=len(hits),
        ok=ok and not errors,
        messages=[h.message for h in hits] + errors,
    )


def run_directory(directory: Path) -> tuple[list[FixtureResult], list[str]]:
    """Run every rule's fixtures; also list rules missing a pass or a fail fixture."""
    results: list[FixtureResult] = []
    missing: list[str] = []
    for f in rule_files(directory):
        rule = load_rule_file(f)
        cases = fixtures_for(rule, directory)
        if rule.server is not None:
            continue  # judged by the API server during kai apply: tested with recorded exchanges
        kinds = {o for o, _ in cases}
        for needed in ("pass", "fail"):
            if needed not in kinds:
                missing.append(
                    f"{rule.id}: no {needed}*.yaml fixture in {directory / FIXTURE_DIR / rule.id}"
                )
        results += [run_fixture(rule, o, p) for o, p in cases]
        results += [run_fixed_fixture(rule, p, e) for p, e in fixed_fixtures_for(rule, directory)]
    return results, missing


if __name__ == "__main__":  # python -m kai.policy.fixtures DIR: for rule authors
    import sys

    res, miss = run_directory(Path(sys.argv[1] if len(sys.argv) > 1 else "policies"))
    for r in res:
        if not r.ok:
            print(
                f"FAIL {r.rule} {r.file}: expected {r.expected} finding(s), found {r.found} {r.messages}"
            )
    for m in miss:
        print(f"MISSING {m}")
    bad = sum(not r.ok for r in res)
    print(f"{len(res) - bad} fixtures ok, {bad} failed, {len(miss)} missing")
    sys.exit(1 if bad or miss else 0)

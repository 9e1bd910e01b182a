"""The typed values that flow between kai's stages.

They are slotted standard-library dataclasses rather than pydantic models: `kai review`
must start in under 0.25 s and importing pydantic alone takes about half of that. Where a
value crosses a file boundary (rule files, .kai.yaml, the rule cache) it is validated by
pydantic through `kai.schema`, which builds a TypeAdapter over these very classes, so the
types are declared once. The JSON shapes scripts depend on are documented in
docs/json-output.md and produced by `kai.render`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How much a finding matters; ordered info < warning < error."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


class Approval(StrEnum):
    """What `kai run` and `kai debug` may run without asking (`--approval`, `approval:` in .kai.yaml)."""

    reads_auto = "reads-auto"
    confirm_all = "confirm-all"
    suggest_only = "suggest-only"


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """Identity of a Kubernetes object: apiVersion, kind, namespace, name."""

    apiVersion: str = ""
    kind: str = ""
    namespace: str | None = None
    name: str = ""

    def display(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{ns}{self.name or '<unnamed>'}"


@dataclass(frozen=True, slots=True)
class Source:
    """Where a document came from: file (or "-" for stdin) and 1-based line."""

    file: str
    line: int = 1


@dataclass(slots=True)
class Manifest:
    """One Kubernetes object as loaded, with its identity and origin."""

    ref: ObjectRef
    source: Source
    obj: dict[str, Any]


@dataclass(slots=True)
class Note:
    """Something worth saying that is not a rule finding (a skipped document, an unknown kind)."""

    file: str
    line: int
    message: str
    object: ObjectRef | None = None


@dataclass(slots=True)
class Finding:
    """One rule violation on one object (or one container of it)."""

    rule: str
    severity: Severity
    message: str
    object: ObjectRef
    file: str
    line: int
    path: str | None = None
    suppressed: bool = False
    suppression_reason: str | None = None
    # Undecidable: the rule depends on objects the identity may not read (kai review --cluster,
    # kai apply). Listed, never counted as a failure.
    unknown: bool = False


@dataclass(slots=True)
class References:
    docs: str | None = None
    links: list[str] = field(default_factory=list)


@dataclass(slots=True)
class CelCheck:
    """A per-object check written in CEL: `expression` must be true for the object to pass."""

    expression: str
    scope: str = "object"  # object | pod | container
    containers: list[str] = field(
        default_factory=lambda: ["containers", "initContainers", "ephemeralContainers"]
    )
    variables: dict[str, str] = field(default_factory=dict)
    message: str | None = None


@dataclass(slots=True)
class RuleMatch:
    """Which objects a rule looks at: kinds (empty = any) minus excluded kinds."""

    kinds: list[str] = field(default_factory=list)
    exclude_kinds: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Rule:
    """A policy rule's metadata and its check; one file in policies/."""

    id: str
    title: str
    severity: Severity
    category: str
    rationale: str
    remediation: str
    example: str | None = None
    concept: str | None = None
    references: References = field(default_factory=References)
    equivalents: dict[str, list[str]] = field(default_factory=dict)
    match: RuleMatch = field(default_factory=RuleMatch)
    cel: CelCheck | None = None
    python: str | None = None
    # Produced by the validate stage (unknown-field | wrong-type | missing-field) and by the
    # server-side dry run (admission-warning) rather than evaluated by the engine.
    schema: str | None = None
    server: str | None = None
    enabled: bool = True
    source: str | None = None


@dataclass(slots=True)
class ReviewConfig:
    """The `review:` section of .kai.yaml (and the flags that override it)."""

    fail_on: Severity = Severity.ERROR
    enable: list[str] = field(default_factory=list)
    disable: list[str] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)


# Rule ids of schema findings (their rule files live in policies/ like every other rule).
UNKNOWN_FIELD = "KAI-SCH-001"
WRONG_TYPE = "KAI-SCH-002"
MISSING_FIELD = "KAI-SCH-003"
UNKNOWN_KIND = "KAI-SCH-004"


@dataclass(slots=True)
class Issue:
    """One schema violation (from either validate backend): where (path inside the object) and what."""

    rule: str
    path: list[str | int]
    message: str


@dataclass(slots=True)
class Summary:
    objects: int
    findings: int
    suppressed: int
    by_severity: dict[str, int]
    fail_on: Severity
    passed: bool
    unknown: int = 0


@dataclass(slots=True)
class Report:
    """The evaluator's verdict on a set of manifests."""

    findings: list[Finding] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    objects: list[ObjectRef] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)

    def active(self) -> list[Finding]:
        return [f for f in self.findings if not f.suppressed and not f.unknown]

    def summary(self, fail_on: Severity) -> Summary:
        from collections import Counter

        active = self.active()
        by = Counter(f.severity for f in active)  # (one pass; 960,000 findings in ~0.1 s)
        return Summary(
            objects=len(self.objects),
            findings=len(active),
            suppressed=sum(1 for f in self.findings if f.suppressed),
            by_severity={s.value: by.get(s, 0) for s in Severity},
            fail_on=fail_on,
            passed=not any(s.rank >= fail_on.rank for s in by),
            unknown=sum(1 for f in self.findings if f.unknown and not f.suppressed),
        )

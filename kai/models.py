"""The typed values that flow between kai's stages.

Every value that crosses a stage or a file boundary is a pydantic model, so the
JSON shapes scripts depend on are declared in one place (see docs/json-output.md).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    """How much a finding matters; ordered info < warning < error."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}


class ObjectRef(BaseModel):
    """Identity of a Kubernetes object: apiVersion, kind, namespace, name."""

    model_config = ConfigDict(frozen=True)

    apiVersion: str = ""
    kind: str = ""
    namespace: str | None = None
    name: str = ""

    def display(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{ns}{self.name or '<unnamed>'}"


class Source(BaseModel):
    """Where a document came from: file (or "-" for stdin) and 1-based line."""

    model_config = ConfigDict(frozen=True)

    file: str
    line: int = 1


class Manifest(BaseModel):
    """One Kubernetes object as loaded, with its identity and origin."""

    ref: ObjectRef
    source: Source
    obj: dict[str, Any]


class Note(BaseModel):
    """Something worth saying that is not a rule finding (a skipped document, an unknown kind)."""

    file: str
    line: int = 1
    message: str
    object: ObjectRef | None = None


class Finding(BaseModel):
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


class References(BaseModel):
    docs: str | None = None
    links: list[str] = Field(default_factory=list)


class CelCheck(BaseModel):
    """A per-object check written in CEL: `expression` must be true for the object to pass."""

    scope: str = "object"  # object | pod | container
    containers: list[str] = Field(
        default_factory=lambda: ["containers", "initContainers", "ephemeralContainers"]
    )
    variables: dict[str, str] = Field(default_factory=dict)
    expression: str
    message: str | None = None


class RuleMatch(BaseModel):
    """Which objects a rule looks at: kinds (empty = any) and whether a pod template is required."""

    kinds: list[str] = Field(default_factory=list)
    exclude_kinds: list[str] = Field(default_factory=list)


class Rule(BaseModel):
    """A policy rule's metadata and its check; one file in policies/."""

    id: str
    title: str
    severity: Severity
    category: str
    rationale: str
    remediation: str
    example: str | None = None
    concept: str | None = None
    references: References = Field(default_factory=References)
    equivalents: dict[str, list[str]] = Field(default_factory=dict)
    match: RuleMatch = Field(default_factory=RuleMatch)
    cel: CelCheck | None = None
    python: str | None = None
    enabled: bool = True
    source: str | None = Field(default=None, description="file the rule was loaded from")


class Summary(BaseModel):
    objects: int
    findings: int
    suppressed: int
    by_severity: dict[str, int]
    fail_on: Severity
    passed: bool


class Report(BaseModel):
    """The evaluator's verdict on a set of manifests."""

    findings: list[Finding] = Field(default_factory=list)
    notes: list[Note] = Field(default_factory=list)
    objects: list[ObjectRef] = Field(default_factory=list)
    rules: list[str] = Field(default_factory=list)

    def active(self) -> list[Finding]:
        return [f for f in self.findings if not f.suppressed]

    def summary(self, fail_on: Severity) -> Summary:
        active = self.active()
        counts = {s.value: 0 for s in Severity}
        for f in active:
            counts[f.severity.value] += 1
        passed = not any(f.severity.rank >= fail_on.rank for f in active)
        return Summary(
            objects=len(self.objects),
            findings=len(active),
            suppressed=len(self.findings) - len(active),
            by_severity=counts,
            fail_on=fail_on,
            passed=passed,
        )

"""`kai mcp`: kai's guardrails for other agents, over the Model Context Protocol (stdio).

Built on the official SDK's MCPServer (the SDK's FastMCP, renamed in mcp 2). Only `kai mcp`
imports this module: the SDK pulls in pydantic, anyio and starlette, which `kai --help` and
`kai review` must not pay for. No tool writes to a cluster: `dry_run` is the server-side
dry run (dryRun=All) and nothing here imports kai.cluster.stages's `apply`.
"""

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from kai.config import Config
from kai.errors import KaiError
from kai.models import Manifest, Note, Rule, Severity

SeverityName = Literal["info", "warning", "error"]
# Every tool only reads (files it is given, the rule catalog, a cluster through a dry run).
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)
INSTRUCTIONS = """\
kai reviews Kubernetes manifests before they reach a cluster. Pass manifests as YAML text.
review: policy and schema findings (rule ids, severities, object, field path, message).
fix: kai's deterministic repairs, as fixed YAML and a unified diff. validate: the schema only.
list_policies / explain_rule: what each rule checks, why it matters and how to fix it.
explain: a learner's walk through the YAML (each object, each field, findings in place).
dry_run: server-side dry run on the configured cluster (never applies anything).
generate: English request -> reviewed manifests (needs a model: KAI_MODEL or `model`)."""


def _load(text: str) -> tuple[list[Manifest], list[Note]]:
    """Manifests from the YAML text a client sent (size-limited, hostile input refused)."""
    from kai.inputs import load_paths

    return load_paths(["-"], stdin_text=text)


def _severity(name: str) -> Severity:
    try:
        return Severity(name)
    except ValueError:
        raise ToolError(f"unknown severity {name!r}: use info, warning or error") from None


@dataclass
class Tools:
    """kai's MCP tools, each a method named as its tool, its signature the tool's input schema
    and its docstring the description.

    `dry_run` talks to the cluster of `kubeconfig` and `context` (kai mcp's own flags, else
    KUBECONFIG and its current context) and to no other: a kubeconfig from the client could name
    an exec or auth-provider credential plugin, which the Kubernetes client would run.
    """

    config: Config
    rules: list[Rule]  # built-in plus kai mcp's --policies, loaded once
    model: str | None  # the generate tool's model when the client names none
    api_base: str | None
    kubeconfig: str | None  # dry_run's cluster, and no other
    context: str | None

    def table(self) -> list[tuple[Callable[..., dict[str, Any]], ToolAnnotations]]:
        """Each tool and its annotations, in the order the server lists them."""
        return [
            (self.review, READ_ONLY),
            (self.validate, READ_ONLY),
            (self.fix, READ_ONLY),
            (self.list_policies, READ_ONLY),
            (self.explain_rule, READ_ONLY),
            (self.explain, READ_ONLY),
            (self.dry_run, READ_ONLY),
            (self.generate, ToolAnnotations(read_only_hint=True, open_world_hint=True)),
        ]

    def _namespace(self, namespace: str | None) -> str:
        return namespace or self.config.namespace or "default"

    def review(
        self,
        yaml: str,
        fail_on: SeverityName | None = None,
        namespace: str | None = None,
        enable: list[str] | None = None,
        disable: list[str] | None = None,
        schema: bool = True,
    ) -> dict[str, Any]:
        """Review Kubernetes YAML with kai's policy rules and the schema: the findings as JSON.

        Same shape as `kai review -o json`: summary (passed, counts by severity) and findings
        (rule id, severity, message, object, line, field path, suppressed).
        """
        from kai import render
        from kai.pipeline import SchemaOptions
        from kai.pipeline import review as run_review
        from kai.policy.catalog import select

        with _tool_errors():
            rules = select(self.rules, enable or [], disable or [])
            threshold = _severity(fail_on) if fail_on else self.config.review.fail_on
            report = run_review(
                ["-"],
                rules,
                namespace=self._namespace(namespace),
                stdin_text=yaml,
                schema=SchemaOptions(enabled=schema),
            )
        return render.report_data(report, threshold)

    def validate(
        self, yaml: str, kubernetes_version: str | None = None, strict: bool = True
    ) -> dict[str, Any]:
        """Validate Kubernetes YAML against the Kubernetes OpenAPI schema, offline.

        Unknown fields, wrong types and missing required fields, each with its JSON path;
        the same shape as `kai validate -o json`.
        """
        from kai import render
        from kai.models import Report
        from kai.pipeline import SchemaOptions
        from kai.pipeline import validate as run_validate

        rules = [r for r in self.rules if r.schema is not None]
        with _tool_errors():
            manifests, notes = _load(yaml)
            findings, schema_notes = run_validate(
                manifests, rules, SchemaOptions(True, kubernetes_version, strict)
            )
        report = Report(
            findings=findings,
            notes=notes + schema_notes,
            objects=[m.ref for m in manifests],
            rules=[r.id for r in rules],
        )
        return render.report_data(report, Severity.ERROR)

    def fix(self, yaml: str, namespace: str | None = None) -> dict[str, Any]:
        """Apply kai's deterministic fixes to Kubernetes YAML: the fixed YAML and a unified diff.

        Hardens how workloads run (security context, resources, probes, NetworkPolicy, PDB,
        labels); never changes image, command, ports or replicas. Comments and order are kept.
        """
        from kai.manifests import MAX_INPUT_BYTES
        from kai.policy.fix import fix_text

        if len(yaml) > MAX_INPUT_BYTES:
            raise ToolError(f"refused: the input is over the {MAX_INPUT_BYTES:,}-byte limit")
        extra = self.config.extra.get("defaults")
        defaults = extra if isinstance(extra, dict) else {}
        with _tool_errors():
            result = fix_text(yaml, "input.yaml", self.rules, defaults, self._namespace(namespace))
        return _fix_data(result)

    def list_policies(self, category: str | None = None, detail: bool = False) -> dict[str, Any]:
        """Every rule kai checks: id, title, severity, category, enabled, fixable.

        With detail=true each rule also carries its rationale, remediation and references
        (the shape of `kai policies list -o json`).
        """
        from kai import render

        rules = [r for r in self.rules if category is None or r.category == category]
        if category is not None and not rules:
            known = sorted({r.category for r in self.rules})
            raise ToolError(f"unknown category {category!r}: one of {', '.join(known)}")
        shown = [render.rule_data(r) if detail else _rule_summary(r) for r in rules]
        return {"version": render.SCHEMA_VERSION, "rules": shown}

    def explain_rule(self, rule_id: str) -> dict[str, Any]:
        """One rule in full: why it matters, how to fix it (with an example), references, check."""
        from kai import render

        rule = next((r for r in self.rules if r.id.upper() == rule_id.strip().upper()), None)
        if rule is None:
            raise ToolError(f"unknown rule {rule_id} (call list_policies)")
        return render.rule_data(rule)

    def explain(
        self, yaml: str, namespace: str | None = None, kubernetes_version: str | None = None
    ) -> dict[str, Any]:
        """Walk through Kubernetes YAML for a learner: what each object is for, what each set
        field means (the schema's description, as `kubectl explain` shows it), and each finding
        under the field it concerns, with why it matters and how to fix it. Offline, no model.
        """
        from kai.learn.explain import evaluate_all, explanation_data
        from kai.learn.explain import explain as walk_through

        with _tool_errors():
            manifests, notes = _load(yaml)
            report = evaluate_all(
                manifests, notes, self.rules, self._namespace(namespace), kubernetes_version
            )
            result = walk_through(manifests, report, self.rules, kubernetes_version)
        return explanation_data(result)

    def dry_run(
        self,
        yaml: str,
        namespace: str | None = None,
        context: str | None = None,
        kubeconfig: str | None = None,
    ) -> dict[str, Any]:
        """Server-side dry run (dryRun=All) on the cluster kai mcp was started with, diff per object.

        Nothing is applied. The cluster is the operator's choice (kai mcp --kubeconfig/--context or
        KUBECONFIG): `kubeconfig` and `context` from the client are refused. Without a reachable
        cluster the call fails with the reason.
        """
        from kai.cluster.client import Cluster
        from kai.cluster.stages import dry_run as server_dry_run

        if kubeconfig is not None and kubeconfig != self.kubeconfig:
            raise ToolError(
                "refused: dry_run uses the kubeconfig kai mcp was started with "
                "(kai mcp --kubeconfig PATH, or KUBECONFIG); a client-supplied kubeconfig could "
                "run its exec credential plugin"
            )
        if context is not None and context != self.context:
            raise ToolError(
                "refused: dry_run uses the context kai mcp was started with "
                "(kai mcp --context NAME, or the kubeconfig's current context)"
            )
        with _tool_errors():
            manifests, _ = _load(yaml)
            if not manifests:
                raise ToolError("no Kubernetes objects in the input")
            cluster = Cluster(
                self.kubeconfig or os.environ.get("KUBECONFIG") or None,
                self.context,
                namespace or self.config.namespace,
            )
            plan = server_dry_run(cluster, manifests)
        return _dry_run_data(cluster, plan)

    def generate(
        self,
        request: str,
        answers: dict[str, str] | None = None,
        model: str | None = None,
        max_rounds: int = 3,
        fail_on: SeverityName = "warning",
        namespace: str | None = None,
    ) -> dict[str, Any]:
        """Turn an English request into Kubernetes manifests that pass kai's evaluator.

        A model plans, kai reviews and fixes, the model repairs what remains (at most
        max_rounds turns). Returns the manifests (as YAML and as objects), the review report,
        what still fails, the model's rationale, assumptions and any questions it needs
        answered (answer them in `answers`, e.g. {"image": "ghcr.io/acme/agent:1.4"}).
        """
        from kai.generate import Job
        from kai.manifests import load_text
        from kai.model.client import settings_from

        if not 1 <= max_rounds <= 10:
            raise ToolError("max_rounds must be between 1 and 10")
        threshold = _severity(fail_on)
        with _tool_errors():
            settings = settings_from(model or self.model, api_base=self.api_base)
            job = Job.start(
                request,
                settings,
                self.rules,
                self.config,
                dict(answers or {}),
                max_rounds,
                threshold,
                namespace,
            )
            result = job.run()
            manifests = [m.obj for m in load_text(result.yaml, "generated.yaml")[0]]
        return _generated_data(result, manifests, threshold)


@contextmanager
def _tool_errors() -> Iterator[None]:
    """A KaiError (bad input, no model, no cluster) is the tool's error, in its one line."""
    try:
        yield
    except KaiError as e:
        raise ToolError(e.message) from None


def _rule_summary(r: Rule) -> dict[str, Any]:
    from kai.policy.fix import fixable

    return {
        "id": r.id,
        "title": r.title,
        "severity": r.severity.value,
        "category": r.category,
        "enabled": r.enabled,
        "fixable": fixable(r.id),
    }


def _fix_data(result: Any) -> dict[str, Any]:
    return {
        "fixed": result.fixed,
        "diff": result.diff(),
        "changed": result.changed,
        "changes": [
            {"rule": c.rule, "object": c.object, "description": c.description}
            for c in result.changes
        ],
        "declined": [
            {"rule": c.rule, "object": c.object, "reason": c.description} for c in result.declined
        ],
        "notes": list(result.notes),
    }


def _dry_run_data(cluster: Any, plan: Any) -> dict[str, Any]:
    return {
        "context": cluster.context,
        "server": cluster.server,
        "namespace": cluster.namespace,
        "ok": plan.ok,
        "counts": plan.counts(),
        "missing_permissions": plan.missing_permissions,
        "changes": [
            {
                "object": c.manifest.ref.display(),
                "action": c.action,
                "diff": c.diff,
                "warnings": c.warnings,
                "waits_for": c.waits_for,
                "error": c.error,
            }
            for c in plan.changes
        ],
    }


def _generated_data(
    result: Any, manifests: list[dict[str, Any]], threshold: Severity
) -> dict[str, Any]:
    from kai import render

    return {
        "yaml": result.yaml,
        "manifests": manifests,
        "passed": not result.failing and bool(manifests),
        "report": render.report_data(result.report, threshold) if result.report else None,
        "failing": [
            {
                "rule": f.rule,
                "severity": f.severity.value,
                "message": f.message,
                "object": f.object.display(),
                "path": f.path,
            }
            for f in result.failing
        ],
        "stopped_because": result.stopped_because,
        "rationale": result.plan.rationale,
        "explanations": result.plan.explanations,
        "assumptions": result.plan.assumptions,
        "questions": result.plan.questions,
        "model_calls": result.model_calls,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "cost_usd": result.cost_usd,
        "note": "offline: validated against the schema only, not dry-run on a server",
    }


def build_server(
    config: Config | None = None,
    policies: Sequence[str] = (),
    model: str | None = None,
    api_base: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> MCPServer:
    """The MCP server with kai's tools (see `Tools`), rules loaded once (built-in plus `policies`)."""
    from kai import __version__
    from kai.pipeline import rules_for

    config = config or Config()
    tools = Tools(
        config, rules_for(config, policies=policies), model, api_base, kubeconfig, context
    )
    server = MCPServer("kai", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")
    for tool, annotations in tools.table():
        server.add_tool(tool, annotations=annotations)
    return server


def serve(
    config: Config,
    policies: Sequence[str] = (),
    model: str | None = None,
    api_base: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> None:
    """Run the server on stdin/stdout until the client disconnects."""
    build_server(config, policies, model, api_base, kubeconfig, context).run("stdio")

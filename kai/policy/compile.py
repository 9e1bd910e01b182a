"""Turning a Rule (data) into a runnable check."""

from __future__ import annotations

import string
from collections.abc import Iterator
from typing import Any

from kai.errors import PolicyError
from kai.models import CelCheck, Manifest, Rule
from kai.policy import workload
from kai.policy.engine import CheckFn, CompiledRule, Context, Hit, InterpretFn

_FORMATTER = string.Formatter()
MESSAGE_FIELDS = {"container", "field", "kind", "name", "image", "namespace", "apiVersion"}


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _check_message(rule: Rule, message: str) -> None:
    for _, field, _, _ in _FORMATTER.parse(message):
        if field is not None and field not in MESSAGE_FIELDS:
            raise PolicyError(
                f"{rule.source}: message placeholder {{{field}}} is not one of {sorted(MESSAGE_FIELDS)}"
            )


def compile_rule(rule: Rule) -> CompiledRule:
    """Compile one rule; errors name the rule file."""
    if rule.python is not None:
        from kai.policy import crossobject

        fn = crossobject.CHECKS.get(rule.python)
        if fn is None:
            raise PolicyError(
                f"{rule.source}: rule {rule.id} names unknown Python check {rule.python!r}"
            )
        kinds = frozenset(rule.match.kinds) or crossobject.KINDS[rule.python]
        return CompiledRule(rule, fn, kinds, needs_pod=rule.python in crossobject.NEEDS_POD)
    assert rule.cel is not None
    run, source, interpret = _cel_check(rule, rule.cel)
    return CompiledRule(
        rule,
        run,
        frozenset(rule.match.kinds),
        needs_pod=rule.cel.scope in ("pod", "container"),
        cel_source=source,
        interpret=interpret,
    )


def _cel_check(rule: Rule, check: CelCheck) -> tuple[CheckFn, str, InterpretFn]:
    from kai.policy import cel

    if check.scope not in ("object", "pod", "container"):
        raise PolicyError(
            f"{rule.source}: cel.scope must be object, pod or container, not {check.scope!r}"
        )
    fields = tuple(check.containers)
    scope = check.scope
    try:
        program = cel.Program(cel.wrap(check.expression, scope, fields, check.variables))
    except cel.CelError as e:
        raise PolicyError(f"{rule.source}: rule {rule.id}: CEL does not compile: {e}") from None
    message = check.message or rule.title
    _check_message(rule, message)

    def fmt(m: Manifest, container: dict[str, Any] | None = None, field: str = "") -> str:
        values = _Fields(
            kind=m.ref.kind,
            name=m.ref.name,
            namespace=m.ref.namespace or "",
            apiVersion=m.ref.apiVersion,
        )
        if container is not None:
            values.update(
                container=str(container.get("name", "?")),
                field=field,
                image=str(container.get("image", "")),
            )
        return message.format_map(values)

    def interpret(result: Any, m: Manifest, ctx: Context) -> Iterator[Hit]:
        if scope == "container":
            found = ctx.pod(m)
            if found is None:
                return
            pod_spec, path = found
            containers = list(workload.iter_containers(pod_spec, fields))
            if not isinstance(result, list) or len(result) != len(containers):
                raise cel.CelError("containers are malformed")
            for ok, (field, i, c) in zip(result, containers, strict=True):
                if ok is not True:
                    yield Hit(fmt(m, c, field), f"{path}.{field}[{i}]")
        elif result is not True:
            found = ctx.pod(m) if scope == "pod" else None
            yield Hit(fmt(m), found[1] if found else None)

    def run(m: Manifest, ctx: Context) -> Iterator[Hit]:
        return interpret(program.evaluate(ctx.cel_activation(m)), m, ctx)

    return run, program.source, interpret

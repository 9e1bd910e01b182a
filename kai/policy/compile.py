"""Turning a Rule (data) into a runnable check."""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kai.errors import PolicyError
from kai.models import CelCheck, Manifest, Rule
from kai.policy import workload
from kai.policy.context import CheckFn, Context, Hit

InterpretFn = Callable[[Any, Manifest, Context], Iterator[Hit]]
# What a rule reports when it cannot evaluate an object: kai fails closed, never a silent pass.
FailFn = Callable[[Manifest, Context, Exception], list[Hit]]


@dataclass(slots=True)
class CompiledRule:
    rule: Rule
    run: CheckFn
    kinds: frozenset[str]
    needs_pod: bool
    # CEL rules also expose their full expression and how to read its result, so the engine can
    # evaluate every CEL rule that applies to an object in one call.
    cel_source: str | None = None
    interpret: InterpretFn | None = None
    fail_closed: FailFn | None = None
    # The CEL rule's scope and container fields: what the engine needs to see, from a batched
    # result alone, that `interpret` would report nothing (most objects pass most rules).
    scope: str | None = None
    fields: tuple[str, ...] = ()

    def passes(self, result: Any, m: Manifest, ctx: Context) -> bool:
        """True when `interpret(result, m, ctx)` is sure to yield no hit (a quick check; False
        means only "ask interpret")."""
        if self.scope == "container":
            containers = ctx.containers(m, self.fields)
            return containers is None or (
                type(result) is list
                and len(result) == len(containers)
                and all(ok is True for ok in result)
            )
        return result is True


def error_text(err: Exception) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def unevaluable(rule: Rule, m: Manifest, err: Exception, what: str | None = None) -> Hit:
    """The finding for an object (or one container of it) a rule cannot evaluate."""
    return Hit(
        f"{what or m.ref.display()} could not be checked ({error_text(err)}): "
        "treated as failing; the API server would reject or default this value",
    )


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
        from kai.policy import checks

        fn = checks.CHECKS.get(rule.python)
        if fn is None:
            raise PolicyError(
                f"{rule.source}: rule {rule.id} names unknown Python check {rule.python!r}"
            )
        kinds = frozenset(rule.match.kinds) or checks.KINDS[rule.python]
        return CompiledRule(rule, fn, kinds, needs_pod=rule.python in checks.NEEDS_POD)
    assert rule.cel is not None
    run, source, interpret, fail_closed = _cel_check(rule, rule.cel)
    return CompiledRule(
        rule,
        run,
        frozenset(rule.match.kinds),
        needs_pod=rule.cel.scope in ("pod", "container"),
        cel_source=source,
        interpret=interpret,
        fail_closed=fail_closed,
        scope=rule.cel.scope,
        fields=tuple(rule.cel.containers),
    )


def _with_one_container(
    obj: dict[str, Any], path: str, field: str, container: Any, fields: tuple[str, ...]
) -> dict[str, Any]:
    """A copy of `obj` whose pod spec (at dotted `path`) holds only `container` in `field`."""
    root = dict(obj)
    node = root
    for step in path.split(".") if path else []:
        node[step] = dict(node[step])
        node = node[step]
    for f in fields:
        node[f] = [container] if f == field else []
    return root


def _cel_check(rule: Rule, check: CelCheck) -> tuple[CheckFn, str, InterpretFn, FailFn]:
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
            containers = ctx.containers(m, fields)
            if containers is None:
                return
            path = ctx.pod(m)[1]  # type: ignore[index]  # containers exist: so does the pod
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

    def fail_closed(m: Manifest, ctx: Context, err: Exception) -> list[Hit]:
        """The rule failed on this object: a container rule re-checks each container alone, so
        one malformed container neither hides nor is hidden by its siblings; every container
        (or object) that still cannot be evaluated counts as failing."""
        found = ctx.pod(m) if scope == "container" else None
        if found is None:
            return [unevaluable(rule, m, err, f"{m.ref.display()} for {rule.id}")]
        pod_spec, path = found
        hits: list[Hit] = []
        raw_fields = fields or workload.CONTAINER_FIELDS
        for field in raw_fields:
            items = pod_spec.get(field)
            for i, c in enumerate(items if isinstance(items, list) else []):
                where = f"{path}.{field}[{i}]"
                name = c.get("name", "?") if isinstance(c, dict) else "?"
                if not isinstance(c, dict):
                    hits.append(
                        Hit(
                            f"{field}[{i}] of {m.ref.display()} is not a container object: "
                            f"{rule.id} treats it as failing",
                            where,
                        )
                    )
                    continue
                one = _with_one_container(m.obj, path, field, c, raw_fields)
                try:
                    result = program.evaluate(cel.activation(one))
                    ok = isinstance(result, list) and len(result) == 1 and result[0] is True
                    if not ok:
                        hits.append(Hit(fmt(m, c, field), where))
                except Exception as e:
                    hits.append(
                        Hit(
                            f"container {name!s} could not be checked by {rule.id} "
                            f"({error_text(e)}): treated as failing",
                            where,
                        )
                    )
        return hits or [unevaluable(rule, m, err, f"{m.ref.display()} for {rule.id}")]

    return run, program.source, interpret, fail_closed

"""Turning a Rule (data) into a runnable check."""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kai.errors import PolicyError
from kai.models import CelCheck, Manifest, Rule
from kai.policy import workload
from kai.policy.context import CheckFn, Context, Hit

if TYPE_CHECKING:
    from kai.policy import cel

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
    # The CEL rule's scope and container fields: what the engine needs to batch the rule and to
    # see, from a batched result alone, that `interpret` would report nothing (engine._passes).
    scope: str | None = None
    fields: tuple[str, ...] = ()


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


def _cel_program(rule: Rule, check: CelCheck) -> cel.Program:
    """Compile the rule's CEL, wrapped for its scope; a bad scope or CEL names the rule file."""
    from kai.policy import cel

    if check.scope not in ("object", "pod", "container"):
        raise PolicyError(
            f"{rule.source}: cel.scope must be object, pod or container, not {check.scope!r}"
        )
    fields = tuple(check.containers)
    try:
        return cel.Program(cel.wrap(check.expression, check.scope, fields, check.variables))
    except cel.CelError as e:
        raise PolicyError(f"{rule.source}: rule {rule.id}: CEL does not compile: {e}") from None


@dataclass(frozen=True, slots=True)
class _CelRule:
    """A compiled CEL rule: how it runs on an object, reads the result, and fails closed.

    `scope` is "object", "pod" or "container"; a container rule's program returns one boolean
    per container in `fields` (every container field when empty), in the order
    `Context.containers` lists them. `message` is the rule's message template.
    """

    rule: Rule
    program: cel.Program
    scope: str
    fields: tuple[str, ...]
    message: str

    def message_for(
        self, m: Manifest, container: dict[str, Any] | None = None, field: str = ""
    ) -> str:
        """The rule's message for `m` (and one of its containers), placeholders filled in."""
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
        return self.message.format_map(values)

    def interpret(self, result: Any, m: Manifest, ctx: Context) -> Iterator[Hit]:
        """The hits a program result means: one per failing container, or one for the object."""
        if self.scope == "container":
            containers = ctx.containers(m, self.fields)
            if containers is None:
                return
            path = ctx.pod(m)[1]  # type: ignore[index]  # containers exist: so does the pod
            if not isinstance(result, list) or len(result) != len(containers):
                from kai.policy import cel  # (imported here: 280,000 calls at 60,000 objects)

                raise cel.CelError("containers are malformed")
            for ok, (field, i, c) in zip(result, containers, strict=True):
                if ok is not True:
                    yield Hit(self.message_for(m, c, field), f"{path}.{field}[{i}]")
        elif result is not True:
            found = ctx.pod(m) if self.scope == "pod" else None
            yield Hit(self.message_for(m), found[1] if found else None)

    def run(self, m: Manifest, ctx: Context) -> Iterator[Hit]:
        """Evaluate the rule on one object on its own (the engine usually batches rules)."""
        return self.interpret(self.program.evaluate(ctx.cel_activation(m)), m, ctx)

    def fail_closed(self, m: Manifest, ctx: Context, err: Exception) -> list[Hit]:
        """The rule failed on this object: a container rule re-checks each container alone, so
        one malformed container neither hides nor is hidden by its siblings; every container
        (or object) that still cannot be evaluated counts as failing."""
        found = ctx.pod(m) if self.scope == "container" else None
        if found is None:
            return [self._unevaluable(m, err)]
        pod_spec, path = found
        hits: list[Hit] = []
        raw_fields = self.fields or workload.CONTAINER_FIELDS
        for field in raw_fields:
            items = pod_spec.get(field)
            for i, c in enumerate(items if isinstance(items, list) else []):
                hit = self._check_alone(m, path, field, i, c, raw_fields)
                if hit is not None:
                    hits.append(hit)
        return hits or [self._unevaluable(m, err)]

    def _check_alone(
        self, m: Manifest, path: str, field: str, i: int, c: Any, raw_fields: tuple[str, ...]
    ) -> Hit | None:
        """Re-check container `field[i]` of `m` (pod spec at `path`) as the only container: its
        hit if it fails, cannot be evaluated or is not a container object, else None."""
        from kai.policy import cel

        where = f"{path}.{field}[{i}]"
        if not isinstance(c, dict):
            return Hit(
                f"{field}[{i}] of {m.ref.display()} is not a container object: "
                f"{self.rule.id} treats it as failing",
                where,
            )
        one = _with_one_container(m.obj, path, field, c, raw_fields)
        try:
            result = self.program.evaluate(cel.activation(one))
            ok = isinstance(result, list) and len(result) == 1 and result[0] is True
            return None if ok else Hit(self.message_for(m, c, field), where)
        except Exception as e:
            return Hit(
                f"container {c.get('name', '?')!s} could not be checked by {self.rule.id} "
                f"({error_text(e)}): treated as failing",
                where,
            )

    def _unevaluable(self, m: Manifest, err: Exception) -> Hit:
        return unevaluable(self.rule, m, err, f"{m.ref.display()} for {self.rule.id}")


def _cel_check(rule: Rule, check: CelCheck) -> tuple[CheckFn, str, InterpretFn, FailFn]:
    """Compile a CEL rule into its run, full CEL source, result reader and fail-closed check."""
    program = _cel_program(rule, check)
    message = check.message or rule.title
    _check_message(rule, message)
    compiled = _CelRule(rule, program, check.scope, tuple(check.containers), message)
    return compiled.run, program.source, compiled.interpret, compiled.fail_closed

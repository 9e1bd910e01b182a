"""Parse a proposed kubectl command with kai's model of kubectl's grammar (kai/ops/grammar.py) and
classify it: read / write / destructive / refused. kai/ops/runner.py runs it, never through a shell.

The classification is kai's, not the model's: whatever a model says a command does, what runs is
decided here from the verb, the flags and the targets. Anything kai cannot parse is refused.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from kai.ops.grammar import (
    _FORBIDDEN_IN_ARGS,
    _NAMESPACE_TYPES,
    _RAW_REFUSED_SUBRESOURCES,
    _TEMPLATE_OUTPUTS,
    _VALUELESS_OUTPUTS,
    BOOL_FLAGS,
    CLUSTER_SCOPED,
    CREATE_SUBJECTS,
    CREDENTIAL_FLAGS,
    DRY_RUN_VERBS,
    KNOWN_VERBS,
    MAX_ARG,
    MAX_ARGS,
    MAX_TOTAL,
    OPTIONAL_VALUE_FLAGS,
    PROGRAMS,
    REFUSED_VERBS,
    SHELL_TOKENS,
    SHORT_BOOL,
    SHORT_LONG,
    SHORT_VALUE,
    SUBVERB_ONLY,
    SUBVERBS,
    VALUE_FLAGS,
    VERB_KINDS,
    Kind,
)


@dataclass(slots=True)
class Command:
    """One proposed command: kubectl's arguments (without "kubectl") and what it is for."""

    argv: list[str]
    purpose: str = ""


@dataclass(slots=True)
class Verdict:
    """What kai decided about one command, and everything the gates need to act on it."""

    argv: list[str]
    kind: Kind
    verb: str = ""
    reason: str = ""
    hint: str = ""
    types: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    namespace: str | None = None
    all_namespaces: bool = False
    select_all: bool = False
    selector: str | None = None
    files: list[str] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)
    sensitive: bool = False  # a read that prints Secret values: asked for even in reads-auto
    raw: str | None = None  # the API path of `get --raw`
    purpose: str = ""

    @property
    def line(self) -> str:
        return "kubectl " + shlex.join(self.argv)

    @property
    def dry_run(self) -> bool:
        # `set image`, `set env`, ...: every set subcommand takes --dry-run like `set` itself.
        verb = "set" if self.verb.startswith("set ") else self.verb
        return self.kind in (Kind.write, Kind.destructive) and verb in DRY_RUN_VERBS


def _refuse(argv: Sequence[str], reason: str, hint: str = "", verb: str = "") -> Verdict:
    return Verdict(
        list(argv),
        Kind.refused,
        verb=verb,
        reason=reason,
        hint=hint or "review it and run it by hand if it is what you want",
    )


def _hostile(argv: Sequence[str]) -> str | None:
    if len(argv) > MAX_ARGS or sum(len(a) for a in argv) > MAX_TOTAL:
        return f"too long ({len(argv)} arguments, {sum(len(a) for a in argv)} characters)"
    output_value = False
    for a in argv:
        if len(a) > MAX_ARG:
            return f"an argument of {len(a):,} characters"
        if a in SHELL_TOKENS:
            return f"shell syntax {a!r}: kai runs plain kubectl argument lists, not pipelines or compound commands"
        for bad in _FORBIDDEN_IN_ARGS:
            if bad in a:
                shown = {"\n": "a newline", "\r": "a carriage return", "\x00": "a NUL byte"}.get(
                    bad, repr(bad)
                )
                return (
                    f"shell syntax {shown} in {a[:60]!r}: kai never runs commands through a shell"
                )
        # A `|` is a pipeline, except inside a go-template (where it is template syntax).
        in_template = output_value or a.startswith(
            tuple(f"{p}={t}" for p in ("-o", "--output") for t in _TEMPLATE_OUTPUTS)
        )
        if "|" in a and not in_template and not a.startswith("--template="):
            return f"a pipe in {a[:60]!r}: kai runs plain kubectl argument lists, not pipelines"
        output_value = a in ("-o", "--output", "--template")
    return None


def split_line(line: str) -> list[str]:
    """A command line as the model may write it ("kubectl get pods -n x") split into words."""
    try:
        return shlex.split(line, posix=True)
    except ValueError as e:
        raise ValueError(f"cannot split {line[:80]!r}: {e}") from None


def parse(argv: Sequence[str]) -> tuple[str | None, dict[str, list[str]], list[str]] | str:
    """(program, flags, positionals) or the reason the line cannot be parsed."""
    args = list(argv)
    program = None
    if args and (args[0] in PROGRAMS or os.path.basename(args[0]) in PROGRAMS):
        program = args.pop(0)
    flags: dict[str, list[str]] = {}
    positionals: list[str] = []
    verb: str | None = None
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            flags["--"] = args[i:]  # a command for a container: only exec/run/debug take one
            break
        if a.startswith("--"):
            name, eq, value = a.partition("=")
            if name in CREDENTIAL_FLAGS:
                flags.setdefault(name, []).append(value if eq else "")
                if not eq and name != "--insecure-skip-tls-verify" and i < len(args):
                    i += 1
                continue
            if name in VALUE_FLAGS:
                if not eq:
                    if i >= len(args):
                        return f"{name} needs a value"
                    value = args[i]
                    i += 1
                flags.setdefault(name, []).append(value)
            elif name in OPTIONAL_VALUE_FLAGS:
                flags.setdefault(name, []).append(value if eq else "")
            elif name in BOOL_FLAGS:
                flags.setdefault(name, []).append(value if eq else "true")
            else:
                return f"unknown flag {name}"
            continue
        if a.startswith("-") and len(a) > 1:
            chars = a[1:]
            j = 0
            while j < len(chars):
                c = chars[j]
                follow = verb == "logs" and c in ("f", "p")
                if c in SHORT_BOOL or follow:
                    long = {"f": "--follow", "p": "--previous"}[c] if follow else SHORT_LONG[c]
                    flags.setdefault(long, []).append("true")
                    j += 1
                    continue
                if c in SHORT_VALUE:
                    long = SHORT_LONG[c]
                    rest = chars[j + 1 :]
                    if rest:
                        value = rest[1:] if rest.startswith("=") else rest
                    else:
                        if i >= len(args):
                            return f"-{c} needs a value"
                        value = args[i]
                        i += 1
                    flags.setdefault(long, []).append(value)
                    break
                return f"unknown flag -{c}"
            continue
        positionals.append(a)
        if verb is None:
            verb = a
    return program, flags, positionals


def _targets(positionals: list[str]) -> tuple[list[str], list[str]]:
    """(resource types, object names) from TYPE NAME..., TYPE/NAME..., TYPE1,TYPE2 forms."""
    types: list[str] = []
    names: list[str] = []
    for p in positionals:
        if "=" in p or p.endswith("-") or ":" in p:
            continue  # label/annotation/taint/image assignments, not targets
        if "/" in p:
            t, _, n = p.partition("/")
            types.append(t)
            names.append(n)
        elif not types:
            types += [t for t in p.split(",") if t]
        else:
            names.append(p)
    return types, names


def _one(flags: dict[str, list[str]], name: str) -> str | None:
    values = flags.get(name)
    return values[-1] if values else None


def _truthy(flags: dict[str, list[str]], name: str) -> bool:
    return _truthy_str(_one(flags, name))


@dataclass(slots=True)
class _Parsed:
    """A parsed command as the classifier's steps see it."""

    body: list[str]
    verb: str  # the first positional: "rollout" of `rollout restart`
    flags: dict[str, list[str]]
    rest: list[str]  # the positionals after the verb (after the subverb, once it is known)
    namespace: str | None  # the namespace the person chose


def _credentials(v: Verdict, p: _Parsed) -> Verdict | None:
    creds = sorted(f for f in p.flags if f in CREDENTIAL_FLAGS)
    if not creds:
        return None
    return _refuse(
        p.body,
        f"{', '.join(creds)}: identity and connection come from kai's own --context, "
        "--kubeconfig and -n, never from a proposed command",
        "pass --context / --kubeconfig to kai itself",
        verb=v.verb,
    )


def _chosen_namespace(v: Verdict, p: _Parsed) -> Verdict | None:
    if not (p.namespace and v.namespace and v.namespace != p.namespace):
        return None
    return _refuse(
        p.body,
        f"it targets namespace {v.namespace!r} but you chose {p.namespace!r}",
        f"rerun kai with -n {v.namespace} if that namespace is what you meant",
        verb=v.verb,
    )


def _container_command(v: Verdict, p: _Parsed) -> Verdict | None:
    if "--" in p.flags and v.verb not in REFUSED_VERBS:
        return _refuse(p.body, "arguments after -- pass a command to a container", verb=v.verb)
    return None


def _verb_kind(v: Verdict, p: _Parsed) -> Verdict | None:
    """What the verb does, from the grammar's tables (a subverb decides for rollout, auth, set)."""
    verb = v.verb
    if verb in REFUSED_VERBS:
        v.kind, v.reason = Kind.refused, f"kubectl {verb} {REFUSED_VERBS[verb]}"
        v.hint = f"kai never runs kubectl {verb}; run it yourself if you need it"
        return v
    if verb in SUBVERBS and p.rest and p.rest[0] in SUBVERBS[verb]:
        v.verb = f"{verb} {p.rest[0]}"
        v.kind = SUBVERBS[verb][p.rest[0]]
        p.rest = p.rest[1:]
        if v.kind is Kind.refused:
            v.reason, v.hint = "it opens an editor on a live object", "run it yourself"
            return v
        return None
    if verb in SUBVERB_ONLY:
        return _refuse(p.body, f"unknown kubectl {verb} subcommand", verb=verb)
    if verb not in VERB_KINDS:
        return _refuse(
            p.body,
            f"unknown kubectl command {verb!r} (or a plugin)",
            "kai runs only the kubectl commands it can classify",
            verb=verb,
        )
    v.kind = VERB_KINDS[verb]
    return None


def _create_subject(v: Verdict, p: _Parsed) -> Verdict | None:
    if p.verb != "create" or not p.rest or p.rest[0] in CREATE_SUBJECTS or v.files:
        return None
    if p.rest[0] == "token":
        return _refuse(p.body, "kubectl create token mints a credential", verb="create token")
    return _refuse(p.body, f"unknown kubectl create subcommand {p.rest[0]!r}", verb=p.verb)


# What each verb targets, where that is not `TYPE NAME...` / `TYPE/NAME...` (see _targets).
_VERB_TARGETS: dict[str, Callable[[list[str]], tuple[list[str], list[str]]]] = {
    "run": lambda rest: (["pods"], rest[:1]),
    "cordon": lambda rest: (["nodes"], [a for a in rest if "=" not in a]),
    "uncordon": lambda rest: (["nodes"], [a for a in rest if "=" not in a]),
    "drain": lambda rest: (["nodes"], [a for a in rest if "=" not in a]),
    "taint": lambda rest: (["nodes"], rest[1:2]),
}


def _what_it_targets(v: Verdict, p: _Parsed) -> Verdict | None:
    verb = p.verb
    if verb in _VERB_TARGETS:
        v.types, v.names = _VERB_TARGETS[verb](p.rest)
    elif verb == "create" and p.rest:
        v.types, v.names = [p.rest[0]], p.rest[1:2]
    elif verb == "logs" and p.rest and "/" not in p.rest[0]:
        v.types, v.names = ["pods"], p.rest[:1]  # logs POD [CONTAINER]
    else:
        v.types, v.names = _targets(p.rest)
    return None


def _unseen_files(v: Verdict, p: _Parsed) -> Verdict | None:
    if "-" in v.files:
        return _refuse(
            p.body,
            "-f - reads standard input, and kai gives a proposed command none",
            "save the YAML to a file and use kai apply FILE (it reviews it first)",
            verb=v.verb,
        )
    remote = [f for f in v.files if f.startswith(("http://", "https://"))]
    if remote:
        return _refuse(
            p.body,
            f"-f {remote[0]} fetches manifests from the network, unseen",
            "download it, read it, then kai apply the file",
            verb=v.verb,
        )
    return None


def _raw_path(v: Verdict, p: _Parsed) -> Verdict | None:
    return _raw(v, p.flags["--raw"][-1], p.namespace) if "--raw" in p.flags else None


# The classifier, in order: each step refuses (returns a Verdict) or lets the command through.
_STEPS: tuple[Callable[[Verdict, _Parsed], Verdict | None], ...] = (
    _credentials,
    _chosen_namespace,
    _container_command,
    _verb_kind,
    _create_subject,
    _what_it_targets,
    _unseen_files,
    _raw_path,
)


def classify(argv: Sequence[str], namespace: str | None = None) -> Verdict:
    """kai's verdict on one kubectl command; `namespace` is the one the person chose, if any."""
    argv = list(argv)
    problem = _hostile(argv)
    if problem:
        return _refuse(argv, problem)
    if argv and os.path.basename(argv[0]) in PROGRAMS:
        argv = argv[1:]
    elif argv and not argv[0].startswith("-") and argv[0] not in KNOWN_VERBS:
        return _refuse(
            argv,
            f"{argv[0]!r} is not kubectl: kai runs only kubectl commands",
            "run other programs yourself, after reading them",
        )
    parsed = parse(argv)
    if isinstance(parsed, str):
        return _refuse(argv, f"kai cannot parse this command: {parsed}")
    _, flags, positionals = parsed
    if not positionals:
        return _refuse(argv, "no kubectl command given")
    v = Verdict(argv, Kind.read, verb=positionals[0])
    v.flags = {k: vals[-1] for k, vals in flags.items()}
    v.namespace = _one(flags, "--namespace")
    v.all_namespaces = _truthy(flags, "--all-namespaces")
    v.select_all = _truthy(flags, "--all")
    v.selector = _one(flags, "--selector") or _one(flags, "--field-selector")
    v.files = flags.get("--filename", [])
    p = _Parsed(argv, positionals[0], flags, positionals[1:], namespace)
    for step in _STEPS:
        decided = step(v, p)
        if decided is not None:
            return decided
    _sharpen(v)
    return _scope(v, namespace) or v


def resource_name(t: str) -> str:
    """A resource type as kubectl accepts it (`Secret`, `secrets.v1.`, `secret`) reduced to its
    lowercase first word, the kind, plural or short name before any version and group."""
    return t.split(".")[0].lower()


def _is_secret_type(t: str) -> bool:
    return resource_name(t) in ("secret", "secrets")


def _is_namespace_type(t: str) -> bool:
    return resource_name(t) in _NAMESPACE_TYPES


def raw_target(path: str) -> tuple[str | None, str, str, str] | str | None:
    """What an API path addresses: (namespace, resource[.group], name, subresource), None for a
    path outside the resource API (/healthz, /version, /openapi/v3), or why kai will not send it."""
    if not path.startswith("/"):
        return f"--raw {path[:60]!r} is not an absolute API path"
    target, _, query = path.partition("?")
    if any(bad in target for bad in ("..", "//", "%", "\\")):
        return f"--raw {path[:60]!r} is not a plain API path (dot segments, // or escapes)"
    params = {k.lower(): v.lower() for k, _, v in (p.partition("=") for p in query.split("&") if p)}
    for streaming in ("watch", "follow"):
        if params.get(streaming) not in (None, "false", "0"):
            return f"--raw with {streaming}={params[streaming]} streams without end"
    parts = [p for p in target.split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        return None
    if parts[0] == "api":
        group, rest = "", parts[2:]
    else:
        group, rest = (parts[1] if len(parts) > 1 else ""), parts[3:]
    if rest and rest[0] in ("watch", "proxy"):  # the old /api/v1/watch/... and /proxy/... forms
        return f"--raw {path[:60]!r} {'streams without end' if rest[0] == 'watch' else 'proxies a request into the cluster'}"
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return (None, "", "", "")  # discovery: the group's list of resources
    resource = rest[0].lower() + (f".{group}" if group else "")
    return namespace, resource, rest[1] if len(rest) > 1 else "", "/".join(rest[2:])


def _raw(v: Verdict, path: str, namespace: str | None) -> Verdict | None:
    """Classify `--raw PATH` by what the path addresses; a refusal, or None with `v` updated."""
    if v.verb != "get":
        return _refuse(
            v.argv,
            f"kubectl {v.verb} --raw sends a request to the API that kai cannot dry-run, "
            "preview or check permissions for",
            f"use kubectl {v.verb} with a type and name (kai gates it), or run it yourself",
            verb=v.verb,
        )
    target = raw_target(path)
    if isinstance(target, str):
        return _refuse(v.argv, target, verb=v.verb)
    v.raw = path
    if target is None:
        if path.rstrip("/").split("?")[0] in ("/logs",) or path.startswith("/logs/"):
            v.sensitive, v.reason = True, "reads the API server host's log files"
        return None
    ns, resource, name, sub = target
    for part, why in _RAW_REFUSED_SUBRESOURCES.items():
        if part in sub.split("/"):
            return _refuse(v.argv, f"--raw {path[:60]!r} {why}", verb=v.verb)
    v.types = [resource] if resource else []
    v.names = [name] if name else []
    if ns is not None:
        if namespace and ns != namespace:
            return _refuse(
                v.argv,
                f"it targets namespace {ns!r} but you chose {namespace!r}",
                f"rerun kai with -n {ns} if that namespace is what you meant",
                verb=v.verb,
            )
        v.namespace = ns
    if _is_secret_type(resource):
        v.sensitive, v.reason = True, "reads Secrets through the raw API: prints their values"
    return None


def _scope(v: Verdict, namespace: str | None) -> Verdict | None:
    """With a namespace chosen, refuse changes that reach beyond it: another namespace object,
    every namespace (-A), or destroying something cluster-scoped that other namespaces use."""
    if not namespace or v.kind not in (Kind.write, Kind.destructive):
        return None
    hint = f"rerun kai without -n {namespace} if you mean to act beyond namespace {namespace}"
    if v.all_namespaces:
        return _refuse(
            v.argv, f"-A reaches every namespace but you chose {namespace!r}", hint, verb=v.verb
        )
    if any(_is_namespace_type(t) for t in v.types):
        others = [n for n in v.names if n != namespace]
        if others or not v.names:
            what = f"namespace {others[0]!r}" if others else "namespaces it does not name"
            return _refuse(
                v.argv,
                f"it changes {what} but you chose {namespace!r}",
                f"rerun kai with -n {others[0]}" if others else hint,
                verb=v.verb,
            )
    if v.kind is Kind.destructive:
        scoped = [t for t in v.types if resource_name(t) in CLUSTER_SCOPED]
        if scoped:
            return _refuse(
                v.argv,
                f"it destroys cluster-scoped {scoped[0]}, beyond namespace {namespace!r} you chose",
                hint,
                verb=v.verb,
            )
    return None


_STREAMING = {"--watch", "--watch-only", "--follow"}


def _sharpen(v: Verdict) -> None:
    """Move a command to a stricter class for what its flags and targets actually do."""
    dry = v.flags.get("--dry-run")
    if v.kind is not Kind.read and v.dry_run and dry in ("server", "client"):
        v.kind, v.reason = Kind.read, f"--dry-run={dry} changes nothing"
        return
    if v.kind is Kind.read:
        streaming = [f for f in _STREAMING if _truthy_str(v.flags.get(f))]
        if streaming and v.verb != "rollout status":
            v.kind = Kind.refused
            v.reason = f"{streaming[0]} streams without end"
            v.hint = "run it yourself in a terminal, or drop the flag"
            return
        secretish = any(_is_secret_type(t) for t in v.types)
        output = v.flags.get("--output", "").split("=")[0].lower()
        prints_values = output not in _VALUELESS_OUTPUTS or "--template" in v.flags
        if v.verb == "get" and prints_values and (secretish or v.files or "--kustomize" in v.flags):
            v.sensitive = True
            v.reason = (
                "prints Secret values"
                if secretish
                else "prints the objects its files name, which may be Secrets with their values"
            )
        if v.verb == "apply view-last-applied" and (secretish or v.files):
            v.sensitive = True
            v.reason = "prints the last applied configuration, which holds a Secret's values"
        return
    if v.verb == "run":
        interactive = [f for f in ("--stdin", "--tty", "--attach", "--rm") if f in v.flags]
        if interactive:
            v.kind = Kind.refused
            v.reason = f"kubectl run {interactive[0]} starts an interactive container"
            v.hint = "run it yourself in a terminal"
            return
    if v.kind is Kind.destructive:
        v.reason = {"delete": "deletes objects", "drain": "evicts every pod from the node"}.get(
            v.verb, "destructive"
        )
        if v.verb == "delete" and any(_is_namespace_type(t) for t in v.types):
            v.reason = "deletes a namespace and everything in it"
        return
    reasons = []
    if v.select_all:
        reasons.append("--all selects every object of the type")
    if v.all_namespaces:
        reasons.append("-A selects every namespace")
    if v.verb == "scale" and v.flags.get("--replicas") == "0":
        reasons.append("scaling to 0 stops every pod")
    if v.verb == "apply" and "--prune" in v.flags:
        reasons.append("--prune deletes objects not in the files")
    if v.verb in ("replace", "apply") and _truthy_str(v.flags.get("--force")):
        reasons.append("--force deletes and recreates the objects")
    if v.verb == "taint" and any(p.endswith(":NoExecute") for p in v.argv):
        reasons.append("a NoExecute taint evicts running pods")
    if (
        v.verb
        not in (
            "create",
            "expose",
            "run",
            "autoscale",
            "apply",
            "replace",
            "cordon",
            "uncordon",
            "taint",
        )
        and v.types
        and not v.names
        and not v.files
        and not v.selector
        and not v.select_all
    ):
        reasons.append("it names no object, so it selects every one of its type in the namespace")
    if reasons:
        v.kind, v.reason = Kind.destructive, "; ".join(reasons)


def _truthy_str(value: str | None) -> bool:
    return value is not None and value.lower() not in ("false", "0")

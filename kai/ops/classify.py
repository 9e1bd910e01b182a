"""kubectl operations: parse a proposed command with kai's own model of kubectl's grammar, classify
it (read / write / destructive / refused), and run it as an argv list, never through a shell.

The classification is kai's, not the model's: whatever a model says a command does, what runs is
decided here from the verb, the flags and the targets. Anything kai cannot parse is refused.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from kai.errors import ClusterError


class Kind(StrEnum):
    read = "read"
    write = "write"
    destructive = "destructive"
    refused = "refused"


MAX_ARG = 8192  # a longer argument is not a kubectl command a person would read before running
MAX_ARGS = 64
MAX_TOTAL = 16384

# Flags that carry identity or connection: they come from kai's own options, never from a model.
CREDENTIAL_FLAGS = {
    "--token",
    "--as",
    "--as-group",
    "--as-uid",
    "--as-user-extra",
    "--kubeconfig",
    "--context",
    "--cluster",
    "--user",
    "--server",
    "-s",
    "--username",
    "--password",
    "--client-certificate",
    "--client-key",
    "--certificate-authority",
    "--insecure-skip-tls-verify",
    "--tls-server-name",
    "--kuberc",
    "--cache-dir",
}
# Long flags that take a value (`--flag value` or `--flag=value`).
VALUE_FLAGS = {
    "--namespace",
    "--output",
    "--selector",
    "--field-selector",
    "--filename",
    "--container",
    "--replicas",
    "--current-replicas",
    "--resource-version",
    "--tail",
    "--since",
    "--since-time",
    "--sort-by",
    "--template",
    "--patch",
    "--patch-file",
    "--type",
    "--image",
    "--port",
    "--target-port",
    "--protocol",
    "--name",
    "--timeout",
    "--to-revision",
    "--revision",
    "--grace-period",
    "--field-manager",
    "--min",
    "--max",
    "--cpu-percent",
    "--kustomize",
    "--chunk-size",
    "--for",
    "--subresource",
    "--label-columns",
    "--limits",
    "--requests",
    "--env",
    "--from",
    "--from-literal",
    "--from-file",
    "--from-env-file",
    "--labels",
    "--restart",
    "--serviceaccount",
    "--pod-selector",
    "--max-log-requests",
    "--limit-bytes",
    "--types",
    "--api-group",
    "--verbs",
    "--verb",
    "--raw",
    "--resource",
    "--resource-name",
    "--role",
    "--clusterrole",
    "--group",
    "--overrides",
    "--pod-running-timeout",
    "--prune-allowlist",
    "--request-timeout",
    "--v",
    "--cluster-ip",
    "--external-ip",
    "--load-balancer-ip",
    "--session-affinity",
    "--schedule",
    "--image-pull-policy",
    "--delete-emptydir-data-timeout",
    "--skip-wait-for-delete-timeout",
    "--list-kinds",
    "--local-timeout",
    "--selector-label",
    "--class",
    "--rule",
    "--default-backend",
    "--annotation",
    "--duration",
    "--audience",
    "--bound-object-kind",
    "--bound-object-name",
    "--bound-object-uid",
    "--hard",
    "--scopes",
    "--value",
    "--description",
    "--preemption-policy",
    "--min-available",
    "--max-unavailable",
    "--docker-server",
    "--docker-username",
    "--docker-password",
    "--docker-email",
    "--cert",
    "--key",
    "--aggregation-rule",
    "--non-resource-url",
    "--generator",
    "--env-from",
    "--keys",
}
# Long flags that take a value only as `--flag=value` (pflag's NoOptDefVal): `--dry-run`,
# `--cascade` and `--validate` mean something on their own, so a following word is an argument.
OPTIONAL_VALUE_FLAGS = {"--dry-run", "--cascade", "--validate", "--containers"}
BOOL_FLAGS = {
    "--all",
    "--all-namespaces",
    "--watch",
    "--watch-only",
    "--follow",
    "--previous",
    "--timestamps",
    "--prefix",
    "--recursive",
    "--overwrite",
    "--force",
    "--force-conflicts",
    "--server-side",
    "--prune",
    "--ignore-not-found",
    "--now",
    "--wait",
    "--local",
    "--record",
    "--show-labels",
    "--show-kind",
    "--show-managed-fields",
    "--no-headers",
    "--ignore-daemonsets",
    "--delete-emptydir-data",
    "--disable-eviction",
    "--stdin",
    "--tty",
    "--attach",
    "--rm",
    "--quiet",
    "--list",
    "--resolve",
    "--allow-missing-template-keys",
    "--ignore-errors",
    "--help",
    "--namespaced",
    "--subresources",
    "--use-protocol-buffers",
    "--all-containers",
    "--insecure-skip-tls-verify-backend",
    "--keep-annotations",
    "--keep-labels",
    "--append-hash",
    "--save-config",
    "--edit",
    "--windows-line-endings",
    "--sum",
    "--client",
    "--short",
    "--exit-code",
    "--cached",
    "--disable-compression",
    "--match-server-version",
    "--warnings-as-errors",
    "--privileged",
    "--expose",
    "--leave-stdin-open",
    "--command",
}
# Short flags. Their meaning can depend on the verb: `-f` is --follow for logs and --filename
# elsewhere, `-p` is --previous for logs and --patch for patch.
SHORT_BOOL = {"A", "R", "w", "i", "t", "q", "h"}
SHORT_VALUE = {"n", "o", "l", "L", "k", "c", "v", "e", "s", "f", "p"}
SHORT_LONG = {
    "n": "--namespace",
    "o": "--output",
    "l": "--selector",
    "L": "--label-columns",
    "k": "--kustomize",
    "c": "--container",
    "v": "--v",
    "e": "--env",
    "s": "--server",
    "f": "--filename",
    "p": "--patch",
    "A": "--all-namespaces",
    "R": "--recursive",
    "w": "--watch",
    "i": "--stdin",
    "t": "--tty",
    "q": "--quiet",
    "h": "--help",
}

READ_VERBS = {
    "get",
    "describe",
    "logs",
    "top",
    "events",
    "explain",
    "api-resources",
    "api-versions",
    "version",
    "cluster-info",
    "diff",
    "wait",
}
WRITE_VERBS = {
    "apply",
    "create",
    "patch",
    "label",
    "annotate",
    "scale",
    "set",
    "expose",
    "autoscale",
    "cordon",
    "uncordon",
    "taint",
    "replace",
    "run",
}
DESTRUCTIVE_VERBS = {"delete", "drain"}
REFUSED_VERBS = {
    "exec": "opens a shell or runs a program inside a container",
    "attach": "attaches to a running container's terminal",
    "cp": "copies files into or out of a container",
    "port-forward": "opens a network tunnel into the cluster",
    "proxy": "opens a proxy to the API server",
    "edit": "opens an editor on a live object",
    "debug": "starts a debugging container with access to a pod or node",
    "config": "changes kubeconfig (contexts, clusters, credentials)",
    "plugin": "runs a kubectl plugin, a program kai knows nothing about",
    "certificate": "approves or denies certificate requests, which grants credentials",
    "kustomize": "reads local files; not a cluster operation",
    "completion": "prints a shell script; not a cluster operation",
    "alpha": "alpha commands are not classified",
    "options": "not a cluster operation",
    "help": "not a cluster operation",
}
SUBVERBS = {
    "rollout": {
        "status": Kind.read,
        "history": Kind.read,
        "restart": Kind.write,
        "undo": Kind.write,
        "pause": Kind.write,
        "resume": Kind.write,
    },
    "auth": {"can-i": Kind.read, "whoami": Kind.read, "reconcile": Kind.write},
    "set": {
        "image": Kind.write,
        "env": Kind.write,
        "resources": Kind.write,
        "selector": Kind.write,
        "serviceaccount": Kind.write,
        "subject": Kind.write,
    },
    "apply": {
        "view-last-applied": Kind.read,
        "set-last-applied": Kind.write,
        "edit-last-applied": Kind.refused,
    },
}
KNOWN_VERBS = READ_VERBS | WRITE_VERBS | DESTRUCTIVE_VERBS | set(REFUSED_VERBS) | set(SUBVERBS)
# `kubectl create <thing>`: the thing names what is created; `create token` mints a credential.
CREATE_SUBJECTS = {
    "clusterrole",
    "clusterrolebinding",
    "configmap",
    "cm",
    "cronjob",
    "cj",
    "deployment",
    "deploy",
    "ingress",
    "ing",
    "job",
    "namespace",
    "ns",
    "poddisruptionbudget",
    "pdb",
    "priorityclass",
    "pc",
    "quota",
    "resourcequota",
    "role",
    "rolebinding",
    "secret",
    "service",
    "svc",
    "serviceaccount",
    "sa",
}
# Verbs that accept --dry-run=server, so a write can be shown before it happens: every write
# and destructive verb, and these subcommands (rollout restart, pause and resume have none).
DRY_RUN_VERBS = (
    WRITE_VERBS | DESTRUCTIVE_VERBS | {"rollout undo", "auth reconcile", "apply set-last-applied"}
)
SHELL_TOKENS = {"|", "||", "&&", "&", ";", ">", ">>", "<", "<<", "2>", "2>&1", "(", ")", "`"}
_FORBIDDEN_IN_ARGS = ("`", "$(", "${", "&&", "||", ";", "\n", "\r", "\x00")
_TEMPLATE_OUTPUTS = ("go-template", "template", "jsonpath", "custom-columns")
# Output formats that print no field values: everything else (yaml, json, kyaml, templates,
# jsonpath, custom columns and their -file forms, whatever kubectl adds) can print Secret data.
_VALUELESS_OUTPUTS = ("", "wide", "name")
_NAMESPACE_TYPES = ("namespace", "namespaces", "ns")
# Built-in cluster-scoped resources (kind, plural and short names, lowercase). Destroying one of
# them reaches beyond any namespace, so with a namespace chosen kai refuses it.
CLUSTER_SCOPED = {
    "node", "nodes", "no",
    "persistentvolume", "persistentvolumes", "pv",
    "customresourcedefinition", "customresourcedefinitions", "crd", "crds",
    "clusterrole", "clusterroles",
    "clusterrolebinding", "clusterrolebindings",
    "storageclass", "storageclasses", "sc",
    "priorityclass", "priorityclasses", "pc",
    "ingressclass", "ingressclasses",
    "runtimeclass", "runtimeclasses",
    "csidriver", "csidrivers", "csinode", "csinodes",
    "volumeattachment", "volumeattachments",
    "mutatingwebhookconfiguration", "mutatingwebhookconfigurations",
    "validatingwebhookconfiguration", "validatingwebhookconfigurations",
    "validatingadmissionpolicy", "validatingadmissionpolicies",
    "validatingadmissionpolicybinding", "validatingadmissionpolicybindings",
    "apiservice", "apiservices",
    "certificatesigningrequest", "certificatesigningrequests", "csr",
    "flowschema", "flowschemas",
    "prioritylevelconfiguration", "prioritylevelconfigurations",
    "componentstatus", "componentstatuses", "cs",
}  # fmt: skip
# Raw API paths: the subresources that are not reads of stored objects.
_RAW_REFUSED_SUBRESOURCES = {
    "proxy": "proxies a request into the cluster",
    "exec": "runs a program inside a container",
    "attach": "attaches to a running container",
    "portforward": "opens a network tunnel into the cluster",
}
PROGRAMS = {"kubectl", "kubectl.exe"}


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
    body = argv
    if not positionals:
        return _refuse(body, "no kubectl command given")
    creds = sorted(f for f in flags if f in CREDENTIAL_FLAGS)
    if creds:
        return _refuse(
            body,
            f"{', '.join(creds)}: identity and connection come from kai's own --context, "
            "--kubeconfig and -n, never from a proposed command",
            "pass --context / --kubeconfig to kai itself",
            verb=positionals[0],
        )
    verb = positionals[0]
    rest = positionals[1:]
    v = Verdict(body, Kind.read, verb=verb)
    v.flags = {k: vals[-1] for k, vals in flags.items()}
    v.namespace = _one(flags, "--namespace")
    v.all_namespaces = _truthy(flags, "--all-namespaces")
    v.select_all = _truthy(flags, "--all")
    v.selector = _one(flags, "--selector") or _one(flags, "--field-selector")
    v.files = flags.get("--filename", [])
    if namespace and v.namespace and v.namespace != namespace:
        return _refuse(
            body,
            f"it targets namespace {v.namespace!r} but you chose {namespace!r}",
            f"rerun kai with -n {v.namespace} if that namespace is what you meant",
            verb=verb,
        )
    if "--" in flags and verb not in REFUSED_VERBS:
        return _refuse(body, "arguments after -- pass a command to a container", verb=verb)
    if verb in REFUSED_VERBS:
        v.kind, v.reason = Kind.refused, f"kubectl {verb} {REFUSED_VERBS[verb]}"
        v.hint = f"kai never runs kubectl {verb}; run it yourself if you need it"
        return v
    if verb in SUBVERBS and rest and rest[0] in SUBVERBS[verb]:
        v.verb = f"{verb} {rest[0]}"
        v.kind = SUBVERBS[verb][rest[0]]
        rest = rest[1:]
        if v.kind is Kind.refused:
            v.reason, v.hint = "it opens an editor on a live object", "run it yourself"
            return v
    elif verb in ("rollout", "auth", "set"):
        return _refuse(body, f"unknown kubectl {verb} subcommand", verb=verb)
    elif verb in READ_VERBS:
        v.kind = Kind.read
    elif verb in WRITE_VERBS:
        v.kind = Kind.write
    elif verb in DESTRUCTIVE_VERBS:
        v.kind = Kind.destructive
    else:
        return _refuse(
            body,
            f"unknown kubectl command {verb!r} (or a plugin)",
            "kai runs only the kubectl commands it can classify",
            verb=verb,
        )
    if verb == "create" and rest and rest[0] not in CREATE_SUBJECTS and not v.files:
        if rest[0] == "token":
            return _refuse(body, "kubectl create token mints a credential", verb="create token")
        return _refuse(body, f"unknown kubectl create subcommand {rest[0]!r}", verb=verb)
    if verb == "create" and rest:
        v.types, v.names = [rest[0]], rest[1:2]
    else:
        v.types, v.names = _targets(rest)
    if verb == "run":
        v.types, v.names = ["pods"], rest[:1]
    if "-" in v.files:
        return _refuse(
            body,
            "-f - reads standard input, and kai gives a proposed command none",
            "save the YAML to a file and use kai apply FILE (it reviews it first)",
            verb=v.verb,
        )
    remote = [f for f in v.files if f.startswith(("http://", "https://"))]
    if remote:
        return _refuse(
            body,
            f"-f {remote[0]} fetches manifests from the network, unseen",
            "download it, read it, then kai apply the file",
            verb=v.verb,
        )
    if verb in ("cordon", "uncordon", "drain"):
        v.types, v.names = ["nodes"], [p for p in rest if "=" not in p]
    if verb == "taint":
        v.types, v.names = ["nodes"], rest[1:2] if rest else []
    if verb == "logs" and rest and "/" not in rest[0]:
        v.types, v.names = ["pods"], rest[:1]  # logs POD [CONTAINER]
    if "--raw" in flags:
        refused = _raw(v, flags["--raw"][-1], namespace)
        if refused is not None:
            return refused
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


# ---------- running ----------


@dataclass(slots=True)
class Ran:
    argv: list[str]
    code: int
    stdout: str
    stderr: str


@dataclass(slots=True)
class Kubectl:
    """The kubectl binary with kai's own --context / --kubeconfig / -n applied to every call."""

    binary: str
    context: str | None = None
    kubeconfig: str | None = None
    namespace: str | None = None
    timeout: float = 60.0
    ran: list[list[str]] = field(default_factory=list)

    @classmethod
    def find(
        cls,
        context: str | None = None,
        kubeconfig: str | None = None,
        namespace: str | None = None,
        timeout: float = 60.0,
    ) -> Kubectl:
        binary = os.environ.get("KAI_KUBECTL") or shutil.which("kubectl")
        if not binary:
            raise ClusterError(
                "kubectl is not on PATH: install it (https://kubernetes.io/docs/tasks/tools/) "
                "or set KAI_KUBECTL to its path"
            )
        return cls(binary, context, kubeconfig, namespace, timeout)

    def full(self, verdict_or_argv: Verdict | Sequence[str]) -> list[str]:
        """The argv kai runs: the command plus kai's own connection flags."""
        v = verdict_or_argv if isinstance(verdict_or_argv, Verdict) else None
        argv = list(v.argv) if v else list(verdict_or_argv)  # type: ignore[arg-type]
        if argv and argv[0] in PROGRAMS:
            argv = argv[1:]
        extra: list[str] = []
        # The command's own namespace flags, however written (a refused command was never
        # parsed into a Verdict's fields, so the words themselves decide).
        has_ns = (v is not None and (v.namespace is not None or v.all_namespaces)) or any(
            a in ("-n", "--namespace", "-A", "--all-namespaces")
            or a.startswith(("--namespace=", "--all-namespaces="))
            or (a.startswith("-n") and not a.startswith("--"))
            for a in argv
        )
        if self.namespace and not has_ns:
            extra += ["-n", self.namespace]
        if self.context:
            extra += ["--context", self.context]
        if self.kubeconfig:
            extra += ["--kubeconfig", self.kubeconfig]
        return [*argv, *extra]

    def configured(self) -> None:
        """Say in one line, as kai apply does, when kubectl would have no cluster to talk to
        (rather than kubectl's lines about localhost:8080 for every command)."""
        if self.kubeconfig or os.environ.get("KUBERNETES_SERVICE_HOST"):
            return  # an explicit file (kubectl reports its own errors), or in-cluster
        files = [f for f in os.environ.get("KUBECONFIG", "").split(os.pathsep) if f]
        if not files:
            files = [os.path.join(os.path.expanduser("~"), ".kube", "config")]
        if not any(os.path.isfile(f) for f in files):
            where = os.environ.get("KUBECONFIG") or "KUBECONFIG or ~/.kube/config"
            raise ClusterError(
                f"no cluster configured: {where}: no such file (give --kubeconfig or --context)"
            )

    def run(self, argv: Sequence[str]) -> Ran:
        """Run `kubectl ARGV` (argv as given; kai's flags already applied) without a shell."""
        if not self.ran:
            self.configured()
        self.ran.append(list(argv))
        try:
            p = subprocess.run(
                [self.binary, *argv],
                capture_output=True,
                text=True,
                timeout=self.timeout,
                stdin=subprocess.DEVNULL,
                shell=False,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Ran(list(argv), 124, "", f"timed out after {self.timeout:g} s")
        except OSError as e:
            raise ClusterError(f"cannot run {self.binary}: {e.strerror or e}") from None
        return Ran(list(argv), p.returncode, p.stdout, p.stderr)


def with_dry_run(v: Verdict) -> list[str]:
    """The command with --dry-run=server in place of any --dry-run the model wrote."""
    argv = [a for a in v.argv if not a.startswith("--dry-run")]
    return [*argv, "--dry-run=server"]


def preview(v: Verdict) -> list[str] | None:
    """A read-only `kubectl get ... -o name` listing what a destructive command would touch."""
    if v.verb == "drain" or (v.verb == "taint" and v.names):
        node = v.names[0] if v.names else ""
        return ["get", "pods", "-A", "--field-selector", f"spec.nodeName={node}", "-o", "name"]
    if deleted_namespaces(v):
        return list(NAMESPACED_KINDS)  # first what a namespace can hold, then namespace_contents
    argv = ["get"]
    if v.files:
        for f in v.files:
            argv += ["-f", f]
    elif v.types:
        argv.append(",".join(dict.fromkeys(v.types)))
        argv += v.names
    else:
        return None
    if v.flags.get("--selector"):
        argv += ["-l", v.flags["--selector"]]
    if "--field-selector" in v.flags:
        argv += ["--field-selector", v.flags["--field-selector"]]
    if v.namespace:
        argv += ["-n", v.namespace]
    if v.all_namespaces:
        argv.append("-A")
    return [*argv, "-o", "name"]


# Every kind of object a namespace can hold that this identity's server lists; `get all` would
# miss ConfigMaps, Secrets, ServiceAccounts, PVCs, Ingresses, NetworkPolicies, Roles, ...
NAMESPACED_KINDS = ["api-resources", "--verbs=list", "--namespaced", "-o", "name"]
# Deleted with the namespace but not listed: events are a log, not objects anyone keeps, and the
# metrics API serves measurements of the pods already listed.
_NOT_LISTED = {"events", "events.events.k8s.io"}


def deleted_namespaces(v: Verdict) -> list[str]:
    """The namespaces a `kubectl delete` removes (with everything in them)."""
    if v.verb != "delete" or not v.names or not any(_is_namespace_type(t) for t in v.types):
        return []
    return list(v.names)


def namespace_contents(namespace: str, kinds_listing: str) -> list[str]:
    """`kubectl get KIND,KIND,... -n NS -o name` over every namespaced kind (from NAMESPACED_KINDS'
    output): names only, so a Secret's values are never read."""
    kinds = [
        k.strip()
        for k in kinds_listing.splitlines()
        if k.strip() and k.strip() not in _NOT_LISTED and not k.strip().endswith(".metrics.k8s.io")
    ]
    return ["get", ",".join(dict.fromkeys(kinds)), "-n", namespace, "-o", "name"]


def target_word(v: Verdict, namespace: str | None) -> str:
    """What the person must type to confirm a destructive command."""
    if v.all_namespaces:
        return "all-namespaces"
    if len(v.names) == 1:
        return v.names[0]
    return v.namespace or namespace or "default"


# The API verbs (and subresources) a write needs, for the permission preflight.
def needed_permissions(v: Verdict) -> list[tuple[str, str, str]]:
    """(API verb, resource, subresource) pairs `kubectl auth can-i` should confirm first."""
    types = list(dict.fromkeys(t for t in v.types)) or []
    if v.verb == "expose":
        return [("create", "services", "")]
    if v.verb == "autoscale":
        return [("create", "horizontalpodautoscalers.autoscaling", "")]
    if v.verb == "run":
        return [("create", "pods", "")]
    if v.verb == "create":
        return [("create", t, "") for t in types] if types else []
    if v.verb in ("apply", "replace", "apply set-last-applied"):
        return [(verb, t, "") for t in types for verb in ("create", "patch")]
    if v.verb == "scale":
        return [("patch", t, "scale") for t in types]
    if v.verb == "delete":
        return [("delete", t, "") for t in types]
    if v.verb == "drain":
        return [("patch", "nodes", ""), ("create", "pods", "eviction")]
    if v.verb in ("cordon", "uncordon", "taint"):
        return [("patch", "nodes", "")]
    return [("patch", t, "") for t in types]


def can_i_argv(verb: str, resource: str, subresource: str, v: Verdict) -> list[str]:
    argv = ["auth", "can-i", verb, resource]
    if subresource:
        argv.append(f"--subresource={subresource}")
    if v.all_namespaces:
        argv.append("-A")
    elif v.namespace:
        argv += ["-n", v.namespace]
    return argv

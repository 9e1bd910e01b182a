"""`kai critique`: the learner reviews a manifest first, then kai compares with its evaluator.

Answers are free text, one problem per line. Offline, each answer is matched to a finding by
vocabulary: words from the rule's title, category and concept, a small synonym table ("limits",
"cpu" and "memory" all mean resources), weighted by how rare a word is across the rule catalog.
Each answer matches at most one finding and each finding at most one answer; an answer naming an
object, kind or container prefers that one. With a model, the model grades more generously.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from kai.errors import ModelError
from kai.learn.explain import FindingNote, finding_data, note_for
from kai.models import Finding, Manifest, Report, Rule, Severity


def stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


# Surface forms (words or phrases, as a learner or a rule title writes them) of one idea.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "resources": (
        "resources",
        "resource limits",
        "resource requests",
        "limits",
        "requests",
        "cpu",
        "memory",
        "mem",
        "ram",
        "quota",
        "oom",
        "cpu limit",
        "cpu request",
        "memory limit",
        "memory request",
        "qos",
    ),
    "root": (
        "root",
        "run as non root",
        "runs as root",
        "run as root",
        "non root",
        "nonroot",
        "uid",
        "run as user",
        "user id",
        "superuser",
    ),
    "probe": (
        "liveness",
        "liveness probe",
        "ready",
        "readiness check",
        "startup probe",
        "probe",
        "readiness",
        "readiness probe",
        "health check",
        "healthcheck",
        "health",
        "healthz",
        "readyz",
    ),
    # what a liveness probe is for: restarting a process that hangs
    "restart when hung": (
        "liveness probe",
        "hung",
        "hang",
        "hangs",
        "deadlock",
        "deadlocked",
        "stuck",
        "restarted",
        "restart",
        "restarts",
        "alive",
    ),
    "image tag": (
        "latest",
        "tag",
        "tagged",
        "untagged",
        "pin",
        "pinned",
        "unpinned",
        "digest",
        "sha256",
        "mutable tag",
        "image tag",
    ),
    "network policy": (
        "any pod can talk",
        "any pod can reach",
        "any pod can connect",
        "lateral movement",
        "open network",
        "ingress traffic",
        "network policy",
        "netpol",
        "firewall",
        "network isolation",
        "isolation",
        "isolated",
        "default deny",
        "segmentation",
    ),
    "secret": (
        "secret",
        "password",
        "api key",
        "apikey",
        "key",
        "in clear",
        "cleartext",
        "clear text",
        "credential",
        "plaintext",
        "plain text",
        "hardcoded",
        "hard coded",
        "literal",
        "secret key ref",
        "leaked",
        "exposed key",
    ),
    "tls": (
        "encrypted",
        "in transit",
        "http only",
        "sniff",
        "tls",
        "https",
        "ssl",
        "certificate",
        "cert",
        "encryption",
        "unencrypted",
        "plain http",
    ),
    "disruption budget": (
        "node upgrade",
        "maintenance",
        "take every pod down",
        "voluntary disruption",
        "pdb",
        "pod disruption budget",
        "disruption budget",
        "disruption",
        "drain",
        "eviction",
    ),
    "spread": (
        "spread",
        "topology spread",
        "topology spread constraint",
        "anti affinity",
        "antiaffinity",
        "pod anti affinity",
        "same node",
        "single node",
        "one node",
    ),
    "privilege escalation": (
        "more privileges",
        "gain privileges",
        "elevate",
        "elevated",
        "privilege escalation",
        "allow privilege escalation",
        "escalation",
        "escalate",
        "setuid",
        "sudo",
        "no new privs",
    ),
    "capabilities": (
        "capability",
        "capabilities",
        "cap",
        "net raw",
        "drop all",
        "linux capabilities",
    ),
    "read-only filesystem": (
        "write to disk",
        "write to its own disk",
        "writes to disk",
        "modify its files",
        "tamper",
        "read only",
        "readonly",
        "read only root filesystem",
        "root filesystem",
        "root fs",
        "writable",
        "writable root",
        "filesystem",
    ),
    "seccomp": ("seccomp", "runtime default", "syscall", "system call", "seccomp profile"),
    "service account token": (
        "service account token",
        "automount service account token",
        "automount",
        "sa token",
        "token mount",
        "mounted token",
        "api token",
    ),
    "service account": ("service account", "default service account", "default account", "sa"),
    "pull policy": ("image pull policy", "pull policy", "pullpolicy"),
    "labels": ("label", "labels", "recommended labels", "app kubernetes io"),
    "load balancer": (
        "load balancer",
        "lb",
        "public ip",
        "external ip",
        "exposed directly",
        "public",
        "publicly",
        "internet facing",
        "open to the internet",
        "reachable from outside",
    ),
    "node port": ("node port", "nodeport"),
    "namespace": ("namespace", "default namespace"),
    "autoscaling": ("hpa", "autoscaler", "autoscaling", "horizontal pod autoscaler", "autoscale"),
    "privileged": ("privileged", "privileged mode", "privileged container"),
    "rbac": ("rbac", "role", "cluster role", "permission", "wildcard", "cluster admin"),
    "schema": ("typo", "unknown field", "misspelled", "schema", "wrong type", "invalid field"),
}
# Words that say nothing about which problem is meant.
_STOP_TEXT = """a an the and or not no non is are be been was it its this that these those there
has have had does do did set setting missing lack lacking use using used should must any all to of
in on for with without by as at from but so if than then get one every each other same more less
very need needed way like also only too can may could would will which what who when where why how
i we you my our your they them he she his her into out up down over under about after before just
none nothing container pod object workload kubernetes k8s yaml manifest field value spec long
running run t s isn doesn don bad wrong problem issue risk risky unsafe insecure good add added
adding define defined specify specified make made"""
STOPWORDS = frozenset(stem(w) for w in _STOP_TEXT.split())
MATCH_THRESHOLD = 2.0  # one idea from the synonym table, or a word used by a few rules at most
RARE_WORD = 4.0  # without a synonym-table idea, only a word nearly unique to one rule will do
MENTION_BONUS = 0.5  # prefers the named object or container; never creates a match on its own
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def words(text: str) -> list[str]:
    """Lower-case stems, camelCase split: runAsNonRoot -> run as non root."""
    return [stem(w) for w in re.findall(r"[a-z0-9]+", _CAMEL.sub(" ", text).lower())]


@cache
def _phrases() -> tuple[dict[tuple[str, ...], tuple[str, ...]], int]:
    """Each surface form's word stems -> the ideas it names (a form may name several: liveness is a
    probe and the idea of restarting what hangs)."""
    table: dict[tuple[str, ...], tuple[str, ...]] = {}
    for group, forms in SYNONYMS.items():
        for form in forms:
            key = tuple(words(form))
            if group not in table.get(key, ()):
                table[key] = (*table.get(key, ()), group)
    return table, max(len(k) for k in table)


def features(text: str) -> set[str]:
    """What a text is about: synonym groups ("=resources"), phrases and leftover word stems."""
    table, longest = _phrases()
    tokens = words(text)
    out: set[str] = set()
    i = 0
    while i < len(tokens):
        for n in range(min(longest, len(tokens) - i), 0, -1):
            key = tuple(tokens[i : i + n])
            groups = table.get(key)
            if groups is not None:
                out.update("=" + group for group in groups)
                out.add("_".join(key))
                if n > 1:  # the words of a phrase still count, but not as their own group
                    out.update(t for t in key if t not in STOPWORDS)
                i += n
                break
        else:
            if tokens[i] not in STOPWORDS and not tokens[i].isdigit():
                out.add(tokens[i])
            i += 1
    return out


def rule_features(rule: Rule) -> set[str]:
    text = " ".join([rule.title, rule.category, rule.concept or ""])
    return features(text) | {"#" + rule.id.lower()}


def _weights(rules: Sequence[Rule]) -> dict[str, float]:
    """Inverse document frequency of every feature across the rule catalog."""
    counts: dict[str, int] = {}
    for r in rules:
        for feat in rule_features(r):
            counts[feat] = counts.get(feat, 0) + 1
    n = max(len(rules), 1)
    return {feat: math.log(1 + n / c) for feat, c in counts.items()}


# ---------- the result ----------


@dataclass(slots=True)
class Match:
    answer: int  # 1-based, in the order given
    text: str
    finding: FindingNote
    reason: str
    score: float | None = None


@dataclass(slots=True)
class Critique:
    yaml: str
    source: str
    answers: list[str]
    findings: list[FindingNote] = field(default_factory=list)
    matched: list[Match] = field(default_factory=list)
    repeated: list[Match] = field(default_factory=list)  # a problem an earlier answer found
    unmatched: list[tuple[int, str]] = field(default_factory=list)
    missed: list[FindingNote] = field(default_factory=list)
    graded_by: str = "keywords"
    feedback: str | None = None
    draft_by: str | None = None
    model: dict[str, Any] | None = None

    @property
    def percent(self) -> float:
        total = len(self.findings)
        return round(100.0 * len(self.matched) / total, 1) if total else 100.0


# ---------- offline grading ----------


def _container_name(finding: Finding, manifests: Sequence[Manifest]) -> str | None:
    m = re.search(r"(containers|initContainers|ephemeralContainers)\[(\d+)\]", finding.path or "")
    if not m:
        return None
    for man in manifests:
        if man.ref is finding.object or man.ref == finding.object:
            node: Any = man.obj
            for part in re.findall(r"[^.\[\]]+", (finding.path or "")[: m.end()]):
                if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                    node = node[int(part)]
                elif isinstance(node, dict):
                    node = node.get(part)
                else:
                    return None
            return str(node.get("name")) if isinstance(node, dict) and node.get("name") else None
    return None


def _mentions(answer: str, names: Iterable[str]) -> bool:
    low = answer.lower()
    return any(
        n and re.search(rf"(?<![a-z0-9-]){re.escape(n.lower())}(?![a-z0-9-])", low) for n in names
    )


def _kind_words(kind: str) -> list[str]:
    spaced = _CAMEL.sub(" ", kind).lower()
    return [kind.lower(), spaced]


def grade_keywords(
    answers: Sequence[str],
    findings: Sequence[FindingNote],
    rules: Sequence[Rule],
    manifests: Sequence[Manifest] = (),
) -> tuple[list[Match], list[Match], list[tuple[int, str]]]:
    """(matched, repeated, unmatched): a greedy one-to-one assignment, best scores first."""
    weights = _weights(rules)
    rule_feats = {r.id: rule_features(r) for r in rules}
    candidates: list[tuple[float, int, int, str]] = []
    best_for: dict[int, list[tuple[float, int]]] = {}
    for a, text in enumerate(answers):
        feats = features(text)
        for i, fn in enumerate(findings):
            rule_id = fn.finding.rule
            common = feats & rule_feats.get(rule_id, set())
            if re.search(rf"(?<![\w-]){re.escape(rule_id)}(?![\w-])", text, re.I):
                common.add("#" + rule_id.lower())  # the rule id written out
            score = sum(weights.get(c, 0.0) for c in common)
            idea = any(c[0] in "=#" for c in common)
            if score < MATCH_THRESHOLD or (not idea and score < RARE_WORD):
                continue
            f = fn.finding
            names = [f.object.name, *_kind_words(f.object.kind)]
            container = _container_name(f, manifests)
            if container:
                names.append(container)
            if _mentions(text, names):
                score += MENTION_BONUS
            ideas = sorted(c[1:].replace("_", " ") for c in common if c.startswith("="))
            reason = ", ".join(ideas) or ", ".join(sorted(c.lstrip("#") for c in common))
            candidates.append((score, a, i, reason))
            best_for.setdefault(a, []).append((score, i))
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    taken_answers: set[int] = set()
    taken_findings: dict[int, int] = {}
    matched: list[Match] = []
    for score, a, i, reason in candidates:
        if a in taken_answers or i in taken_findings:
            continue
        taken_answers.add(a)
        taken_findings[i] = a
        matched.append(
            Match(a + 1, answers[a], findings[i], f"keywords: {reason}", round(score, 2))
        )
    matched.sort(key=lambda m: m.answer)
    repeated: list[Match] = []
    unmatched: list[tuple[int, str]] = []
    for a, text in enumerate(answers):
        if a in taken_answers:
            continue
        options = sorted(best_for.get(a, []), key=lambda o: (-o[0], o[1]))
        if options:
            score, i = options[0]
            repeated.append(
                Match(
                    a + 1,
                    text,
                    findings[i],
                    f"same problem as answer {taken_findings[i] + 1}",
                    round(score, 2),
                )
            )
        else:
            unmatched.append((a + 1, text))
    return matched, repeated, unmatched


# ---------- model grading ----------

GRADE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "matches": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "answer": {"type": "integer"},
                    "finding": {"type": "integer"},
                    "reason": {"type": "string"},
                },
                "required": ["answer", "finding", "reason"],
            },
        },
        "feedback": {"type": "string"},
    },
    "required": ["matches", "feedback"],
}


def grading_messages(
    manifests: Sequence[Manifest], findings: Sequence[FindingNote], answers: Sequence[str]
) -> list[dict[str, str]]:
    """The critique prompt: the objects (redacted), numbered findings and numbered answers."""
    from kai.manifests import dump_yaml
    from kai.model.prompts import render
    from kai.model.redact import redact_object

    lines = []
    for n, fn in enumerate(findings, 1):
        f = fn.finding
        where = f" at {f.path}" if f.path else ""
        lines.append(f"{n}. {f.rule} ({fn.title}) {f.object.display()}{where}: {f.message}")
    return render(
        "critique",
        manifests=dump_yaml(redact_object(m.obj) for m in manifests).strip(),
        findings="\n".join(lines) or "(none)",
        answers="\n".join(f"{n}. {a}" for n, a in enumerate(answers, 1)) or "(none)",
    )


def _json_object(text: str) -> dict[str, Any]:
    from kai.model.plan import PlanError, first_json_object

    try:
        value: dict[str, Any] = first_json_object(text)
    except PlanError:
        raise ModelError(
            "the model's grading could not be read: no JSON object in its answer"
        ) from None
    return value


def parse_grading(
    text: str, answers: Sequence[str], findings: Sequence[FindingNote]
) -> tuple[list[Match], list[tuple[int, str]], str | None]:
    """(matched, unmatched, feedback) from the model's JSON; bad or duplicate pairs are dropped."""
    data = _json_object(text)
    raw = data.get("matches")
    if not isinstance(raw, list):
        raise ModelError('the model\'s grading could not be read: no "matches" list')
    matched: list[Match] = []
    used_answers: set[int] = set()
    used_findings: set[int] = set()
    for item in raw:
        if not isinstance(item, dict):
            continue
        try:
            a, i = int(item.get("answer")), int(item.get("finding"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if not (1 <= a <= len(answers) and 1 <= i <= len(findings)):
            continue
        if a in used_answers or i in used_findings:
            continue
        used_answers.add(a)
        used_findings.add(i)
        matched.append(Match(a, answers[a - 1], findings[i - 1], str(item.get("reason") or "")))
    matched.sort(key=lambda m: m.answer)
    unmatched = [(a, t) for a, t in enumerate(answers, 1) if a not in used_answers]
    feedback = data.get("feedback")
    return matched, unmatched, str(feedback).strip() if feedback else None


# ---------- the whole exercise ----------


def findings_to_find(
    report: Report, rules: Sequence[Rule], min_severity: Severity = Severity.INFO
) -> list[FindingNote]:
    by_id = {r.id: r for r in rules}
    return [note_for(f, by_id) for f in report.active() if f.severity.rank >= min_severity.rank]


def critique(
    yaml_text: str,
    source: str,
    manifests: Sequence[Manifest],
    report: Report,
    rules: Sequence[Rule],
    answers: Sequence[str],
    min_severity: Severity = Severity.INFO,
    llm: Any = None,
) -> Critique:
    """Compare the learner's answers with the evaluator's findings (by the model when given)."""
    findings = findings_to_find(report, rules, min_severity)
    result = Critique(yaml_text, source, list(answers), findings)
    if llm is not None:
        completion = llm.complete(grading_messages(manifests, findings, answers), GRADE_SCHEMA)
        result.matched, result.unmatched, result.feedback = parse_grading(
            completion.text, answers, findings
        )
        result.graded_by = f"model {llm.settings.model}"
    else:
        result.matched, result.repeated, result.unmatched = grade_keywords(
            answers, findings, rules, manifests
        )
    found = {id(m.finding) for m in result.matched}
    result.missed = [fn for fn in findings if id(fn) not in found]
    return result


def read_answers(lines: Iterable[str]) -> list[str]:
    """One answer per line; blank lines and # comments are skipped."""
    out = []
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            out.append(text[:500])
    return out


def ask_answers(console: Any, stream: Any) -> list[str]:
    """Free text on a terminal: one problem per line, an empty line (or end of input) ends."""
    console.print(
        "[bold]What problems do you see?[/] One per line; an empty line when you are done."
    )
    out: list[str] = []
    while True:
        console.print("> ", end="")
        line = stream.readline()
        if not line or not line.strip():
            break
        out.append(line.strip()[:500])
    return out


# ---------- rendering ----------


def critique_data(result: Critique) -> dict[str, Any]:
    """The `kai critique -o json` shape."""
    from kai.render import SCHEMA_VERSION

    return {
        "version": SCHEMA_VERSION,
        "source": result.source,
        "graded_by": result.graded_by,
        "draft_by": result.draft_by,
        "score": {
            "found": len(result.matched),
            "total": len(result.findings),
            "percent": result.percent,
        },
        "answers": result.answers,
        "matched": [_match_data(m) for m in result.matched],
        "repeated": [_match_data(m) for m in result.repeated],
        "unmatched": [{"answer": a, "text": t} for a, t in result.unmatched],
        "missed": [finding_data(fn) for fn in result.missed],
        "feedback": result.feedback,
        "model": result.model,
    }


def _match_data(m: Match) -> dict[str, Any]:
    return {
        "answer": m.answer,
        "text": m.text,
        "finding": finding_data(m.finding),
        "reason": m.reason,
        "score": m.score,
    }


def print_yaml(console: Any, text: str) -> None:
    from kai.render import code

    console.print(code(console, text, "yaml", line_numbers=True))


def print_critique(console: Any, result: Critique) -> None:
    from rich.markup import escape

    from kai.render import _sev

    def where(fn: FindingNote) -> str:
        f = fn.finding
        return escape(f.object.display() + (f" {f.path}" if f.path else ""))

    console.print(f"\n[bold green]Found ({len(result.matched)})[/]")
    for m in result.matched:
        f = m.finding.finding
        console.print(
            f"  ✓ {m.answer}. {escape(m.text)}\n    → {_sev(f.severity)} {f.rule} "
            f"{escape(f.message)} [dim]({where(m.finding)}; {escape(m.reason)})[/]"
        )
    if result.repeated:
        console.print(f"\n[bold]Already counted ({len(result.repeated)})[/]")
        for m in result.repeated:
            console.print(
                f"  = {m.answer}. {escape(m.text)} [dim]({escape(m.reason)}: "
                f"{m.finding.finding.rule})[/]"
            )
    console.print(f"\n[bold red]Missed ({len(result.missed)})[/]")
    for fn in result.missed:
        f = fn.finding
        console.print(
            f"  ✗ {_sev(f.severity)} [bold]{f.rule}[/] {escape(fn.title or f.message)} "
            f"[dim]({where(fn)})[/]"
        )
        console.print(f"    {escape(f.message)}")
        if fn.rationale:
            console.print(f"    [bold]why[/] {escape(' '.join(fn.rationale.split()))}")
        if fn.remediation:
            console.print(f"    [bold]fix[/] {escape(' '.join(fn.remediation.split()))}")
        if fn.concept:
            console.print(f"    [bold]study[/] {escape(fn.concept)}")
        if fn.docs:
            console.print(f"    [bold]docs[/] [link={fn.docs}]{escape(fn.docs)}[/link]")
    console.print(f"\n[bold yellow]Not among kai's findings ({len(result.unmatched)})[/]")
    for a, text in result.unmatched:
        console.print(f"  ? {a}. {escape(text)}")
    if result.unmatched:
        console.print(
            "  [dim]These may still be fair concerns: kai's rules do not check them (see "
            "`kai policies list`).[/]"
        )
    if result.feedback:
        console.print(f"\n[bold]Feedback[/] {escape(result.feedback)}")
    console.print(
        f"\n[bold]Score[/] {len(result.matched)} / {len(result.findings)} "
        f"({result.percent:g}%) · graded by {escape(result.graded_by)}"
        + (f" · draft by {escape(result.draft_by)}" if result.draft_by else "")
    )


def generate_draft(
    request: str, rules: Sequence[Rule], config: Any, answers: dict[str, Any], llm: Any
) -> str:
    """The model's first draft for a request, as YAML, before any of kai's fixes."""
    from kai.errors import InputError
    from kai.generate import _ask, first_messages
    from kai.manifests import dump_yaml

    plan, _ = _ask(llm, first_messages(request, rules, config, answers))
    if not plan.objects:
        asked = "; ".join(plan.questions) or "it returned no objects"
        raise InputError(
            f"the model needs answers before it can draft: {asked} (answer with --set key=value)"
        )
    return dump_yaml(plan.objects)


# ---------- `kai critique`'s stages ----------


@dataclass(slots=True)
class Exercise:
    """What the learner reviews: the YAML, where it came from, its objects and kai's findings."""

    text: str
    source: str
    manifests: list[Manifest]
    report: Report
    rules: list[Rule]
    llm: Any = None  # the model that drafted it or grades it, if any
    drafted: bool = False


def given_answers(
    path: str | None, request: str | None, answers: str | None, stdin: Any
) -> list[str] | None:
    """--answers FILE (or - for stdin), one problem per line; None when the learner is asked.
    Checks first that the inputs fit together: one manifest (`path`) or a `request`, and a way
    to get the answers (asked on a terminal, or from a file)."""
    from pathlib import Path

    from kai.errors import InputError
    from kai.manifests import read_file

    if (path is None) == (request is None):
        raise InputError("give one manifest file (or - for stdin), or --generate REQUEST")
    if answers is None and (path == "-" or not stdin.isatty()):
        raise InputError(
            "no terminal to ask for your answers on: pass --answers FILE (one problem per line)"
        )
    if answers == "-" and path == "-":
        raise InputError("standard input cannot hold both the manifest and --answers")
    if answers is None:
        return None
    lines = stdin.read() if answers == "-" else read_file(Path(answers))
    return read_answers(lines.splitlines())


def exercise(
    path: str | None,
    request: str | None,
    given: Sequence[str],
    policies: Sequence[str],
    namespace: str | None,
    model: str | None,
    api_base: str | None,
    cache: bool,
    timeout: float,
    offline: bool,
    stdin: Any,
    waiting: Callable[[str], AbstractContextManager[Any]],
) -> Exercise:
    """The manifest to critique: the file (or stdin) at `path`, or the model's first draft for
    `request` (made while `waiting` shows it), reviewed by kai. A model client is made with
    --generate, and for grading when a model is named (--model or KAI_MODEL) and not `offline`."""
    import os
    from pathlib import Path

    from kai.config import load_config
    from kai.errors import InputError
    from kai.generate import parse_answers
    from kai.inputs import load_paths
    from kai.learn.explain import evaluate_all, make_llm
    from kai.manifests import load_text, read_file
    from kai.pipeline import rules_for

    config = load_config()
    rules = rules_for(config, policies=list(policies))
    ns = namespace or config.namespace or "default"
    client = None
    if request is not None or (not offline and (model or os.environ.get("KAI_MODEL"))):
        client = make_llm(model, api_base, cache, timeout)
    if request is not None:
        assert client is not None
        with waiting("asking the model for a first draft..."):
            text = generate_draft(request, rules, config, parse_answers(given), client)
        manifests, notes = load_text(text, "draft.yaml")
        source = "draft.yaml"
    else:
        assert path is not None
        if path != "-" and Path(path).is_dir():
            raise InputError(f"{path}: a directory; critique one manifest file at a time")
        text = stdin.read() if path == "-" else read_file(Path(path))
        manifests, notes = load_paths([path], stdin_text=text)
        source = path
    if not manifests:
        raise InputError(f"{source}: no Kubernetes objects to critique")
    report = evaluate_all(manifests, notes, rules, ns)
    return Exercise(text, source, manifests, report, rules, client, request is not None)


def grade(
    ex: Exercise,
    answers: Sequence[str],
    min_severity: Severity,
    offline: bool,
    waiting: Callable[[str], AbstractContextManager[Any]],
) -> Critique:
    """The learner's answers against kai's findings: graded by the model (while `waiting` shows
    it) unless `offline` or there is none, else by keywords; with the model's usage."""
    from contextlib import nullcontext

    from kai.learn.explain import usage_data

    grader = None if offline else ex.llm
    with waiting("asking the model to grade...") if grader is not None else nullcontext():
        result = critique(
            ex.text, ex.source, ex.manifests, ex.report, ex.rules, answers, min_severity, grader
        )
    if ex.llm is not None:
        result.draft_by = ex.llm.settings.model if ex.drafted else None
        result.model = usage_data(ex.llm)
    return result

"""Rendering values for people (rich) and machines (JSON, YAML, SARIF).

The machine shapes are a contract: see docs/json-output.md before changing them.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from kai import __version__
from kai.models import Finding, Note, ObjectRef, Report, Rule, Severity, Summary

if TYPE_CHECKING:
    from rich.console import Console

SCHEMA_VERSION = 1
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


# ---------- machine shapes ----------


def report_data(report: Report, fail_on: Severity, lazy: bool = False) -> dict[str, Any]:
    """The documented `kai review -o json|yaml` shape.

    `lazy`: the findings and notes as Lazy lists, built one at a time while write_json writes
    them (a 50,000-object review has 160,000 findings: never all as dicts and one string)."""
    findings: Any = _streamed(report.findings) if lazy else map(_finding_data, report.findings)
    notes: Any = (_note_data(n) for n in report.notes)
    return {
        "version": SCHEMA_VERSION,
        "summary": _summary_data(report.summary(fail_on)),
        "findings": Lazy(findings) if lazy else list(findings),
        "notes": Lazy(notes) if lazy else list(notes),
    }


def _summary_data(s: Summary) -> dict[str, Any]:
    return {**asdict(s), "fail_on": s.fail_on.value}


def _ref_data(ref: ObjectRef) -> dict[str, Any]:
    return {
        "apiVersion": ref.apiVersion,
        "kind": ref.kind,
        "namespace": ref.namespace,
        "name": ref.name,
    }


def _streamed(findings: Iterable[Finding]) -> Iterator[dict[str, Any]]:
    """_finding_data of each, as written once by write_json: the findings of one object share
    its "object" dict (16 findings per object: 15 dicts fewer to build)."""
    refs: dict[int, dict[str, Any]] = {}  # by id(): every ObjectRef lives as long as the report
    for f in findings:
        ref = refs.get(id(f.object))
        if ref is None:
            ref = refs[id(f.object)] = _ref_data(f.object)
        yield _finding_data(f, ref)


def _finding_data(f: Finding, ref: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "severity": _SEVERITY_TEXT[f.severity],
        "message": f.message,
        "object": _ref_data(f.object) if ref is None else ref,
        "file": f.file,
        "line": f.line,
        "path": f.path,
        "suppressed": f.suppressed,
        "suppression_reason": f.suppression_reason,
        "unknown": f.unknown,
    }


def _note_data(n: Note) -> dict[str, Any]:
    data: dict[str, Any] = {"file": n.file, "line": n.line, "message": n.message}
    if n.object is not None:
        data["object"] = _ref_data(n.object)
    return data


def rule_data(rule: Rule) -> dict[str, Any]:
    """The documented `kai policies list -o json` shape of one rule."""
    from kai.policy.fix import fixable

    check: dict[str, Any]
    if rule.cel is not None:
        check = {"type": "cel", "scope": rule.cel.scope, "expression": rule.cel.expression}
    elif rule.schema is not None:
        check = {"type": "schema", "name": rule.schema}
    elif rule.server is not None:
        check = {"type": "server", "name": rule.server}
    else:
        check = {"type": "python", "name": rule.python}
    return {
        "id": rule.id,
        "title": rule.title,
        "severity": rule.severity.value,
        "category": rule.category,
        "enabled": rule.enabled,
        "concept": rule.concept,
        "rationale": rule.rationale.strip(),
        "remediation": rule.remediation.strip(),
        "example": rule.example,
        "references": asdict(rule.references),
        "equivalents": {tool: list(ids) for tool, ids in rule.equivalents.items()},
        "kinds": rule.match.kinds,
        "check": check,
        "fixable": fixable(rule.id),
        "source": rule.source,
    }


# ---------- terminal safety ----------

# What a terminal may act on: C0 controls but newline and tab, DEL, C1 controls (U+009B is CSI),
# and the bidirectional overrides, isolates and marks that reorder what a line shows.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
# The same characters minus the C0 ones JSON always escapes: escaped in JSON and YAML text too.
_UNSAFE_IN_TEXT = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _visible(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def sanitize(text: str) -> str:
    """`text` with every control character shown as an escape (\\x1b), newlines and tabs kept."""
    if text.isascii() and text.isprintable():  # (the common case, without the regex)
        return text
    return _UNSAFE.sub(_visible, text) if _UNSAFE.search(text) else text


def console(stderr: bool = False, **options: Any) -> Console:
    """The one Console kai prints with: every character it writes goes through sanitize().

    Text from a manifest, a cluster or a model (names, images, reasons, messages, diffs) can carry
    escape sequences (kubectl's CVE-2021-25743): they are shown, never sent to the terminal.
    Styles kai adds itself are rendered by rich after this, so colours still work.
    """
    from rich.console import Console as RichConsole

    class SafeConsole(RichConsole):
        def _render_buffer(self, buffer: Any) -> str:
            from rich.segment import Segment

            return super()._render_buffer(
                Segment(sanitize(seg.text), seg.style, seg.control) if not seg.control else seg
                for seg in buffer
            )

    return SafeConsole(stderr=stderr, **options)


def to_json(data: Any, pretty: bool | None = None) -> str:
    """Indented on a terminal; compact when piped (the C encoder is ~5x faster on big reports).

    JSON escapes C0 controls itself; C1 controls and bidi overrides are escaped here (\\u009b),
    which is the same JSON value.
    """
    if pretty is None:
        pretty = sys.stdout.isatty()
    if pretty:
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    else:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"
    if _UNSAFE_IN_TEXT.search(text):
        text = _UNSAFE_IN_TEXT.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


class Lazy:
    """A JSON array whose items are made while write_json writes it (each item once)."""

    __slots__ = ("items",)

    def __init__(self, items: Iterable[Any]) -> None:
        self.items = items


_BATCH = 1000  # items encoded by one json.dumps call: the C encoder, without one huge string


def _has_lazy(data: Any) -> bool:
    if isinstance(data, Lazy):
        return True
    if isinstance(data, dict):
        return any(_has_lazy(v) for v in data.values())
    if isinstance(data, list):
        return any(_has_lazy(v) for v in data)
    return False


def _json_chunks(data: Any, pretty: bool, level: int) -> Iterator[str]:
    """`data` as json.dumps writes it (indent 2, or compact separators), in pieces; a Lazy
    is written as the list of its items, a batch of them at a time."""
    pad = "\n" + "  " * level if pretty else ""
    inner = "\n" + "  " * (level + 1) if pretty else ""

    def dumps(value: Any) -> str:
        if not pretty:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        # JSON text has no raw newline inside a string: every newline is indentation
        return json.dumps(value, indent=2, ensure_ascii=False).replace("\n", pad)

    if not _has_lazy(data):
        yield dumps(data)
    elif isinstance(data, Lazy):
        it = iter(data.items)
        wrote = False
        while batch := list(itertools.islice(it, _BATCH)):
            text = dumps(batch)  # "[" + pad... + "]": its items, at this level
            body = text[1 + len(inner) : -1 - len(pad)] if pretty else text[1:-1]
            yield ("," + inner if wrote else "[" + inner) + body
            wrote = True
        yield pad + "]" if wrote else "[]"
    elif isinstance(data, dict):
        sep = ": " if pretty else ":"
        for i, (key, value) in enumerate(data.items()):
            yield ("{" if i == 0 else ",") + inner + json.dumps(key, ensure_ascii=False) + sep
            yield from _json_chunks(value, pretty, level + 1)
        yield pad + "}"
    else:
        for i, value in enumerate(data):
            yield ("[" if i == 0 else ",") + inner
            yield from _json_chunks(value, pretty, level + 1)
        yield pad + "]"


def write_json(data: Any, write: Callable[[str], Any], pretty: bool | None = None) -> None:
    """What to_json(data) returns, written piece by piece (Lazy lists are made as they are written)."""
    if pretty is None:
        pretty = sys.stdout.isatty()
    for chunk in _json_chunks(data, pretty, 0):
        if not chunk.isascii() and _UNSAFE_IN_TEXT.search(chunk):  # (all unsafe ones are >= 0x7f)
            chunk = _UNSAFE_IN_TEXT.sub(lambda m: f"\\u{ord(m.group()):04x}", chunk)
        write(chunk)
    write("\n")


def to_yaml(data: Any) -> str:
    """YAML for people and machines: PyYAML escapes C0 and C1 controls in double quotes; strings
    with a bidi override are double-quoted too, and the override escaped (\\u202e)."""
    from kai.yamlio import dump

    if not _UNSAFE_IN_TEXT.search(json.dumps(data, ensure_ascii=False, default=str)):
        return dump(data)
    import yaml

    base: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    class Dumper(base):  # type: ignore[misc]
        pass

    Dumper.add_representer(
        _Quoted, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", str(v), style='"')
    )
    text = yaml.dump(_quote_unsafe(data), Dumper=Dumper, sort_keys=False, allow_unicode=True)
    return _UNSAFE_IN_TEXT.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class _Quoted(str):
    """A string PyYAML must write double-quoted (so that \\u escapes inside it mean what they say)."""


def _quote_unsafe(data: Any) -> Any:
    if isinstance(data, str):
        return _Quoted(data) if _UNSAFE_IN_TEXT.search(data) else data
    if isinstance(data, dict):
        return {_quote_unsafe(k): _quote_unsafe(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_quote_unsafe(v) for v in data]
    return data


def _help_markdown(rule: Rule) -> str:
    parts = [
        f"**{rule.title}**",
        "",
        rule.rationale.strip(),
        "",
        "**How to fix:** " + rule.remediation.strip(),
    ]
    if rule.example:
        parts += ["", "```yaml", rule.example.rstrip(), "```"]
    if rule.references.docs:
        parts += ["", f"[Kubernetes documentation]({rule.references.docs})"]
    return "\n".join(parts)


def sarif(report: Report, rules: Sequence[Rule], lazy: bool = False) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run; suppressed findings carry an inSource suppression.

    `lazy`: its results as a Lazy list, for write_json (see report_data)."""
    used = {f.rule for f in report.findings}
    driver_rules = [r for r in rules if r.id in used]
    index = {r.id: i for i, r in enumerate(driver_rules)}
    uris: dict[str, str] = {}  # one file's URI, worked out once (its findings are many)
    results: Any = (_sarif_result(f, index, uris) for f in report.findings)
    return _sarif_log(driver_rules, Lazy(results) if lazy else list(results))


def _sarif_result(f: Finding, index: dict[str, int], uris: dict[str, str]) -> dict[str, Any]:
    uri = uris.get(f.file)
    if uri is None:
        uri = uris[f.file] = _uri(f.file)
    shown = f.object.display()
    result: dict[str, Any] = {
        "ruleId": f.rule,
        "level": SARIF_LEVEL[f.severity],
        "message": {"text": f"{shown}: {f.message}"},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": uri},
                    "region": {"startLine": max(1, f.line)},
                },
                "logicalLocations": [
                    {
                        "fullyQualifiedName": shown + (f" {f.path}" if f.path else ""),
                        "kind": "object",
                    }
                ],
            }
        ],
        "partialFingerprints": {"kaiObject/v1": f"{f.rule}:{shown}:{f.path or ''}"},
    }
    if f.rule in index:
        result["ruleIndex"] = index[f.rule]
    if f.suppressed:
        sup: dict[str, Any] = {"kind": "inSource"}
        if f.suppression_reason:
            sup["justification"] = f.suppression_reason
        result["suppressions"] = [sup]
    return result


def _sarif_log(driver_rules: list[Rule], results: Any) -> dict[str, Any]:
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "kai",
                        "version": __version__,
                        "informationUri": "https://github.com/kai-dev/kai",
                        "rules": [
                            {
                                "id": r.id,
                                "name": r.id.replace("-", ""),
                                "shortDescription": {"text": r.title},
                                "fullDescription": {"text": prose(r.rationale)},
                                "help": {
                                    "text": prose(r.remediation),
                                    "markdown": _help_markdown(r),
                                },
                                **({"helpUri": r.references.docs} if r.references.docs else {}),
                                "defaultConfiguration": {"level": SARIF_LEVEL[r.severity]},
                                "properties": {
                                    "tags": [r.category, "kubernetes"],
                                    "equivalents": r.equivalents,
                                },
                            }
                            for r in driver_rules
                        ],
                    }
                },
                "results": results,
            }
        ],
    }


def _uri(file: str) -> str:
    """A repository-relative URI where possible (what code scanning expects), else a file:// URI."""
    if file == "-":
        return "stdin"
    rel = _relative(file)
    return Path(rel).as_uri() if Path(rel).is_absolute() else quote(rel)


def _relative(file: str) -> str:
    """The path relative to the working directory where possible (GitHub resolves it from the
    repository root, where CI runs)."""
    path = Path(file)
    if path.is_absolute():
        try:
            return path.relative_to(Path.cwd()).as_posix()
        except ValueError:
            return file
    return path.as_posix().removeprefix("./")


# ---------- CI logs: compact lines, GitHub workflow commands, JUnit ----------


def _summary_line(report: Report, fail_on: Severity) -> str:
    s = report.summary(fail_on)
    counts = ", ".join(f"{s.by_severity[sev.value]} {sev.value}" for sev in reversed(Severity))
    suppressed = f", {s.suppressed} suppressed" if s.suppressed else ""
    if s.unknown:
        suppressed += f", {s.unknown} unknown (objects they depend on could not be read)"
    return (
        f"{'PASS' if s.passed else 'FAIL'} {s.objects} object{'s' if s.objects != 1 else ''}, "
        f"{s.findings} finding{'s' if s.findings != 1 else ''} ({counts}){suppressed}; "
        f"fails on {fail_on.value} and above"
    )


def _one_line(text: str) -> str:
    """Messages on one line: a CI log line must not be broken by a message's own newlines."""
    # Every whitespace character but the ASCII space is unprintable: a printable text with no
    # double, leading or trailing space is one line already
    if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
        return text
    return " ".join(text.split())


_SEVERITY_TEXT = {s: s.value for s in Severity}  # (Enum.value is a Python-level property)


def compact_lines(report: Report, fail_on: Severity, show_suppressed: bool = True) -> Iterator[str]:
    """One finding a line, `file:line:col: severity RULE object: message`, then notes and the verdict.

    Like kube-linter's plain output and compilers' diagnostics, so editors and CI problem matchers
    can jump to the line. The column is that of the object's document (findings are per object).
    """
    # Each piece is sanitized on its own (sanitize works character by character, so the line is
    # the same), once per distinct text: a report repeats its objects, rules, messages and paths
    # (60,000 objects: 960,000 findings, 60,000 objects and ~20 paths).
    rules: dict[str, str] = {}
    messages: dict[str, str] = {}
    paths: dict[str, str] = {}
    last: Any = None
    line, file, head, name = -1, "", "", ""
    for f in report.findings:
        if f.suppressed and not show_suppressed:
            continue
        if f.object is not last or f.line != line or f.file != file:
            last, line, file = f.object, f.line, f.file
            head = sanitize(f"{f.file}:{f.line}:1: ")
            name = sanitize(f.object.display())
        sev = "suppressed" if f.suppressed else _SEVERITY_TEXT[f.severity]
        rule = rules.get(f.rule)
        if rule is None:
            rule = rules[f.rule] = sanitize(f.rule)
        message = messages.get(f.message)
        if message is None:
            message = messages[f.message] = sanitize(_one_line(f.message))
        where = ""
        if f.path:
            found = paths.get(f.path)
            if found is None:
                found = paths[f.path] = f" ({sanitize(_short_path(f.path))})"
            where = found
        why = ""
        if f.suppressed and f.suppression_reason:
            why = sanitize(f" [ignored: {_one_line(f.suppression_reason)}]")
        yield f"{head}{sev} {rule} {name}: {message}{where}{why}"
    for n in report.notes:
        yield sanitize(f"{n.file}:{n.line}:1: note {_one_line(n.message)}")
    yield _summary_line(report, fail_on)


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


_GH_COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def github_annotations(report: Report, fail_on: Severity) -> Iterator[str]:
    """GitHub Actions workflow commands (`::error file=...,line=...,title=...::message`).

    Findings then appear on the pull request's lines; suppressed findings are not annotated.
    Values are escaped as the runner expects (%, CR, LF; and : , in properties).
    """
    for f in report.findings:
        if f.suppressed:
            continue
        props = ",".join(
            [
                f"file={_gh_property(_relative(f.file))}",
                f"line={max(1, f.line)}",
                f"title={_gh_property(f'{f.rule} {f.object.display()}')}",
            ]
        )
        message = f.message + (f" ({f.path})" if f.path else "")
        yield sanitize(f"::{_GH_COMMAND[f.severity]} {props}::{_gh_data(message)}")
    for n in report.notes:
        yield sanitize(
            f"::notice file={_gh_property(_relative(n.file))},line={max(1, n.line)}::{_gh_data(n.message)}"
        )
    yield _summary_line(report, fail_on)


def junit_xml(report: Report, fail_on: Severity) -> str:
    """A JUnit XML report: one test case per object, failing when it has findings at or above
    `--fail-on` (each finding listed in the failure), for CI test-report views."""
    import xml.etree.ElementTree as ET

    by_object: dict[str, list[Finding]] = {ref.display(): [] for ref in report.objects}
    files: dict[str, str] = {}
    for f in report.active():
        by_object.setdefault(f.object.display(), []).append(f)
        files.setdefault(f.object.display(), f.file)
    suite = ET.Element("testsuite", name="kai review")
    failures = 0
    for obj, items in by_object.items():
        case = ET.SubElement(suite, "testcase", classname=files.get(obj, "kai"), name=obj)
        failing = [f for f in items if f.severity.rank >= fail_on.rank]
        if failing:
            failures += 1
            failure = ET.SubElement(
                case,
                "failure",
                message=f"{len(failing)} finding{'s' if len(failing) != 1 else ''}",
                type=failing[0].rule,
            )
            failure.text = "\n".join(
                f"{f.file}:{f.line}: {f.severity.value} {f.rule}: {_one_line(f.message)}"
                + (f" ({f.path})" if f.path else "")
                for f in failing
            )
        others = [f for f in items if f.severity.rank < fail_on.rank]
        if others:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(
                f"{f.severity.value} {f.rule}: {_one_line(f.message)}" for f in others
            )
    suite.set("tests", str(len(by_object)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suites = ET.Element("testsuites", name="kai", tests=str(len(by_object)), failures=str(failures))
    suites.append(suite)
    for element in suites.iter():  # XML 1.0 cannot carry control characters: show them escaped
        element.attrib.update({k: sanitize(v) for k, v in element.attrib.items()})
        if element.text:
            element.text = sanitize(element.text)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


# ---------- human output ----------

_LIST_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s")


def prose(text: str) -> str:
    """Rule text is stored hard-wrapped at ~100 columns: join each paragraph's lines so the terminal
    wraps it once, at its own width. Blank lines and list items keep their breaks."""
    paragraphs = []
    for para in re.split(r"\n[ \t]*\n", text.strip()):
        lines: list[str] = []
        for line in para.splitlines():
            if lines and not _LIST_ITEM.match(line):
                lines[-1] += " " + line.strip()
            else:
                lines.append(line.rstrip())
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def code(console: Console, text: str, lexer: str, line_numbers: bool = False) -> Any:
    """YAML, CEL or a diff: highlighted and wrapped (never cropped) on a terminal; verbatim when
    piped, so a log or a file gets every character of every line."""
    from rich.syntax import Syntax
    from rich.text import Text

    if not console.is_terminal:
        return Text(text.rstrip("\n"))
    return Syntax(
        text.rstrip("\n"),
        lexer,
        theme="ansi_dark",
        background_color="default",
        word_wrap=True,
        line_numbers=line_numbers,
    )


def _sev(severity: Severity) -> str:
    return f"[{SEVERITY_STYLE[severity]}]{severity.value}[/]"


def print_report(
    console: Console,
    report: Report,
    rules: dict[str, Rule],
    fail_on: Severity,
    explain: bool = False,
    show_suppressed: bool = True,
) -> None:
    from rich.markup import escape
    from rich.table import Table

    findings = [f for f in report.findings if show_suppressed or not f.suppressed]
    if findings:
        table = Table(show_header=True, header_style="bold", expand=False, pad_edge=False)
        table.add_column("Severity", no_wrap=True)
        table.add_column("Rule", no_wrap=True)
        table.add_column("Message")
        table.add_column("Line · path", style="dim", overflow="fold")
        groups: dict[tuple[str, str], list[Finding]] = {}
        for f in findings:
            groups.setdefault((f.file, f.object.display()), []).append(f)
        for n, ((file, obj), items) in enumerate(groups.items()):
            if n:
                table.add_section()
            table.add_row("", "", f"[bold]{escape(obj)}[/]  [dim]{escape(file)}[/]", "")
            for f in items:
                sev = (
                    "[dim]suppressed[/]"
                    if f.suppressed
                    else ("[magenta]unknown[/]" if f.unknown else _sev(f.severity))
                )
                msg = escape(f.message)
                if f.suppressed and f.suppression_reason:
                    msg += f" [dim](ignored: {escape(f.suppression_reason)})[/]"
                where = f"{f.line}" + (f" {_short_path(f.path)}" if f.path else "")
                table.add_row(sev, f.rule, msg, escape(where))
        console.print(table)
    for note in report.notes[:TABLE_NOTES]:
        console.print(f"[dim]note:[/] {escape(note.file)}:{note.line}: {escape(note.message)}")
    if len(report.notes) > TABLE_NOTES:  # 100,000 notes would take a minute to print
        more = len(report.notes) - TABLE_NOTES
        console.print(f"[dim]note:[/] {more:,} more notes (all of them in -o json or -o compact)")
    if explain:
        print_explanations(console, findings, rules)
    print_summary(console, report, fail_on)


TABLE_NOTES = 50  # the table view lists this many notes, then says how many more there are
_POD_SPEC_PREFIXES = (
    "spec.jobTemplate.spec.template.spec.",
    "spec.template.spec.",
    "template.spec.",
)


def _short_path(path: str | None) -> str:
    """containers[0] rather than spec.template.spec.containers[0]: the kind says where the pod is."""
    if not path:
        return ""
    for prefix in _POD_SPEC_PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


def print_summary(console: Console, report: Report, fail_on: Severity) -> None:
    verdict, rest = _summary_line(report, fail_on).split(" ", 1)
    style = "bold green" if verdict == "PASS" else "bold red"
    console.print(f"[{style}]{verdict}[/] {rest}")


def print_explanations(
    console: Console, findings: Sequence[Finding], rules: dict[str, Rule]
) -> None:
    from rich.console import Group
    from rich.markup import escape
    from rich.panel import Panel
    from rich.text import Text

    seen: set[str] = set()
    for f in findings:
        rule = rules.get(f.rule)
        if rule is None or f.rule in seen:
            continue
        seen.add(f.rule)
        parts: list[Any] = [
            Text.from_markup(f"[bold]Why it matters[/]  {escape(prose(rule.rationale))}"),
            Text.from_markup(f"\n[bold]How to fix[/]  {escape(prose(rule.remediation))}"),
        ]
        if rule.example:
            parts.append(code(console, rule.example, "yaml"))
        if rule.concept:
            parts.append(Text.from_markup(f"\n[bold]Concept to study[/]  {escape(rule.concept)}"))
        if rule.references.docs:
            parts.append(
                Text.from_markup(
                    f"[bold]Docs[/]  [link={rule.references.docs}]{escape(rule.references.docs)}[/link]"
                )
            )
        title = f"{_sev(rule.severity)} {rule.id} {escape(rule.title)}"
        console.print(Panel(Group(*parts), title=title, title_align="left", expand=True))


def print_rules(console: Console, rules: Sequence[Rule]) -> None:
    """The rule table, its columns fitted to the width: equivalents from 150 columns, the category
    from 100, so titles stay on one line at 80 (`kai policies show ID` has the rest)."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from kai.policy.fix import fixable

    width = console.width
    # below 100 columns, no vertical rules: their width goes to the titles
    table = Table(
        show_header=True,
        header_style="bold",
        box=box.SIMPLE_HEAD if width < 100 else box.HEAVY_HEAD,
    )
    table.add_column("ID", no_wrap=True)
    table.add_column("Severity", no_wrap=True)
    if width >= 100:
        table.add_column("Category", no_wrap=True)
    table.add_column("Title", ratio=1)
    table.add_column("Fix", justify="center", no_wrap=True)
    if width >= 150:
        table.add_column("Equivalents", style="dim", ratio=1)
    for r in rules:
        eq = "; ".join(f"{tool}: {', '.join(ids)}" for tool, ids in r.equivalents.items() if ids)
        rid = r.id if r.enabled else f"[dim]{r.id} (off)[/]"
        row = [rid, _sev(r.severity)]
        if width >= 100:
            row.append(r.category)
        row += [escape(r.title), "✓" if fixable(r.id) else ""]
        if width >= 150:
            row.append(escape(eq))
        table.add_row(*row)
    console.print(table)
    console.print(
        f"{len(rules)} rules, {sum(r.enabled for r in rules)} enabled, {sum(fixable(r.id) for r in rules)} with a deterministic fix (kai fix)"
    )


def print_rule(console: Console, rule: Rule) -> None:
    from rich.markup import escape

    console.print(f"[bold]{rule.id}[/]  {escape(rule.title)}")
    console.print(
        f"severity {_sev(rule.severity)} · category {escape(rule.category)}"
        + ("" if rule.enabled else " · [dim]off by default[/]")
    )
    if rule.match.kinds:
        console.print(f"applies to: {', '.join(rule.match.kinds)}", markup=False)
    console.print(f"\n[bold]Why it matters[/]\n{escape(prose(rule.rationale))}")
    console.print(f"\n[bold]How to fix[/]\n{escape(prose(rule.remediation))}")
    if rule.example:
        console.print(code(console, rule.example, "yaml"))
    if rule.concept:
        console.print(f"\n[bold]Concept to study[/]  {escape(rule.concept)}")
    console.print("\n[bold]References[/]")
    if rule.references.docs:
        console.print(f"  Kubernetes docs: {rule.references.docs}", markup=False)
    for link in rule.references.links:
        console.print(f"  {link}", markup=False)
    for tool, ids in rule.equivalents.items():
        console.print(f"  {tool}: {', '.join(ids)}", markup=False)
    if rule.cel is not None:
        console.print(f"\n[bold]Check[/] (CEL, scope {rule.cel.scope})")
        console.print(code(console, rule.cel.expression.strip(), "javascript"))
    elif rule.schema is not None:
        console.print(f"\n[bold]Check[/] (schema validation) {escape(str(rule.schema))}")
    elif rule.server is not None:
        console.print(f"\n[bold]Check[/] (server-side dry run) {escape(str(rule.server))}")
    else:
        console.print(f"\n[bold]Check[/] (Python, cross-object) {escape(str(rule.python))}")


def print_generated(console: Console, result: Any, explain: bool, show_yaml: bool = True) -> None:
    """The outcome of `kai generate`: YAML, rounds, what still fails, tokens and cost."""
    from rich.markup import escape
    from rich.table import Table

    if show_yaml and result.yaml:
        console.print(code(console, result.yaml, "yaml"))
    if explain:
        if result.plan.rationale:
            console.print(f"[bold]Why this shape[/]  {escape(result.plan.rationale)}")
        for obj, why in result.plan.explanations.items():
            console.print(f"  [bold]{escape(obj)}[/]  {escape(why)}")
        for a in result.plan.assumptions:
            console.print(f"  [dim]assumed:[/] {escape(a)}")
    table = Table(title="Three Roles loop", show_header=True, header_style="bold")
    for col in (
        "round",
        "model calls so far",
        "findings in the model's draft",
        "fixed by kai",
        "still failing",
    ):
        table.add_column(col, justify="right")
    for r in result.rounds:
        table.add_row(
            str(r.number),
            str(r.model_calls),
            str(r.findings_in_draft),
            str(r.fixed_by_kai),
            str(r.remaining),
        )
    console.print(table)
    if result.draft_report is not None:
        counts: dict[str, int] = {}
        for f in result.draft_report.active():
            counts[f.rule] = counts.get(f.rule, 0) + 1
        if counts:
            listed = ", ".join(
                f"{rule}x{n}" if n > 1 else rule for rule, n in sorted(counts.items())
            )
            console.print(f"[dim]findings in the model's first draft:[/] {escape(listed)}")
    after = sorted({f.rule for f in result.report.active()}) if result.report is not None else []
    console.print(f"[dim]findings after repair:[/] {escape(', '.join(after)) if after else 'none'}")
    for f in result.failing:
        console.print(
            f"[bold red]still failing[/] {f.rule} {escape(f.object.display())}: {escape(f.message)}"
        )
    stripped = getattr(result, "stripped_suppressions", [])
    if stripped:
        console.print(
            f"[yellow]removed {len(stripped)} suppression annotation{'s' if len(stripped) != 1 else ''} "
            "the model wrote[/] (a model cannot switch the evaluator off; add one back by hand, "
            "with kai.dev/ignore-reason, if you mean it):"
        )
        for line in stripped:
            console.print(f"  - {escape(line)}")
    notes = [n for n in (result.report.notes if result.report is not None else [])]
    for n in notes:
        if "fixer could not process" in n.message:
            console.print(f"[yellow]note:[/] {escape(n.message)}")
    cost = "unknown cost" if result.cost_usd is None else f"{result.cost_usd:.4f} USD"
    console.print(
        f"{'[bold green]PASS[/]' if not result.failing else '[bold red]FAIL[/]'} stopped: {escape(result.stopped_because)}; "
        f"{result.model_calls} model call{'s' if result.model_calls != 1 else ''}"
        f"{f' ({result.retries} retried attempt' + ('s' if result.retries != 1 else '') + ' not counted)' if result.retries else ''}, "
        f"{result.prompt_tokens} prompt + {result.completion_tokens} completion tokens, {cost}"
    )


def print_repeated(console: Console, summary: Any) -> None:
    """pass@1 and pass^K of `kai eval --repeat K`, and how often each task passed."""
    from rich.markup import escape

    k = summary.repeat
    flaky = [f"{t} {c}/{k}" for t, c in sorted(summary.passes.items()) if 0 < c < k]
    console.print(
        f"{len(summary.passes)} tasks x {k} runs: pass@1 {summary.pass_at_1:.2f}, "
        f"pass^{k} {summary.pass_hat_k:.2f}"
        + (f"; passed only sometimes: {escape(', '.join(flaky))}" if flaky else "")
    )


def print_eval(console: Console, results: Sequence[Any]) -> None:
    """One row per task, then pass rate, calls, tokens and cost."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    for col, justify in (
        ("task", "left"),
        ("result", "left"),
        ("calls", "right"),
        ("prompt tok", "right"),
        ("completion tok", "right"),
        ("cost USD", "right"),
        ("s", "right"),
        ("what failed", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in results:
        table.add_row(
            r.id,
            "[green]pass[/]" if r.passed else "[bold red]FAIL[/]",
            str(r.model_calls),
            str(r.prompt_tokens),
            str(r.completion_tokens),
            "?" if r.cost_usd is None else f"{r.cost_usd:.4f}",
            f"{r.seconds:.1f}",
            escape("; ".join(r.failures)),
        )
    console.print(table)
    n = len(results) or 1
    passed = sum(r.passed for r in results)
    costs = [r.cost_usd for r in results]
    total = (
        "unknown"
        if any(c is None for c in costs)
        else f"{sum(c for c in costs if c is not None):.4f} USD"
    )
    console.print(
        f"{passed}/{len(results)} passed ({100 * passed / n:.0f}%); model calls per task "
        f"{sum(r.model_calls for r in results) / n:.2f}; prompt tokens per task "
        f"{sum(r.prompt_tokens for r in results) / n:.0f}; total cost {total}"
    )


def target_namespaces(manifests: Sequence[Any], default: str) -> str:
    """Where `kai apply` writes, for its header: the namespaces the objects name, and the default
    only when some namespaced object names none ("namespace default" is wrong when every
    object names its own)."""
    from kai.ops.grammar import CLUSTER_SCOPED

    used: dict[str, None] = {}
    for m in manifests:
        kind = str(m.ref.kind).lower()
        if kind == "namespace" or kind in CLUSTER_SCOPED:
            continue
        used[m.ref.namespace or default] = None
    if not used:
        return "cluster-scoped objects only"
    names = list(used)
    return ("namespace " if len(names) == 1 else "namespaces ") + ", ".join(names)


def print_dry_run(console: Console, plan: Any) -> None:
    """The server's verdict: permissions, per-object action, diff, warnings, errors, and the totals."""
    from rich.markup import escape

    for missing in plan.missing_permissions:
        console.print(f"[bold red]not allowed[/] {escape(missing)}")
    if plan.missing_permissions:
        console.print(
            "the current identity lacks these permissions (kubectl auth can-i): nothing was dry-run"
        )
    for c in plan.changes:
        name = escape(c.manifest.ref.display())
        style = {"create": "green", "update": "yellow", "unchanged": "dim", "error": "bold red"}[
            c.action
        ]
        from kai.errors import one_line

        waits = (
            f" [dim](dry-run on the server once {escape(c.waits_for)} exists, before it is applied)[/]"
            if c.waits_for
            else ""
        )
        console.print(
            f"[{style}]{c.action}[/] {name}"
            + (f": {escape(one_line(c.error))}" if c.error else "")
            + waits,
            soft_wrap=True,  # an error is one line, however long
        )
        if c.diff:
            console.print(code(console, c.diff, "diff"))
    n = plan.counts()
    console.print(
        f"create {n['create']}, update {n['update']}, unchanged {n['unchanged']}"
        + (f", errors {n['error']}" if n["error"] else "")
    )


def print_applied(console: Console, done: Any) -> None:
    """What the apply did: each object, the steps between (CRDs established), a failure and what was left."""
    from rich.markup import escape

    for step in done.steps:
        console.print(f"[dim]{escape(step)}[/]")
    for name in done.applied:
        console.print(f"[green]applied[/] {escape(name)}")
    for w in done.warnings:
        console.print(f"[yellow]warning[/] {escape(w)}")
    if done.failed:
        from kai.errors import one_line

        console.print(
            f"[bold red]failed[/] {escape(done.failed)}: {escape(one_line(done.error or ''))}",
            soft_wrap=True,  # an error is one line, however long
        )
        for name in done.not_attempted:
            console.print(f"[yellow]not applied[/] {escape(name)}")
        return
    n = len(done.applied)
    console.print(f"[bold green]applied {n} object{'s' if n != 1 else ''}[/]")


@contextmanager
def rollout_progress(console: Console) -> Iterator[Callable[[str, int, int], None]]:
    """Progress bars for the watch stage: yields the callback kai.cluster.rollout.watch reports to."""
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(name: str, ready: int, desired: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(f"rollout {escape(name)}", total=max(desired, 1))
            bar.update(tasks[name], completed=ready, total=max(desired, 1))

        yield update


def print_rollouts(console: Console, results: Sequence[Any]) -> None:
    """Each rollout's outcome; for a failed one the reasons, the events and what the rollback did."""
    from rich.markup import escape

    for r in results:
        if r.done:
            console.print(f"[green]rolled out[/] {escape(r.name)} ({r.ready}/{r.desired} ready)")
            continue
        console.print(f"[bold red]rollout failed[/] {escape(r.name)}: {escape(r.message)}")
        for p in r.pod_problems:
            console.print(f"  {escape(p)}")
        for e in r.events:
            console.print(f"  [dim]event[/] {escape(e)}")
        if r.rollback:
            style = "yellow" if r.rolled_back else "bold red"
            console.print(f"  [{style}]{escape(r.rollback)}[/] ({escape(r.name)})")

"""The write gate: what runs, what is asked first, and what never runs.

Every kubectl command kai might run (from `kai run`, or the fix `kai debug` proposes) passes
through `Gate.execute`: reads run directly (or after a yes, under `confirm-all`), writes are
dry-run on the server and confirmed, destructive commands show what they would touch and need the
target's name typed, refused commands never run. Without a terminal nothing is asked: the flags
decide, and when they do not allow a command nothing runs at all.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kai.errors import ExitCode, one_line
from kai.models import Approval
from kai.ops.classify import Verdict
from kai.ops.grammar import Kind
from kai.ops.preview import (
    NAMESPACED_KINDS,
    can_i_argv,
    deleted_namespaces,
    namespace_contents,
    needed_permissions,
    preview,
    target_word,
    with_dry_run,
)
from kai.ops.runner import Kubectl, Ran

if TYPE_CHECKING:
    from rich.console import Console


BADGE = {
    Kind.read: "[green]read[/]",
    Kind.write: "[yellow]write[/]",
    Kind.destructive: "[bold red]destructive[/]",
    Kind.refused: "[red]refused[/]",
}


@dataclass(slots=True)
class Outcome:
    code: int
    ran: list[Ran] = field(default_factory=list)
    skipped: list[Verdict] = field(default_factory=list)
    not_run: list[Verdict] = field(default_factory=list)


@dataclass(slots=True)
class Gate:
    kubectl: Kubectl
    console: Console
    approval: Approval = Approval.reads_auto
    yes: bool = False
    allow_destructive: bool = False
    tty: bool = field(default_factory=lambda: sys.stdin.isatty())
    ask: Callable[[str], str] = input
    approved_verbs: set[str] = field(default_factory=set)  # "yes to this kind" on a terminal

    def line(self, v: Verdict) -> str:
        import shlex

        return "kubectl " + shlex.join(self.kubectl.full(v))

    def show(self, verdicts: Sequence[Verdict]) -> None:
        """The commands as copy-pasteable lines, each with kai's class and the model's purpose."""
        from rich.markup import escape

        for i, v in enumerate(verdicts, 1):
            self.console.print(f"{i}. {BADGE[v.kind]}  {escape(self.line(v))}", highlight=False)
            if v.purpose:
                self.console.print(f"   [dim]{escape(v.purpose)}[/]", highlight=False)
            if v.kind is Kind.refused:
                self.console.print(
                    f"   [red]not run:[/] {escape(v.reason)}; {escape(v.hint)}", highlight=False
                )
            elif v.reason:
                self.console.print(f"   [dim]{escape(v.reason)}[/]", highlight=False)

    def _needs(self, v: Verdict) -> str | None:
        """What a non-interactive run lacks to run `v`, or None."""
        if v.kind is Kind.refused:
            return None
        if v.kind is Kind.destructive and not (self.yes and self.allow_destructive):
            return "--yes --allow-destructive"
        if v.kind is Kind.write and not self.yes:
            return "--yes"
        if v.kind is Kind.read and (self.approval is Approval.confirm_all or v.sensitive):
            return None if self.yes else "--yes"
        return None

    def execute(self, verdicts: Sequence[Verdict]) -> Outcome:
        """Run the commands in order through the gates; stop at the first failure or refusal to confirm."""
        from rich.markup import escape

        out = Outcome(0)
        refused = [v for v in verdicts if v.kind is Kind.refused]
        if refused:  # a refusal is never a clean exit, whatever else happens (exit 1)
            print(
                f"error: kai refused {len(refused)} of {len(verdicts)} proposed command"
                f"{'s' if len(verdicts) != 1 else ''}; a refused command never runs",
                file=sys.stderr,
            )
        if self.approval is Approval.suggest_only:
            self.console.print("[dim]suggest-only: nothing runs; the commands are above[/]")
            out.code, out.skipped = (ExitCode.FINDINGS if refused else 0), refused
            return out
        runnable = [v for v in verdicts if v.kind is not Kind.refused]
        if not self.tty:
            missing = [(v, need) for v in runnable if (need := self._needs(v))]
            if missing:
                for v, need in missing:
                    self.console.print(
                        f"needs {need}: {escape(self.line(v))}", highlight=False, soft_wrap=True
                    )
                self.console.print(
                    "nothing ran: no terminal to confirm on (writes need --yes; destructive "
                    "commands need --yes --allow-destructive)"
                )
                out.code, out.not_run = ExitCode.USAGE, list(runnable)
                return out
        denied = self.preflight([v for v in runnable if v.kind is not Kind.read])
        if denied is None:
            out.code, out.not_run = ExitCode.CLUSTER, list(runnable)
            return out
        if denied:
            self.console.print("[bold red]permission preflight:[/] this identity may not:")
            for line in denied:
                self.console.print(f"  {escape(line)}", highlight=False)
            self.console.print("nothing ran")
            out.code, out.not_run = ExitCode.CLUSTER, list(runnable)
            return out
        for i, v in enumerate(verdicts):
            if v.kind is Kind.refused:
                out.skipped.append(v)
                continue
            step = self._one(v)
            if isinstance(step, Ran):
                out.ran.append(step)
                self._print_result(step)
                if step.code != 0:
                    out.code = ExitCode.CLUSTER
                    out.not_run = [w for w in verdicts[i + 1 :] if w.kind is not Kind.refused]
                    break
            else:
                out.code = step
                out.not_run = [w for w in verdicts[i:] if w.kind is not Kind.refused]
                break
        if out.code == 0 and out.skipped:
            out.code = ExitCode.FINDINGS
        for v in out.not_run:
            self.console.print(f"[yellow]not run[/] {escape(self.line(v))}", highlight=False)
        return out

    def preflight(self, writes: Sequence[Verdict]) -> list[str] | None:
        """`kubectl auth can-i` for everything the writes need; the denials, or None if it failed."""
        from rich.markup import escape

        denied: list[str] = []
        seen: set[tuple[str, ...]] = set()
        for v in writes:
            for verb, resource, sub in needed_permissions(v):
                argv = self.kubectl.full(can_i_argv(verb, resource, sub, v))
                if tuple(argv) in seen:
                    continue
                seen.add(tuple(argv))
                r = self.kubectl.run(argv)
                answer = r.stdout.strip().lower()
                if r.code == 0 and answer.startswith("yes"):
                    continue
                if answer.startswith("no"):
                    where = (
                        "in every namespace"
                        if v.all_namespaces
                        else f"in namespace {v.namespace or self.kubectl.namespace or '(the context default)'}"
                    )
                    denied.append(f"{verb} {resource}{'/' + sub if sub else ''} {where}")
                    continue
                self.console.print(
                    f"[bold red]permission preflight failed:[/] kubectl {escape(' '.join(argv))}: "
                    f"{escape((r.stderr or r.stdout).strip().splitlines()[-1] if (r.stderr or r.stdout).strip() else 'exit ' + str(r.code))}",
                    highlight=False,
                )
                return None
        return denied

    def _ask(self, question: str) -> str:
        """The person's answer; end of input (Ctrl-D) is no answer, so nothing runs."""
        try:
            return self.ask(question)
        except EOFError:
            return ""

    def _confirm(self, v: Verdict) -> bool:
        if self.yes or v.verb in self.approved_verbs:
            return True
        if not self.tty:
            return False
        answer = self._ask(f"run `{self.line(v)}`? [y]es / [n]o / [a]lways {v.verb} this session: ")
        answer = answer.strip().lower()
        if answer in ("a", "always"):
            self.approved_verbs.add(v.verb)
            return True
        return answer in ("y", "yes")

    def _one(self, v: Verdict) -> Ran | int:
        """Run one command through its gate: its result, or the exit code of a refusal to go on."""
        from rich.markup import escape

        if v.kind is Kind.read:
            if (self.approval is Approval.confirm_all or v.sensitive) and not self._confirm(v):
                self.console.print("not confirmed: nothing more runs")
                return ExitCode.CANCELLED
            return self.kubectl.run(self.kubectl.full(v))
        if v.kind is Kind.destructive:
            listing = preview(v)
            if listing is not None:
                affected = self._affected(v, listing)
                if affected is None:
                    return ExitCode.CLUSTER
                self.console.print(
                    f"[bold red]{escape(self.line(v))}[/] {escape(v.reason)}; it would affect "
                    f"{len(affected)} object{'s' if len(affected) != 1 else ''}:",
                    highlight=False,
                )
                for name in affected:
                    self.console.print(f"  {escape(name)}", highlight=False)
        if v.dry_run:
            r = self.kubectl.run(self.kubectl.full(with_dry_run(v)))
            self.console.print(
                f"[dim]server dry run:[/] {escape(r.stdout.strip())}", highlight=False
            )
            if r.code != 0:
                self.console.print(
                    f"[bold red]the server rejects it:[/] {escape(one_line(r.stderr))}",
                    highlight=False,
                    soft_wrap=True,
                )
                return ExitCode.CLUSTER
        if v.kind is Kind.destructive:
            if not (self.yes and self.allow_destructive):
                if not self.tty:
                    return ExitCode.USAGE
                word = target_word(v, self.kubectl.namespace)
                typed = self._ask(f"destructive: type {word!r} to run it, anything else to stop: ")
                if typed.strip() != word:
                    self.console.print("not confirmed: nothing more runs")
                    return ExitCode.CANCELLED
        elif not self._confirm(v):
            self.console.print("not confirmed: nothing more runs")
            return ExitCode.CANCELLED
        return self.kubectl.run(self.kubectl.full(v))

    def _affected(self, v: Verdict, listing: list[str]) -> list[str] | None:
        """What a destructive command would touch (names only), or None when it cannot be listed."""
        from rich.markup import escape

        namespaces = deleted_namespaces(v)
        steps: list[tuple[str, list[str]]] = [("", listing)]
        affected: list[str] = []
        while steps:
            prefix, argv = steps.pop(0)
            r = self.kubectl.run(self.kubectl.full(argv))
            if r.code != 0:
                self.console.print(
                    f"[bold red]cannot list what this would affect:[/] {escape(one_line(r.stderr))}",
                    highlight=False,
                    soft_wrap=True,
                )
                return None
            if argv == NAMESPACED_KINDS:  # then each namespace's content, every kind of it
                for ns in namespaces:
                    affected.append(f"namespace/{ns}")
                    shown = f"{ns}: " if len(namespaces) > 1 else ""
                    steps.append((shown, namespace_contents(ns, r.stdout)))
                continue
            affected += [prefix + x.strip() for x in r.stdout.splitlines() if x.strip()]
        return affected

    def _print_result(self, r: Ran) -> None:
        from rich.markup import escape

        if r.stdout:
            self.console.print(escape(r.stdout.rstrip("\n")), highlight=False, soft_wrap=True)
        if r.code != 0:
            self.console.print(
                f"[bold red]kubectl failed (exit {r.code}):[/] {escape(one_line(r.stderr))}",
                highlight=False,
                soft_wrap=True,
            )

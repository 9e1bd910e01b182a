"""What `kai run` and `kai debug` set up alike (.kai.yaml, the namespace, the approval mode, the
model client), and their stages up to the gate: commands proposed or given, a diagnosis, verdicts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kai.models import Approval

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from kai.config import Config
    from kai.model.client import LLM
    from kai.ops.classify import Command, Verdict
    from kai.ops.debug import Diagnosis, Investigator, Step
    from kai.ops.propose import Proposal
    from kai.ops.runner import Kubectl


def approval_mode(flag: Approval | None, configured: Any) -> Approval:
    """--approval, else `approval:` in .kai.yaml, else reads-auto."""
    from kai.errors import InputError

    if flag is not None:
        return flag
    if configured is None:
        return Approval.reads_auto
    try:
        return Approval(str(configured))
    except ValueError:
        raise InputError(
            f"approval in .kai.yaml must be one of reads-auto, confirm-all, suggest-only (got {configured!r})"
        ) from None


@dataclass(slots=True)
class Ops:
    config: Config
    namespace: str | None  # the flag, else .kai.yaml's; None: the context's default
    approval: Approval

    @classmethod
    def load(cls, namespace: str | None, approval: Approval | None) -> Ops:
        from kai.config import load_config

        config = load_config()
        return cls(
            config,
            namespace or config.namespace,
            approval_mode(approval, config.extra.get("approval")),
        )

    def llm(
        self,
        model: str | None,
        api_base: str | None,
        max_cost: float | None,
        timeout: float,
        *,
        cache: bool,
    ) -> LLM:
        """The model client; with `cache`, kai's on-disk response cache."""
        from kai.model.client import LLM, settings_from
        from kai.policy.catalog import cache_dir

        settings = settings_from(
            model, api_base=api_base, cache=cache, max_cost=max_cost, timeout=timeout
        )
        folder = cache_dir() if cache else None
        return LLM(settings, folder / "llm" if folder else None)

    def propose(self, llm: LLM, request: str, context: str | None) -> Proposal:
        """kubectl commands for an English request, proposed by the model (nothing runs)."""
        from kai.generate import persona
        from kai.ops.propose import propose

        return propose(
            llm,
            request,
            context or "(the kubeconfig's current context)",
            self.namespace or "(the context's default)",
            persona(),
        )

    def investigator(self, kubectl: Kubectl, target: str, anonymize: bool) -> Investigator:
        """`kai debug`'s read-only tools on KIND/NAME; with `anonymize`, names sent as placeholders."""
        from kai.model.anonymize import Anonymizer
        from kai.ops.debug import Investigator
        from kai.pipeline import rules_for

        anonymizer = Anonymizer() if anonymize else None
        investigator = Investigator(kubectl, self.namespace, anonymizer, rules_for(self.config))
        if anonymizer:
            anonymizer.learn(target.partition("/")[2], "name")
        return investigator

    def diagnose(
        self,
        llm: LLM,
        target: str,
        investigator: Investigator,
        max_steps: int,
        progress: Callable[[Step], None],
    ) -> Diagnosis:
        """The model's diagnosis of `target`, from at most `max_steps` tool calls."""
        from kai.generate import persona
        from kai.ops.debug import diagnose

        return diagnose(llm, target, investigator, persona(), max_steps, progress)

    def verdicts(self, commands: Sequence[Command]) -> list[Verdict]:
        """kai's verdict on each command, carrying the command's purpose to the gate."""
        from kai.ops.classify import classify

        out = []
        for c in commands:
            v = classify(c.argv, self.namespace)
            v.purpose = c.purpose
            out.append(v)
        return out


def given_commands(lines: Sequence[str]) -> list[Command]:
    """`kai run --command` lines as commands (an unreadable line is an input error)."""
    from kai.errors import InputError
    from kai.ops.classify import Command, split_line

    commands = []
    for line in lines:
        try:
            commands.append(Command(split_line(line), "given with --command"))
        except ValueError as e:
            raise InputError(str(e)) from None
    return commands

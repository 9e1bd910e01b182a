"""Running kubectl: an argv list (never a shell) with kai's own --context / --kubeconfig / -n."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from kai.errors import ClusterError
from kai.ops.classify import Verdict
from kai.ops.grammar import PROGRAMS


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

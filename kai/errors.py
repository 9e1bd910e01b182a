"""kai's error hierarchy: each error carries a one-line message and an exit code."""

from __future__ import annotations


class ExitCode:
    OK = 0
    FINDINGS = 1
    USAGE = 2
    MODEL = 3
    CLUSTER = 4
    INTERNAL = 70  # a bug in kai (EX_SOFTWARE); never expected
    CANCELLED = 130


class KaiError(Exception):
    """Base of every error kai reports to the person; never shown as a traceback."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str) -> None:
        message = one_line(message)  # errors are one line, whatever a server or kubectl wrote
        super().__init__(message)
        self.message = message


class InputError(KaiError):
    """Unreadable, malformed or hostile input (files, YAML, flags)."""


class PolicyError(KaiError):
    """A rule file that cannot be loaded or compiled."""


class ModelError(KaiError):
    exit_code = ExitCode.MODEL


class ClusterError(KaiError):
    exit_code = ExitCode.CLUSTER


class MissingExtraError(KaiError):
    """A command needs an optional part of kai (a pip extra) that is not installed."""


def one_line(text: str) -> str:
    """A message as one line: a server's or kubectl's multi-line text joined with "; "."""
    lines = [" ".join(line.split()) for line in str(text).splitlines()]
    return "; ".join(line for line in lines if line)

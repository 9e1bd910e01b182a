"""Conventions people's hands know: one-line usage errors, the unquoted-request hint, Ctrl-C."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("review", "--foo"), "error: no such option: --foo"),
        (("review", "-o", "bogus", "x.yaml"), "error: invalid value for '--output'"),
        (("policies", "show"), "error: missing argument"),
    ],
)
def test_usage_errors_are_one_kai_line(kai, args: tuple[str, ...], says: str) -> None:
    r = kai(*args)
    assert r.code == 2
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(says), r.err
    assert "--help" in lines[0] and "Traceback" not in r.err and r.out == ""


def test_unquoted_request_gets_the_shorthand_hint(kai) -> None:
    r = kai("deploy", "nginx", "with", "2", "replicas")
    assert r.code == 2
    assert r.err.strip() == (
        "error: no command 'deploy'; to ask for it in English, quote it: "
        "kai 'deploy nginx with 2 replicas'"
    )


def test_ctrl_c_prints_cancelled_and_exits_130(kai, monkeypatch) -> None:
    import kai.pipeline as pipeline

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "review", interrupted)
    r = kai("review", "x.yaml")
    assert r.code == 130 and r.err.strip() == "error: cancelled"


def test_no_arguments_shows_help(kai) -> None:
    r = kai()
    assert r.code == 2 and "Usage: kai" in r.err and "review" in r.err


def test_a_run_builds_only_the_command_it_runs() -> None:
    from kai.cli import _app_for, app

    lean = _app_for(["--debug", "review", "x.yaml"])
    assert [c.callback.__name__ for c in lean.registered_commands] == ["review"]  # type: ignore[union-attr]
    assert [g.name for g in _app_for(["policies", "list"]).registered_groups] == ["policies"]
    # help, unknown words and the English shorthand see every command
    for args in (["--help"], ["nosuch"], []):
        assert _app_for(args) is app

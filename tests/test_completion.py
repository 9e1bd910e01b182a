"""`kai completion`: the scripts complete commands and options in a real bash."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT


def _kai_on_path(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "kai"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m kai "$@"\n')
    wrapper.chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
    }


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_commands_and_options(tmp_path: Path) -> None:
    env = _kai_on_path(tmp_path)
    script = (
        "source <(kai completion bash)\n"
        'COMP_WORDS=(kai rev); COMP_CWORD=1; _kai_completion kai; echo "1:${COMPREPLY[*]}"\n'
        'COMP_WORDS=(kai review --fail); COMP_CWORD=2; _kai_completion kai; echo "2:${COMPREPLY[*]}"\n'
        'COMP_WORDS=(kai completion ""); COMP_CWORD=2; _kai_completion kai; echo "3:${COMPREPLY[*]}"\n'
    )
    out = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120, check=True
    ).stdout.splitlines()
    assert out[0] == "1:review"
    assert out[1] == "2:--fail-on"
    assert out[2].split(":", 1)[1].split() == ["bash", "zsh", "fish"]


def test_zsh_and_fish_scripts_call_kai(kai) -> None:
    for shell in ("zsh", "fish"):
        r = kai("completion", shell)
        assert r.code == 0 and "_KAI_COMPLETE=complete_" + shell in r.out
    assert kai("completion", "tcsh").code == 2


def test_install_writes_to_the_shells_startup_file(kai, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    r = kai("completion", "bash", "--install")
    assert r.code == 0 and "installed" in r.err
    assert "_KAI_COMPLETE" in (tmp_path / ".bash_completions" / "kai.sh").read_text()
    assert "kai.sh" in (tmp_path / ".bashrc").read_text()

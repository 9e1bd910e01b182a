"""The confirmation gates as a person meets them (issue 11, item 3): `kai apply` and `kai run` on a
pseudo-terminal (pexpect) against the real server. Every refusal - "n", an empty line, EOF (Ctrl-D),
Ctrl-C - writes nothing, checked in the server's audit log and by reading the objects back; "y"
writes exactly the objects the diff showed, as shown; a destructive command wants the typed name.
"""

from __future__ import annotations

import re
import signal
import sys
import time
from pathlib import Path

import pexpect
import pytest

from .conftest import Cluster
from .util import configmap, deployment, one_line, present, writes

REFUSALS = ["n", "", "EOF", "CTRL-C"]


def spawn(cluster: Cluster, *args: str) -> pexpect.spawn:
    return pexpect.spawn(
        sys.executable,
        ["-m", "kai", *args],
        env=cluster.env(),
        cwd=str(cluster.home),
        encoding="utf-8",
        timeout=120,
        dimensions=(60, 200),
        # A suite started in the background of a non-interactive shell hands its children SIGINT
        # ignored, and Python keeps it so: the person at this terminal can press Ctrl-C.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def prompt(child: pexpect.spawn, text: str) -> None:
    """Wait for a prompt however the terminal wraps it."""
    child.expect(r"\s+".join(re.escape(word) for word in text.split()))


def answer(child: pexpect.spawn, reply: str) -> None:
    # a person answers after the prompt is on the screen: a signal sent while Python is still
    # between writing the prompt and blocking in read() is a race in any Python program
    time.sleep(0.3)
    if reply == "EOF":
        child.sendeof()
    elif reply == "CTRL-C":
        child.sendintr()
    else:
        child.sendline(reply)


def finish(child: pexpect.spawn) -> tuple[int, str]:
    child.expect(pexpect.EOF)
    out = child.before or ""
    child.close()
    code = child.exitstatus if child.exitstatus is not None else 128 + (child.signalstatus or 0)
    return code, out


def _file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return str(path)


# --- kai apply ---------------------------------------------------------------------------------


@pytest.mark.parametrize("reply", REFUSALS)
def test_apply_refusal_writes_nothing(
    cluster: Cluster, namespace: str, tmp_path: Path, reply: str
) -> None:
    path = _file(tmp_path, deployment("web", namespace) + "---\n" + configmap("cfg", namespace))
    mark = cluster.audit_mark()
    child = spawn(cluster, "apply", path, "--ignore-findings")
    prompt(child, "apply 2 creations and 0 updates? [y/N]: ")
    answer(child, reply)
    code, out = finish(child)
    assert code != 0, out
    if reply in ("CTRL-C", "EOF"):
        assert code == 130, out  # cancelled
    assert writes(cluster.audit_events(mark, user="admin")) == [], out
    assert cluster.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/web") is None
    assert cluster.get(f"/api/v1/namespaces/{namespace}/configmaps/cfg") is None


def test_apply_yes_writes_exactly_what_the_diff_showed(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    cluster.create(namespace, configmap("untouched", namespace, k="v"))
    first = tmp_path / "v1.yaml"
    first.write_text(deployment("web", namespace))
    assert cluster.kai("apply", str(first), "--yes", "--ignore-findings", "--no-watch").code == 0

    path = _file(
        tmp_path,
        deployment("web", namespace, image="nginx:1.28")
        + "---\n"
        + configmap("cfg", namespace, mode="fast"),
    )
    mark = cluster.audit_mark()
    child = spawn(cluster, "apply", path, "--ignore-findings", "--no-watch")
    prompt(child, "apply 1 creations and 1 updates? [y/N]: ")
    shown = child.before or ""
    answer(child, "y")
    code, out = finish(child)
    assert code == 0, shown + out
    # the diff named these two objects, and the server got real writes for exactly those two
    diffed = set(re.findall(r"^\+\+\+ kai/(\S+)", shown, re.M))
    assert diffed == {f"Deployment/{namespace}/web", f"ConfigMap/{namespace}/cfg"}, shown
    written = {w.split()[1] for w in writes(cluster.audit_events(mark, user="admin"))}
    assert written == {"deployments/web", "configmaps/cfg"}, written
    assert "+        image: nginx:1.28" in shown or "+  - image: nginx:1.28" in shown, shown
    live = cluster.apps.read_namespaced_deployment("web", namespace)
    assert present(present(live.spec).template.spec).containers[0].image == "nginx:1.28"
    assert cluster.core.read_namespaced_config_map("cfg", namespace).data == {"mode": "fast"}
    # and what is live now is what was shown: applying the same files again changes nothing
    again = cluster.kai("apply", path, "--ignore-findings")
    assert "create 0, update 0, unchanged 2" in one_line(again.out), again


# --- kai run -----------------------------------------------------------------------------------


@pytest.mark.parametrize("reply", REFUSALS)
def test_run_write_refusal_writes_nothing(cluster: Cluster, namespace: str, reply: str) -> None:
    cluster.create(namespace, deployment("web", namespace))
    mark = cluster.audit_mark()
    child = spawn(cluster, "run", "-c", "scale deploy/web --replicas=3", "-n", namespace)
    prompt(child, "[y]es / [n]o / [a]lways scale this session: ")
    answer(child, reply)
    code, out = finish(child)
    assert code != 0, out
    if reply in ("CTRL-C", "EOF"):
        assert code == 130, out  # cancelled
    assert writes(cluster.audit_events(mark, user="admin")) == [], out
    assert cluster.apps.read_namespaced_deployment("web", namespace).spec.replicas == 1


def test_run_write_yes_runs_it(cluster: Cluster, namespace: str) -> None:
    cluster.create(namespace, deployment("web", namespace))
    mark = cluster.audit_mark()
    child = spawn(cluster, "run", "-c", "scale deploy/web --replicas=3", "-n", namespace)
    prompt(child, "[y]es / [n]o / [a]lways scale this session: ")
    answer(child, "y")
    code, out = finish(child)
    assert code == 0, out
    assert writes(cluster.audit_events(mark, user="admin")) == ["patch deployments/web"], out
    assert cluster.apps.read_namespaced_deployment("web", namespace).spec.replicas == 3


@pytest.mark.parametrize("reply", ["y", "yes", "", "web2", "EOF", "CTRL-C"])
def test_run_delete_wants_the_typed_name(cluster: Cluster, namespace: str, reply: str) -> None:
    cluster.create(namespace, deployment("web", namespace))
    mark = cluster.audit_mark()
    child = spawn(cluster, "run", "-c", "delete deploy web", "-n", namespace)
    prompt(child, "type 'web' to run it, anything else to stop: ")
    assert "deployment.apps/web" in (child.before or "")  # the preview listed what it would delete
    answer(child, reply)
    code, out = finish(child)
    assert code != 0, out
    assert writes(cluster.audit_events(mark, user="admin")) == [], out
    assert cluster.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/web") is not None


def test_run_delete_with_the_typed_name_deletes(cluster: Cluster, namespace: str) -> None:
    cluster.create(namespace, deployment("web", namespace))
    mark = cluster.audit_mark()
    child = spawn(cluster, "run", "-c", "delete deploy web", "-n", namespace)
    prompt(child, "type 'web' to run it, anything else to stop: ")
    answer(child, "web")
    code, out = finish(child)
    assert code == 0, out
    assert writes(cluster.audit_events(mark, user="admin")) == ["delete deployments/web"], out

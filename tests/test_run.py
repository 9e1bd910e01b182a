"""`kai run` end to end: a stand-in kubectl on PATH records exactly which commands ran."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import FakeKubectl, model_tapes

recorder = model_tapes()
GET_DEPLOY = (
    "NAME    READY   UP-TO-DATE   AVAILABLE   AGE\nagent   2/2     2            2           3d4h\n"
)
GET_PODS = (
    "NAME                     READY   STATUS    RESTARTS   AGE\n"
    "agent-7d9c6b5f4-2kq8n    1/1     Running   0          3d4h\n"
    "agent-7d9c6b5f4-x2x9z    1/1     Running   0          3d4h\n"
)


SCALE_CAN_I = ["auth", "can-i", "patch", "deploy", "--subresource=scale", "-n", "agents"]
SCALE_DRY = ["scale", "deploy/agent", "--replicas=5", "--dry-run=server", "-n", "agents"]
SCALE = ["scale", "deploy/agent", "--replicas=5", "-n", "agents"]


def scale_scenario(k: FakeKubectl) -> None:
    k.on(SCALE_CAN_I, "yes\n")
    k.on(SCALE_DRY, "deployment.apps/agent scaled (server dry run)\n")
    k.on(SCALE, "deployment.apps/agent scaled\n")


def test_a_read_runs_directly(kai, kubectl: FakeKubectl) -> None:
    kubectl.on(["get", "pods", "-n", "agents"], GET_PODS)
    r = kai("run", "-c", "kubectl get pods", "-n", "agents")
    assert r.code == 0, r.out
    assert kubectl.calls() == [["get", "pods", "-n", "agents"]]
    assert "agent-7d9c6b5f4-x2x9z" in r.out and "kubectl get pods -n agents" in r.out


def test_no_cluster_configured_is_one_line_and_runs_no_kubectl(
    kai, kubectl: FakeKubectl, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    r = kai("run", "-c", "get pods")
    assert r.code == 4
    assert r.err.strip().splitlines() == [
        "error: no cluster configured: KUBECONFIG or ~/.kube/config: no such file "
        "(give --kubeconfig or --context)"
    ]
    assert kubectl.calls() == []
    # a suggest-only run needs no cluster; an explicit kubeconfig is kubectl's to judge
    assert kai("run", "-c", "get pods", "--approval", "suggest-only").code == 0
    kubectl.on(["get", "pods", "--kubeconfig", "k.yaml"], GET_PODS)
    assert kai("run", "-c", "get pods", "--kubeconfig", "k.yaml").code == 0
    assert kubectl.calls() == [["get", "pods", "--kubeconfig", "k.yaml"]]


def test_a_write_without_yes_and_without_a_terminal_runs_nothing(kai, kubectl: FakeKubectl) -> None:
    scale_scenario(kubectl)
    r = kai("run", "-c", "scale deploy/agent --replicas=5", "-n", "agents")
    assert r.code == 2
    assert kubectl.calls() == []
    assert "needs --yes: kubectl scale deploy/agent --replicas=5 -n agents" in r.out


def test_a_write_is_preflighted_dry_run_then_applied(kai, kubectl: FakeKubectl) -> None:
    scale_scenario(kubectl)
    r = kai("run", "-c", "scale deploy/agent --replicas=5", "-n", "agents", "--yes")
    assert r.code == 0, r.out
    assert kubectl.calls() == [SCALE_CAN_I, SCALE_DRY, SCALE]
    assert "server dry run: deployment.apps/agent scaled (server dry run)" in r.out


def test_kai_connection_flags_reach_every_call(kai, kubectl: FakeKubectl) -> None:
    argv = ["get", "deploy", "-n", "agents", "--context", "staging", "--kubeconfig", "/tmp/kc"]
    kubectl.on(argv, GET_DEPLOY)
    r = kai(
        "run", "-c", "get deploy", "-n", "agents", "--context", "staging", "--kubeconfig", "/tmp/kc"
    )
    assert r.code == 0 and kubectl.calls() == [argv]


def test_permission_preflight_lists_every_denial_and_runs_nothing(
    kai, kubectl: FakeKubectl
) -> None:
    kubectl.on(SCALE_CAN_I, "no\n", code=1)
    kubectl.on(["auth", "can-i", "patch", "deploy", "-n", "agents"], "no\n", code=1)
    r = kai(
        "run",
        "-c",
        "scale deploy/agent --replicas=5",
        "-c",
        "set image deploy/agent agent=ghcr.io/acme/agent:1.5",
        "-n",
        "agents",
        "--yes",
    )
    assert r.code == 4
    assert "patch deploy/scale in namespace agents" in r.out
    assert "patch deploy in namespace agents" in r.out
    assert all(c[:2] == ["auth", "can-i"] for c in kubectl.calls())  # nothing but the checks ran


def test_destructive_needs_both_flags_without_a_terminal(kai, kubectl: FakeKubectl) -> None:
    r = kai("run", "-c", "delete deploy agent", "-n", "agents", "--yes")
    assert r.code == 2 and kubectl.calls() == []
    assert "needs --yes --allow-destructive" in r.out


def test_destructive_with_both_flags_shows_what_it_touches(kai, kubectl: FakeKubectl) -> None:
    kubectl.on(["auth", "can-i", "delete", "pods", "-n", "agents"], "yes\n")
    kubectl.on(
        ["get", "pods", "-l", "app=agent", "-o", "name", "-n", "agents"],
        "pod/agent-7d9c6b5f4-2kq8n\npod/agent-7d9c6b5f4-x2x9z\n",
    )
    kubectl.on(
        ["delete", "pods", "-l", "app=agent", "--dry-run=server", "-n", "agents"],
        'pod "agent-7d9c6b5f4-2kq8n" deleted (server dry run)\n'
        'pod "agent-7d9c6b5f4-x2x9z" deleted (server dry run)\n',
    )
    kubectl.on(
        ["delete", "pods", "-l", "app=agent", "-n", "agents"],
        'pod "agent-7d9c6b5f4-2kq8n" deleted\npod "agent-7d9c6b5f4-x2x9z" deleted\n',
    )
    r = kai("run", "-c", "delete pods -l app=agent", "-n", "agents", "--yes", "--allow-destructive")
    assert r.code == 0, r.out
    assert "it would affect 2 objects" in r.out and "pod/agent-7d9c6b5f4-2kq8n" in r.out
    assert kubectl.calls()[-1] == ["delete", "pods", "-l", "app=agent", "-n", "agents"]


def test_on_a_terminal_destructive_needs_the_name_typed(
    kai, kubectl: FakeKubectl, terminal: Callable[[str], None]
) -> None:
    kubectl.on(["auth", "can-i", "delete", "deploy", "-n", "agents"], "yes\n")
    kubectl.on(["get", "deploy", "agent", "-o", "name", "-n", "agents"], "deployment.apps/agent\n")
    kubectl.on(
        ["delete", "deploy", "agent", "--dry-run=server", "-n", "agents"],
        'deployment.apps "agent" deleted (server dry run)\n',
    )
    kubectl.on(["delete", "deploy", "agent", "-n", "agents"], 'deployment.apps "agent" deleted\n')
    terminal("yes\n")  # --yes alone, and "yes" typed: neither is the name
    r = kai("run", "-c", "delete deploy agent", "-n", "agents", "--yes")
    assert r.code == 130
    assert ["delete", "deploy", "agent", "-n", "agents"] not in kubectl.calls()
    terminal("agent\n")
    r = kai("run", "-c", "delete deploy agent", "-n", "agents")
    assert r.code == 0, r.out
    assert kubectl.calls()[-1] == ["delete", "deploy", "agent", "-n", "agents"]


def test_always_for_this_session_covers_the_verb_but_never_destructive(
    kai, kubectl: FakeKubectl, terminal: Callable[[str], None]
) -> None:
    for n in ("3", "4"):
        kubectl.on(
            ["scale", "deploy/agent", f"--replicas={n}", "--dry-run=server", "-n", "agents"],
            "deployment.apps/agent scaled (server dry run)\n",
        )
        kubectl.on(
            ["scale", "deploy/agent", f"--replicas={n}", "-n", "agents"],
            "deployment.apps/agent scaled\n",
        )
    kubectl.on(SCALE_CAN_I, "yes\n")
    kubectl.on(["auth", "can-i", "delete", "deploy", "-n", "agents"], "yes\n")
    kubectl.on(["get", "deploy", "agent", "-o", "name", "-n", "agents"], "deployment.apps/agent\n")
    kubectl.on(
        ["delete", "deploy", "agent", "--dry-run=server", "-n", "agents"],
        'deployment.apps "agent" deleted (server dry run)\n',
    )
    # One "always" answer: the second scale is not asked; the delete still wants the name typed.
    terminal("a\nyes\n")
    r = kai(
        "run",
        "-c",
        "scale deploy/agent --replicas=3",
        "-c",
        "scale deploy/agent --replicas=4",
        "-c",
        "delete deploy agent",
        "-n",
        "agents",
    )
    assert r.code == 130, r.out
    assert ["scale", "deploy/agent", "--replicas=4", "-n", "agents"] in kubectl.calls()
    assert ["delete", "deploy", "agent", "-n", "agents"] not in kubectl.calls()
    assert r.out.count("[a]lways") == 1


def test_a_failing_dry_run_stops_everything_after_it(kai, kubectl: FakeKubectl) -> None:
    kubectl.on(["auth", "can-i", "patch", "deploy", "--subresource=scale", "-n", "agents"], "yes\n")
    kubectl.on(
        ["scale", "deploy/agentx", "--replicas=5", "--dry-run=server", "-n", "agents"],
        stderr='Error from server (NotFound): deployments.apps "agentx" not found\n',
        code=1,
    )
    r = kai(
        "run",
        "-c",
        "scale deploy/agentx --replicas=5",
        "-c",
        "rollout status deploy/agentx",
        "-n",
        "agents",
        "--yes",
    )
    assert r.code == 4
    assert 'deployments.apps "agentx" not found' in r.out
    assert "not run kubectl rollout status deploy/agentx -n agents" in r.out
    assert ["scale", "deploy/agentx", "--replicas=5", "-n", "agents"] not in kubectl.calls()


def test_suggest_only_runs_nothing(kai, kubectl: FakeKubectl, tmp_path: Path) -> None:
    r = kai("run", "-c", "get pods", "-c", "delete ns agents", "--approval", "suggest-only")
    assert r.code == 0 and kubectl.calls() == []
    assert "kubectl get pods" in r.out and "kubectl delete ns agents" in r.out
    (tmp_path / ".kai.yaml").write_text("approval: suggest-only\n")
    r = kai("run", "-c", "get pods")
    assert r.code == 0 and kubectl.calls() == [] and "suggest-only" in r.out


def test_confirm_all_asks_even_for_reads(kai, kubectl: FakeKubectl) -> None:
    r = kai("run", "-c", "get pods", "--approval", "confirm-all")
    assert r.code == 2 and kubectl.calls() == []


def test_secret_values_are_not_printed_without_a_yes(kai, kubectl: FakeKubectl) -> None:
    r = kai("run", "-c", "get secret db -o yaml", "-n", "agents")
    assert r.code == 2 and kubectl.calls() == []


def test_refused_commands_never_run_and_the_rest_does(kai, kubectl: FakeKubectl) -> None:
    kubectl.on(["get", "pods"], GET_PODS)
    r = kai("run", "-c", "exec -it agent-7d9c6b5f4-x2x9z -- sh", "-c", "get pods")
    assert r.code == 1
    assert kubectl.calls() == [["get", "pods"]]
    assert "kubectl exec opens a shell" in r.out


def test_a_refusal_in_suggest_only_exits_1_with_a_one_line_error(kai, kubectl: FakeKubectl) -> None:
    """The real model's answer in tests/cassettes/local/run_scale.yaml was one argv string,
    "kubectl scale deployment web --replicas=3": refused as not kubectl, yet kai exited 0. A
    refusal is never a clean exit (README: 1 something was refused), in suggest-only too."""
    r = kai("run", "-c", "curl -s https://example.com/x.sh", "--approval", "suggest-only")
    assert r.code == 1 and kubectl.calls() == []
    assert "'curl' is not kubectl" in r.out
    assert r.err == "error: kai refused 1 of 1 proposed command; a refused command never runs\n"
    r = kai("run", "-c", "get pods", "-c", "exec -it agent -- sh", "--approval", "suggest-only")
    assert r.code == 1 and kubectl.calls() == [] and "refused 1 of 2 proposed commands" in r.err
    assert kai("run", "-c", "get pods", "--approval", "suggest-only").err == ""  # nothing refused


def test_unreadable_command_lines_are_a_usage_error(kai, kubectl: FakeKubectl) -> None:
    r = kai("run", "-c", "get pods 'unterminated")
    assert r.code == 2 and "cannot split" in r.err and "Traceback" not in r.err


def test_no_kubectl_on_path_is_a_cluster_error(kai, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("KAI_KUBECTL", raising=False)
    r = kai("run", "-c", "get pods")
    assert r.code == 4 and "kubectl is not on PATH" in r.err


# ---------- with a model (recorded) ----------


def test_run_from_english(kai, kubectl: FakeKubectl) -> None:
    kubectl.on(["get", "deploy", "agent", "-n", "agents"], GET_DEPLOY)
    scale_scenario(kubectl)
    with recorder.use_cassette("openai_run_scale.yaml") as tape:
        r = kai("run", "scale the agent to 5", "-n", "agents", "--yes", "-m", "openai/gpt-4.1-mini")
    assert r.code == 0, r.out + r.err
    assert tape.play_count == 1
    sent = json.loads(tape.requests[0].body)
    assert sent["response_format"]["json_schema"]["schema"]["required"] == [
        "commands",
        "explanation",
        "questions",
    ]
    assert kubectl.calls() == [
        SCALE_CAN_I,
        ["get", "deploy", "agent", "-n", "agents"],
        SCALE_DRY,
        SCALE,
    ]
    assert "HPA's minReplicas" in r.out  # the model's explanation is shown


def test_a_hostile_answer_runs_only_the_plain_read(kai, kubectl: FakeKubectl) -> None:
    kubectl.on(["get", "pods", "-n", "agents"], GET_PODS)
    with recorder.use_cassette("openai_run_hostile.yaml"):
        r = kai(
            "run",
            "how many pods are running?",
            "-n",
            "agents",
            "--yes",
            "--allow-destructive",
            "-m",
            "openai/gpt-4.1-mini",
        )
    assert r.code == 1
    assert kubectl.calls() == [["get", "pods", "-n", "agents"]]
    assert "not pipelines" in r.out and "--as" in r.out and "shell syntax" in r.out


def test_prose_around_the_answer_is_tolerated(kai, kubectl: FakeKubectl) -> None:
    kubectl.on(["auth", "can-i", "patch", "deploy", "-n", "agents"], "yes\n")
    kubectl.on(
        ["rollout", "undo", "deploy/agent", "--dry-run=server", "-n", "agents"],
        "deployment.apps/agent Pod Template:\n  Labels: app=agent\n (server dry run)\n",
    )
    kubectl.on(
        ["rollout", "undo", "deploy/agent", "-n", "agents"], "deployment.apps/agent rolled back\n"
    )
    with recorder.use_cassette("openai_run_prose.yaml"):
        r = kai(
            "do", "roll back the last deploy", "-n", "agents", "--yes", "-m", "openai/gpt-4.1-mini"
        )
    assert r.code == 0, r.out + r.err
    assert kubectl.calls()[-1] == ["rollout", "undo", "deploy/agent", "-n", "agents"]


# ---------- Secrets, raw paths and the namespace the person chose ----------


def test_a_raw_read_of_a_secret_asks_like_get_secret_o_yaml(kai, kubectl: FakeKubectl) -> None:
    for line in (
        "get --raw /api/v1/namespaces/agents/secrets/db",
        "get Secret db -o yaml",
        "get secrets.v1. db -o go-template-file=/tmp/t.tmpl",
    ):
        r = kai("run", "-c", line, "-n", "agents")
        assert r.code == 2 and kubectl.calls() == [], line
        assert "needs --yes" in r.out


def test_raw_writes_are_refused(kai, kubectl: FakeKubectl) -> None:
    r = kai("run", "-c", "delete --raw /api/v1/namespaces/agents", "--yes", "--allow-destructive")
    assert r.code == 1 and kubectl.calls() == []
    assert "kubectl delete --raw sends a request to the API that kai cannot dry-run" in r.out


def test_a_chosen_namespace_refuses_deleting_another(kai, kubectl: FakeKubectl) -> None:
    r = kai(
        "run", "-n", "team-a", "-c", "delete namespace other-team", "--yes", "--allow-destructive"
    )
    assert r.code == 1 and kubectl.calls() == []
    assert "it changes namespace 'other-team' but you chose 'team-a'" in r.out


def test_a_refused_command_is_shown_with_its_own_namespace_once(kai, kubectl: FakeKubectl) -> None:
    r = kai("run", "-n", "team-a", "-c", "get pods -n other-team")
    assert r.code == 1 and kubectl.calls() == []
    assert "kubectl get pods -n other-team\n" in r.out
    assert "-n other-team -n team-a" not in r.out


KINDS = (
    "configmaps\nendpoints\nevents\nlimitranges\npersistentvolumeclaims\npods\npodtemplates\n"
    "replicationcontrollers\nresourcequotas\nsecrets\nserviceaccounts\nservices\n"
    "controllerrevisions.apps\ndaemonsets.apps\ndeployments.apps\nreplicasets.apps\n"
    "statefulsets.apps\nhorizontalpodautoscalers.autoscaling\ncronjobs.batch\njobs.batch\n"
    "leases.coordination.k8s.io\nendpointslices.discovery.k8s.io\nevents.events.k8s.io\n"
    "ingresses.networking.k8s.io\nnetworkpolicies.networking.k8s.io\npoddisruptionbudgets.policy\n"
    "rolebindings.rbac.authorization.k8s.io\nroles.rbac.authorization.k8s.io\n"
    "csistoragecapacities.storage.k8s.io\n"
)
CONTENTS = (
    "configmap/agent-config\nconfigmap/kube-root-ca.crt\npersistentvolumeclaim/data\n"
    "secret/db-credentials\nserviceaccount/agent\nserviceaccount/default\nservice/agent\n"
    "deployment.apps/agent\nreplicaset.apps/agent-7d9c6b5f4\n"
    "ingress.networking.k8s.io/agent\nnetworkpolicy.networking.k8s.io/agent\n"
    "rolebinding.rbac.authorization.k8s.io/agent\nrole.rbac.authorization.k8s.io/agent\n"
)


def test_deleting_a_namespace_lists_every_kind_it_holds_by_name_only(
    kai, kubectl: FakeKubectl, terminal
) -> None:
    listed = [k for k in KINDS.split() if not k.startswith("events")]
    kubectl.on(["auth", "can-i", "delete", "namespace", "-n", "team-a"], "yes\n")
    kubectl.on(
        ["api-resources", "--verbs=list", "--namespaced", "-o", "name", "-n", "team-a"], KINDS
    )
    kubectl.on(["get", ",".join(listed), "-n", "team-a", "-o", "name"], CONTENTS)
    kubectl.on(
        ["delete", "namespace", "team-a", "--dry-run=server", "-n", "team-a"],
        'namespace "team-a" deleted (server dry run)\n',
    )
    terminal("team\n")
    r = kai("run", "-n", "team-a", "-c", "delete namespace team-a")
    assert r.code == 130, r.out
    assert "it would affect 14 objects" in r.out  # the namespace and its 13 objects
    for name in ("secret/db-credentials", "configmap/agent-config", "serviceaccount/agent"):
        assert f"  {name}\n" in r.out
    for name in ("persistentvolumeclaim/data", "role.rbac.authorization.k8s.io/agent"):
        assert f"  {name}\n" in r.out
    calls = kubectl.calls()
    assert ["delete", "namespace", "team-a", "-n", "team-a"] not in calls
    reads = [c for c in calls if c[0] == "get"]
    assert reads and all(c[-2:] == ["-o", "name"] for c in reads)  # names only, never values

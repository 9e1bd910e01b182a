"""kai explain and kai critique: the learning commands, offline and against recorded model answers."""

from __future__ import annotations

import io
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, ROOT, model_tapes

from kai.errors import ModelError
from kai.learn.critique import features, parse_grading
from kai.learn.explain import FindingNote, summarize
from kai.models import Finding, ObjectRef, Severity
from kai.policy.catalog import load_rules

DATA = Path(__file__).parent / "data" / "learn"
AGENT = str(EXAMPLES / "agent-draft" / "agent.yaml")
HARDENED = str(EXAMPLES / "agent-hardened")
MODEL = "openai/gpt-4.1-mini"
recorder = model_tapes()


@pytest.fixture(autouse=True)
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline unless a test passes --model; a fake key for the replayed exchanges."""
    monkeypatch.delenv("KAI_MODEL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-0000000000")


def _schema_description(definition: str, prop: str) -> str:
    """The text `kubectl explain` shows, read straight from the bundled schema."""
    from kai.policy.validate import default_version, schema_root

    defs = json.loads(
        (schema_root() / f"v{default_version()}-local" / "_definitions.json").read_text()
    )["$defs"]
    description: str = defs[definition]["properties"][prop]["description"]
    return description


def _fields(data: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    obj = next(o for o in data["objects"] if o["object"]["kind"] == kind)
    return {f["path"]: f for f in obj["fields"]}


# ---------- kai explain ----------


def test_explain_walks_each_object_in_order_with_schema_text(kai) -> None:
    r = kai("explain", AGENT)
    assert r.code == 0, r.err
    out = r.out
    positions = [out.index(h) for h in ("Deployment/agent", "Service/agent", "Ingress/agent")]
    assert positions == sorted(positions)
    assert "Runs a set of identical, interchangeable pods" in out  # what the kind is for
    assert "Deployment enables declarative updates for Pods and ReplicaSets." in out  # its schema
    assert "replicas = 3" in out and "Number of desired pods." in out
    assert "List of containers belonging to the pod." in out
    assert "apiVersion" not in out.split("\n", 1)[1]  # shown in the header, not as noise


def test_explain_field_descriptions_are_the_schemas_own(kai) -> None:
    data = kai("explain", HARDENED, "-o", "json").json()
    fields = _fields(data, "Deployment")
    fields.update(_fields(kai("explain", AGENT, "-o", "json").json(), "Deployment"))
    replicas = _schema_description("io.k8s.api.apps.v1.DeploymentSpec", "replicas")
    resources = _schema_description("io.k8s.api.core.v1.Container", "resources")
    assert resources.startswith("Compute Resources required by this container.")
    assert fields["spec.replicas"]["description"] == summarize(replicas)[0]
    assert fields["spec.replicas"]["description"].startswith("Number of desired pods.")
    res = fields["spec.template.spec.containers[0].resources"]
    assert res["description"] == "Compute Resources required by this container. Cannot be updated."
    assert (
        res["docs"]
        == "https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/"
    )
    assert res["kubectl_explain"] == "deployment.spec.template.spec.containers.resources"
    assert "More info" not in json.dumps(data)  # links are split out, descriptions trimmed


def test_explain_puts_findings_under_their_object_and_field(kai) -> None:
    data = kai("explain", AGENT, "-o", "json").json()
    objects = {o["object"]["kind"]: o for o in data["objects"]}
    assert [f["rule"] for f in objects["Ingress"]["findings"]] == ["KAI-NET-006"]
    assert {f["rule"] for f in objects["Service"]["findings"]} == {"KAI-META-001", "KAI-NET-005"}
    deployment = _fields(data, "Deployment")
    container = deployment["spec.template.spec.containers[0]"]["findings"]
    image = next(f for f in container if f["rule"] == "KAI-IMG-001")
    assert image["concept"] == "container images"
    assert image["docs"] == "https://kubernetes.io/docs/concepts/containers/images/#image-names"
    assert image["rationale"].startswith("An image reference without a tag means :latest")
    assert "KAI-SEC-008" in {f["rule"] for f in deployment["spec.template.spec"]["findings"]}
    assert "KAI-NET-001" in {f["rule"] for f in objects["Deployment"]["findings"]}  # no path
    attached = sum(
        len(o["findings"]) + sum(len(f["findings"]) for f in o["fields"]) for o in data["objects"]
    )
    assert attached == data["findings"] == 22  # every finding shown exactly once

    out = kai("explain", AGENT).out
    service, ingress = out.index("Service/agent"), out.index("Ingress/agent")
    assert out.index("Deployment/agent") < out.index("KAI-IMG-001") < service
    assert service < out.index("KAI-NET-005") < ingress < out.index("KAI-NET-006")
    assert "study container images" in out


def test_explain_masks_secrets_and_marks_unknown_fields(kai, tmp_path: Path) -> None:
    assert "sk-proj-REDACTED-EXAMPLE-KEY" not in kai("explain", AGENT).out
    typo = tmp_path / "typo.yaml"
    typo.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replica: 2\n"
        "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
        "    spec:\n      containers: [{name: web, image: 'nginx:1.27'}]\n"
    )
    data = kai("explain", str(typo), "-o", "json").json()
    field = _fields(data, "Deployment")["spec.replica"]
    assert field["known"] is False and field["description"] is None
    assert [f["rule"] for f in field["findings"]] == ["KAI-SCH-001"]
    assert "unknown field: not in the schema" in kai("explain", str(typo)).out


@pytest.mark.parametrize("name", ["malformed.yaml", "bomb.yaml"])
def test_explain_refuses_bad_yaml_in_one_line(kai, name: str) -> None:
    r = kai("explain", str(DATA / name))
    assert r.code == 2 and r.out == ""
    assert r.err.startswith("error: ") and r.err.count("\n") == 1


def test_explain_depth_limits_the_walk(kai) -> None:
    shallow = _fields(kai("explain", AGENT, "-o", "json", "--depth", "2").json(), "Deployment")
    assert "spec.template" in shallow and "spec.template.spec" not in shallow
    assert shallow["spec.template"]["value"].startswith("metadata=")  # summarised inline


def test_explain_with_a_model_adds_a_narrative(kai, sent_bodies: list[dict[str, Any]]) -> None:
    with recorder.use_cassette("explain_narrative.yaml") as cassette:
        r = kai("explain", AGENT, "--model", MODEL, "--no-cache", "-o", "json")
    assert r.code == 0 and cassette.play_count == 1
    data = r.json()
    assert data["narrative"].startswith("These three objects run the agent")
    assert data["model"]["model"] == MODEL and data["model"]["calls"] == 1
    assert data["model"]["prompt_tokens"] == 2480
    sent = json.dumps(sent_bodies)
    assert "sk-proj-REDACTED-EXAMPLE-KEY" not in sent and "KAI-IMG-001" in sent
    assert "response_format" not in sent_bodies[0]  # prose, not JSON
    with recorder.use_cassette("explain_narrative.yaml"):
        human = kai("explain", AGENT, "--model", MODEL, "--no-cache").out
    assert "In short" in human and f"narrative by {MODEL}" in human


def test_explain_is_offline_without_a_model(kai, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*_a, **_k):
        raise AssertionError("explain went to the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    data = kai("explain", AGENT, "-o", "json").json()
    assert data["narrative"] is None and data["model"] is None
    monkeypatch.setenv("KAI_MODEL", MODEL)
    assert kai("explain", AGENT, "--offline", "-o", "json").json()["narrative"] is None


# ---------- kai critique ----------


def _summary(data: dict[str, Any]) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    matched = [
        (m["answer"], m["finding"]["rule"], m["finding"]["object"]["kind"]) for m in data["matched"]
    ]
    repeated = [(m["answer"], m["finding"]["rule"]) for m in data["repeated"]]
    unmatched = [(u["answer"], u["text"]) for u in data["unmatched"]]
    missed = [(f["rule"], f["object"]["kind"]) for f in data["missed"]]
    return matched, repeated, unmatched, missed


def test_critique_answers_give_exact_lists_and_score(kai) -> None:
    r = kai("critique", AGENT, "--answers", str(DATA / "answers.txt"), "-o", "json")
    assert r.code == 0, r.err
    data = r.json()
    matched, repeated, unmatched, missed = _summary(data)
    assert matched == [
        (1, "KAI-IMG-001", "Deployment"),
        (2, "KAI-PRB-001", "Deployment"),
        (3, "KAI-CFG-001", "Deployment"),
        (4, "KAI-NET-005", "Service"),
        (5, "KAI-NET-006", "Ingress"),
    ]
    assert repeated == [(8, "KAI-IMG-001")]  # "not pinned" is the latest-tag problem again
    assert unmatched == [(6, "replicas should be 5"), (7, "logging is set to debug")]
    assert missed == [
        ("KAI-NET-001", "Deployment"),
        ("KAI-RES-001", "Deployment"),
        ("KAI-SEC-001", "Deployment"),
        ("KAI-AVL-001", "Deployment"),
        ("KAI-PRB-002", "Deployment"),
        ("KAI-RES-004", "Deployment"),
        ("KAI-SEC-003", "Deployment"),
        ("KAI-SEC-004", "Deployment"),
        ("KAI-SEC-006", "Deployment"),
        ("KAI-SEC-007", "Deployment"),
        ("KAI-SEC-008", "Deployment"),
        ("KAI-AVL-002", "Deployment"),
        ("KAI-IMG-002", "Deployment"),
        ("KAI-META-001", "Deployment"),
        ("KAI-RES-002", "Deployment"),
        ("KAI-SEC-020", "Deployment"),
        ("KAI-META-001", "Service"),
    ]
    assert data["score"] == {"found": 5, "total": 22, "percent": 22.7}
    assert data["graded_by"] == "keywords" and data["model"] is None
    assert len(data["answers"]) == 8  # the comment and the blank line are not answers


def test_critique_human_view_explains_what_was_missed(kai) -> None:
    r = kai("critique", AGENT, "--answers", str(DATA / "answers.txt"))
    assert r.code == 0
    out = r.out
    assert "image: ghcr.io/acme/agent:latest" in out  # the YAML the learner reviews
    assert "Found (5)" in out and "Missed (17)" in out and "Not among kai's findings (2)" in out
    missed = out[out.index("Missed (17)") : out.index("Not among")]
    assert "KAI-NET-001" in missed and "study network policies" in missed
    assert "https://kubernetes.io/docs/concepts/services-networking/network-policies/" in missed
    assert "why Kubernetes networking is open by default" in missed
    assert "Score 5 / 22 (22.7%) · graded by keywords" in out


def test_critique_min_severity_narrows_the_exercise(kai) -> None:
    data = kai(
        "critique",
        AGENT,
        "--answers",
        str(DATA / "answers.txt"),
        "--min-severity",
        "error",
        "-o",
        "json",
    ).json()
    assert data["score"] == {"found": 3, "total": 6, "percent": 50.0}
    assert [m[1] for m in _summary(data)[0]] == ["KAI-IMG-001", "KAI-PRB-001", "KAI-CFG-001"]


def test_critique_understands_synonyms(kai) -> None:
    data = kai(
        "critique", AGENT, "--answers", str(DATA / "answers-synonyms.txt"), "-o", "json"
    ).json()
    matched, _, unmatched, _ = _summary(data)
    assert [(a, rule) for a, rule, _ in matched] == [
        (1, "KAI-RES-001"),  # "cpu or memory limits"
        (2, "KAI-SEC-001"),  # "uid 0"
        (3, "KAI-PRB-001"),  # "health check"
        (4, "KAI-NET-001"),  # "firewall"
    ]
    assert unmatched == []


@pytest.mark.parametrize(
    ("answer", "idea"),
    [
        ("no memory requests", "=resources"),
        ("runAsNonRoot is not set", "=root"),
        ("missing liveness checks", "=probe"),
        ("uses :latest", "=image tag"),
        ("no netpol", "=network policy"),
        ("password in plain text", "=secret"),
        ("root filesystem is writable", "=read-only filesystem"),
    ],
)
def test_synonym_table(answer: str, idea: str) -> None:
    assert idea in features(answer)
    assert "=root" not in features("root filesystem is writable")  # the longer phrase wins


def test_critique_prefers_the_container_an_answer_names(kai, tmp_path: Path) -> None:
    for name, index in (("metrics", 1), ("web", 0)):
        answers = tmp_path / f"{name}.txt"
        answers.write_text(f"the {name} container has no readiness probe\n")
        data = kai(
            "critique", str(DATA / "sidecar.yaml"), "--answers", str(answers), "-o", "json"
        ).json()
        (match,) = data["matched"]
        assert match["finding"]["rule"] == "KAI-PRB-001"
        assert match["finding"]["path"] == f"spec.template.spec.containers[{index}]"


def test_critique_prefers_the_kind_an_answer_names(kai, tmp_path: Path) -> None:
    answers = tmp_path / "a.txt"
    answers.write_text("the service lacks the recommended labels\n")
    data = kai("critique", AGENT, "--answers", str(answers), "-o", "json").json()
    assert [(m["finding"]["rule"], m["finding"]["object"]["kind"]) for m in data["matched"]] == [
        ("KAI-META-001", "Service")
    ]


def test_critique_without_a_terminal_or_answers_exits_2(kai) -> None:
    r = kai("critique", AGENT, stdin="")
    assert r.code == 2 and "--answers FILE" in r.err and r.err.count("\n") == 1
    r = kai("critique", "-", stdin=Path(AGENT).read_text())
    assert r.code == 2 and "--answers" in r.err
    assert kai("critique", "--answers", str(DATA / "answers.txt")).code == 2  # nothing to critique


def test_critique_reads_answers_on_a_terminal(kai, monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.StringIO(
        "no readiness probe\nthe image uses latest\n\nignored after the blank line\n"
    )
    stdin.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr(sys, "stdin", stdin)
    r = kai("critique", AGENT)
    assert r.code == 0 and "What problems do you see?" in r.out
    assert "Score 2 / 22 (9.1%)" in r.out


def test_critique_reads_the_manifest_from_stdin_with_answers_file(kai) -> None:
    r = kai(
        "critique",
        "-",
        "--answers",
        str(DATA / "answers.txt"),
        "-o",
        "json",
        stdin=Path(AGENT).read_text(),
    )
    assert r.code == 0 and r.json()["score"]["found"] == 5 and r.json()["source"] == "-"


def test_critique_json_contract(kai) -> None:
    data = kai("critique", AGENT, "--answers", str(DATA / "answers.txt"), "-o", "json").json()
    assert set(data) == {
        "version", "source", "graded_by", "draft_by", "score", "answers",
        "matched", "repeated", "unmatched", "missed", "feedback", "model",
    }  # fmt: skip
    assert data["version"] == 1 and data["draft_by"] is None and data["feedback"] is None
    match = data["matched"][0]
    assert set(match) == {"answer", "text", "finding", "reason", "score"}
    assert match["reason"] == "keywords: image tag" and match["score"] > 2
    finding = match["finding"]
    assert {"rule", "severity", "message", "object", "file", "line", "path"} <= set(finding)
    assert {"title", "rationale", "remediation", "concept", "docs"} <= set(finding)
    for missed in data["missed"]:
        assert missed["concept"] and missed["docs"].startswith("https://kubernetes.io/")
        assert missed["rationale"] and missed["remediation"]


def test_critique_graded_by_a_model_is_more_generous(
    kai, sent_bodies: list[dict[str, Any]]
) -> None:
    answers = str(DATA / "answers-model.txt")
    offline = kai("critique", AGENT, "--answers", answers, "-o", "json").json()
    # offline matching knows that "hangs ... restarts" is a liveness probe, not that
    # "any pod in the cluster can talk to the agent" is about NetworkPolicies
    assert [(m["answer"], m["finding"]["rule"]) for m in offline["matched"]] == [
        (1, "KAI-IMG-001"),
        (3, "KAI-CFG-001"),
        (4, "KAI-PRB-002"),
    ]
    with recorder.use_cassette("critique_model.yaml") as cassette:
        r = kai(
            "critique", AGENT, "--answers", answers, "--model", MODEL, "--no-cache", "-o", "json"
        )
    assert r.code == 0 and cassette.play_count == 1
    data = r.json()
    assert data["graded_by"] == f"model {MODEL}"
    matched, repeated, unmatched, _ = _summary(data)
    assert [(a, rule) for a, rule, _ in matched] == [
        (1, "KAI-IMG-001"),
        (2, "KAI-NET-001"),
        (3, "KAI-CFG-001"),
        (4, "KAI-PRB-002"),
    ]
    assert repeated == [] and unmatched == [(5, "port 8000 is not a standard port")]
    assert data["score"] == {"found": 4, "total": 22, "percent": 18.2}
    assert data["feedback"].startswith("You spotted the secret")
    assert data["model"]["calls"] == 1
    body = sent_bodies[0]
    assert body["response_format"]["type"] == "json_schema"
    assert "sk-proj-REDACTED-EXAMPLE-KEY" not in json.dumps(body)
    assert "4. if the app hangs nobody restarts it" in body["messages"][-1]["content"]
    with recorder.use_cassette("critique_model.yaml"):
        human = kai("critique", AGENT, "--answers", answers, "--model", MODEL, "--no-cache").out
    assert f"graded by model {MODEL}" in human and "Feedback" in human


def test_critique_a_generated_first_draft(kai, sent_bodies: list[dict[str, Any]]) -> None:
    request = "deploy ghcr.io/acme/agent with 3 replicas behind an ingress at agent.example.com"
    answers = str(DATA / "answers-draft.txt")
    with recorder.use_cassette("critique_generate.yaml") as cassette:
        r = kai(
            "critique",
            "--generate",
            request,
            "--answers",
            answers,
            "--model",
            MODEL,
            "--no-cache",
            "-o",
            "json",
        )
    assert r.code == 0, r.err
    assert cassette.play_count == 2
    data = r.json()
    assert data["source"] == "draft.yaml" and data["draft_by"] == MODEL
    assert data["graded_by"] == f"model {MODEL}" and data["model"]["calls"] == 2
    assert [m["finding"]["rule"] for m in data["matched"]] == ["KAI-CFG-001", "KAI-RES-001"]
    # The draft is critiqued as the model wrote it, before kai's fixes: its flaws are all there.
    assert data["score"]["total"] == 22
    assert request in sent_bodies[0]["messages"][-1]["content"]
    with recorder.use_cassette("critique_generate.yaml") as cassette:
        offline = kai(
            "critique", "--generate", request, "--answers", answers, "--model", MODEL,
            "--no-cache", "--offline", "-o", "json",
        ).json()  # fmt: skip
    assert cassette.play_count == 1 and offline["graded_by"] == "keywords"
    assert [m["finding"]["rule"] for m in offline["matched"]] == ["KAI-CFG-001"]


def test_critique_generate_without_a_model_is_exit_3(kai) -> None:
    r = kai("critique", "--generate", "deploy nginx", "--answers", str(DATA / "answers.txt"))
    assert r.code == 3 and "no model configured" in r.err


def test_model_grading_drops_bad_and_duplicate_pairs() -> None:
    ref = ObjectRef("apps/v1", "Deployment", None, "x")
    findings = [
        FindingNote(Finding(rule, Severity.ERROR, "m", ref, "f", 1))
        for rule in ("KAI-IMG-001", "KAI-PRB-001")
    ]
    text = (
        'Here you go: {"matches": [{"answer": 1, "finding": 2, "reason": "r"}, '
        '{"answer": 1, "finding": 1, "reason": "again"}, {"answer": 2, "finding": 2, "reason": "taken"}, '
        '{"answer": 3, "finding": 9, "reason": "no such finding"}, {"answer": "x", "finding": 1}], '
        '"feedback": "ok"}'
    )
    matched, unmatched, feedback = parse_grading(text, ["a", "b", "c"], findings)
    assert [(m.answer, m.finding.finding.rule) for m in matched] == [(1, "KAI-PRB-001")]
    assert unmatched == [(2, "b"), (3, "c")] and feedback == "ok"
    with pytest.raises(ModelError, match="could not be read"):
        parse_grading("I think they did well.", ["a"], findings)


# ---------- the rules teach ----------


def test_every_rule_names_a_concept_and_a_docs_page() -> None:
    rules = load_rules()
    assert len(rules) >= 60
    lacking = [r.id for r in rules if not r.concept or not r.references.docs]
    assert lacking == []
    for r in rules:
        assert r.references.docs.startswith("https://kubernetes.io/docs/"), r.id  # type: ignore[union-attr]


def test_learning_prompts_ship_with_their_placeholders() -> None:
    from kai.model.prompts import render

    for name, values in (
        ("explain", {"manifests": "m", "findings": "f"}),
        ("critique", {"manifests": "m", "findings": "f", "answers": "a"}),
    ):
        messages = render(name, **values)
        assert [m["role"] for m in messages] == ["system", "user"]
        assert (ROOT / "prompts" / f"{name}.txt").is_file()


def test_explain_walks_at_most_max_objects_and_still_evaluates_them_all(kai) -> None:
    """--max-objects bounds the walk (a huge input stays bounded in time), never the verdict:
    every object is evaluated and counted, and the output says how many were not walked."""
    full = kai("explain", AGENT, "-o", "json").json()
    assert len(full["objects"]) > 1 and full["omitted_objects"] == 0
    capped = kai("explain", AGENT, "-o", "json", "--max-objects", "1").json()
    assert len(capped["objects"]) == 1
    assert capped["omitted_objects"] == len(full["objects"]) - 1
    assert capped["findings"] == full["findings"] > 0
    table = kai("explain", AGENT, "--max-objects", "1")
    assert f"{len(full['objects']) - 1} more objects evaluated but not walked" in " ".join(
        table.out.split()
    )

"""Writes the model cassettes of `kai explain` and `kai critique` (OpenAI chat-completions wire
format, as vcrpy records it), following build.py: no model key exists where kai is developed, so
the exchanges are authored from the provider's documented shapes. The requests hold exactly the
messages kai sends (built by kai's own functions); the answers are what a model would say.
Rerun after changing the examples, the prompts or the rules:

    python tests/cassettes/build_learn.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from build import DRAFT, ROOT, openai_ok, openai_request, plan, write

from kai.config import Config
from kai.generate import first_messages
from kai.inputs import load_paths
from kai.learn.critique import GRADE_SCHEMA, findings_to_find, grading_messages, read_answers
from kai.learn.explain import evaluate_all, narrative_messages
from kai.manifests import dump_yaml, load_text
from kai.model.plan import PLAN_SCHEMA
from kai.policy.catalog import load_rules

DATA = ROOT / "tests" / "data" / "learn"
AGENT = str(ROOT / "examples" / "agent-draft" / "agent.yaml")
GENERATE_REQUEST = (
    "deploy ghcr.io/acme/agent with 3 replicas behind an ingress at agent.example.com"
)


def _number(findings: list[Any], rule: str, kind: str = "Deployment") -> int:
    """The 1-based number kai gives a finding in the grading prompt."""
    for n, fn in enumerate(findings, 1):
        if fn.finding.rule == rule and fn.finding.object.kind == kind:
            return n
    raise SystemExit(f"no {rule} finding on a {kind}: rebuild the cassette's answer")


NARRATIVE = (
    "These three objects run the agent and put it on the internet: the Deployment keeps three "
    "identical pods running, the LoadBalancer Service gives them one address, and the Ingress "
    "routes agent.example.com to that Service. The most urgent problem is the OpenAI key written "
    "as a literal environment value: anyone who can read the Deployment can read it, so it "
    "belongs in a Secret referenced with secretKeyRef. Next, the image tag latest means two pods "
    "may run different code, so pin a version. Finally, without a readiness probe or resource "
    "requests the scheduler and the Service treat every pod as ready and free, which turns a "
    "slow start or a memory leak into failed requests."
)


def main() -> None:
    rules = load_rules()
    manifests, notes = load_paths([AGENT])
    report = evaluate_all(manifests, notes, rules)

    explain_msgs = narrative_messages(manifests, report, rules)
    write(
        "explain_narrative",
        [(openai_request(explain_msgs, None), openai_ok(NARRATIVE, 201, 2480, 168))],
    )

    answers = read_answers((DATA / "answers-model.txt").read_text().splitlines())
    findings = findings_to_find(report, rules)
    grading = {
        "matches": [
            {
                "answer": 1,
                "finding": _number(findings, "KAI-IMG-001"),
                "reason": "An unpinned image is the latest-tag problem.",
            },
            {
                "answer": 2,
                "finding": _number(findings, "KAI-NET-001"),
                "reason": "Open pod-to-pod traffic is what a missing NetworkPolicy allows.",
            },
            {
                "answer": 3,
                "finding": _number(findings, "KAI-CFG-001"),
                "reason": "The key written in the manifest is the literal secret finding.",
            },
            {
                "answer": 4,
                "finding": _number(findings, "KAI-PRB-002"),
                "reason": "Restarting a hung process is the liveness probe's job.",
            },
        ],
        "feedback": (
            "You spotted the secret, the moving image tag and the open network: the three that "
            "matter most. Study the security context next: none of your answers touched how the "
            "container runs (user, capabilities, filesystem)."
        ),
    }
    write(
        "critique_model",
        [
            (
                openai_request(grading_messages(manifests, findings, answers), GRADE_SCHEMA),
                openai_ok(json.dumps(grading), 202, 2950, 190),
            )
        ],
    )

    draft_text = dump_yaml(DRAFT)
    draft, draft_notes = load_text(draft_text, "draft.yaml")
    draft_findings = findings_to_find(evaluate_all(draft, draft_notes, rules), rules)
    draft_answers = read_answers((DATA / "answers-draft.txt").read_text().splitlines())
    draft_grading = {
        "matches": [
            {
                "answer": 1,
                "finding": _number(draft_findings, "KAI-CFG-001"),
                "reason": "A key in an env value is a literal secret.",
            },
            {
                "answer": 2,
                "finding": _number(draft_findings, "KAI-RES-001"),
                "reason": "Hogging a node is what requests and a memory limit prevent.",
            },
        ],
        "feedback": "Good eye for the secret and the resources; look at probes next.",
    }
    plan_msgs = first_messages(GENERATE_REQUEST, rules, Config(), {})
    write(
        "critique_generate",
        [
            (
                openai_request(plan_msgs, PLAN_SCHEMA),
                openai_ok(
                    plan(DRAFT, rationale="A Deployment, a Service and an Ingress."), 203, 3412, 611
                ),
            ),
            (
                openai_request(
                    grading_messages(draft, draft_findings, draft_answers), GRADE_SCHEMA
                ),
                openai_ok(json.dumps(draft_grading), 204, 2890, 120),
            ),
        ],
    )


if __name__ == "__main__":
    import sys

    if "--check" in sys.argv[1:]:  # rebuild on a copy; exit 1 with a diff when stale
        import check_generated

        raise SystemExit(check_generated.main([__file__]))
    main()
    here = Path(__file__).parent
    written = sorted([*here.glob("explain_*.yaml"), *here.glob("critique_*.yaml")])
    print(f"wrote {', '.join(p.name for p in written)}")

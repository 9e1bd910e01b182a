"""kai critique's offline grading understands how people say things, not only rule titles."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EXAMPLES

DRAFT = str(EXAMPLES / "agent-draft" / "agent.yaml")

PHRASINGS = [
    ("the service is public", "KAI-NET-005"),
    ("any pod can talk to it", "KAI-NET-001"),
    ("it could use all the memory on the node", "KAI-RES-001"),
    ("the container is running as uid 0", "KAI-SEC-001"),
    ("kubernetes does not know when it is ready", "KAI-PRB-001"),
    ("a hung process is never restarted", "KAI-PRB-002"),
    ("the image version floats", "KAI-IMG-001"),
    ("the api key is in the yaml in clear", "KAI-CFG-001"),
    ("traffic is not encrypted", "KAI-NET-006"),
    ("a node upgrade can take every pod down at once", "KAI-AVL-001"),
    ("all replicas can land on one node", "KAI-AVL-002"),
    ("a process could gain more privileges", "KAI-SEC-003"),
    ("the container can write to its own disk", "KAI-SEC-006"),
    ("no syscall filtering", "KAI-SEC-007"),
    ("the pod gets an api token it does not need", "KAI-SEC-008"),
]


@pytest.mark.parametrize(("answer", "rule"), PHRASINGS)
def test_common_phrasings_match_their_finding(kai, tmp_path: Path, answer: str, rule: str) -> None:
    answers = tmp_path / "answers.txt"
    answers.write_text(answer + "\n")
    data = kai("critique", DRAFT, "--answers", str(answers), "-o", "json").json()
    assert [m["finding"]["rule"] for m in data["matched"]] == [rule], data["unmatched"]


def test_unrelated_answers_match_nothing(kai, tmp_path: Path) -> None:
    answers = tmp_path / "answers.txt"
    answers.write_text("the colour scheme is ugly\nI would have named it differently\n")
    data = kai("critique", DRAFT, "--answers", str(answers), "-o", "json").json()
    assert data["matched"] == [] and len(data["unmatched"]) == 2

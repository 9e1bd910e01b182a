"""Replay of the cassettes recorded from the real local model (tests/cassettes/local/).

They were recorded by tests/cassettes/record_model.py from Qwen2.5-Coder-1.5B-Instruct Q4_K_M
behind llama.cpp's server; each cassette's metadata says what answered, when, and what kai
command produced it. Replay matches the JSON request body, so a change to a prompt, the request
or the wire format without re-recording fails here; re-record with the script.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import vcr
import yaml
from conftest import FakeKubectl

CASSETTES = Path(__file__).parent / "cassettes"
LOCAL = CASSETTES / "local"
REPLAY_BASE = "http://127.0.0.1:8080/v1"
KAI_MODEL = "openai/qwen2.5-coder-1.5b-instruct-q4_k_m"
RECORDINGS = sorted(LOCAL.glob("*.yaml"))


def json_body(r1: Any, r2: Any) -> None:
    """The request bodies are the same JSON (key order and spacing aside)."""
    assert json.loads(r1.body or b"null") == json.loads(r2.body or b"null"), "request bodies differ"


def tapes() -> vcr.VCR:
    v = vcr.VCR(
        cassette_library_dir=str(LOCAL),
        record_mode="none",
        match_on=["method", "scheme", "host", "port", "path", "json_body"],
        filter_headers=["authorization", "x-api-key"],
    )
    v.register_matcher("json_body", json_body)
    return v


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def replay(kai: Any, monkeypatch: pytest.MonkeyPatch, tmp: Path, path: Path) -> tuple[Any, Any]:
    meta = load(path)["metadata"]
    for k, v in meta["env"].items():
        monkeypatch.setenv(k, v)
    argv = [a.format(api_base=REPLAY_BASE, tmp=tmp) for a in meta["argv"]]
    argv += ["-m", KAI_MODEL, "--api-base", REPLAY_BASE, "--timeout", "1800", "--no-cache"]
    with tapes().use_cassette(path.name, allow_playback_repeats=False) as cassette:
        result = kai(*argv)
    return result, cassette


# Where kai has since changed what it does with the same recorded answers, the exit code it gives
# now (the metadata keeps the one it gave when recorded). run_scale: the model's one argv string
# "kubectl scale deployment web --replicas=3" is refused, and a refusal exits 1 (it exited 0).
NOW_EXITS = {"run_scale": 1}


def test_the_real_models_refused_proposal_exits_1_in_one_line(
    kai, kubectl: FakeKubectl, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = LOCAL / "run_scale.yaml"
    assert load(path)["metadata"]["exit_code"] == 0  # what kai did when this was recorded
    r, cassette = replay(kai, monkeypatch, tmp_path, path)
    assert cassette.all_played and kubectl.calls() == []
    assert "is not kubectl: kai runs only kubectl commands" in r.out
    assert r.code == 1 and r.err.count("\n") == 1 and r.err.startswith("error: kai refused 1 of 1")


def test_there_are_recordings() -> None:
    names = {p.stem for p in RECORDINGS}
    assert names and names <= {"generate_web", "run_scale"}  # record_model.py's scenarios


@pytest.mark.parametrize("path", RECORDINGS, ids=[p.stem for p in RECORDINGS])
def test_recording_says_what_answered(path: Path) -> None:
    meta = load(path)["metadata"]
    assert meta["provenance"] == "recorded"
    assert meta["model"] == "Qwen2.5-Coder-1.5B-Instruct" and meta["quantization"] == "Q4_K_M"
    assert meta["server"].startswith("xllamacpp ")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ", meta["recorded"])
    assert meta["exit_code"] != 70


@pytest.mark.parametrize("path", RECORDINGS, ids=[p.stem for p in RECORDINGS])
def test_replay_matches_every_request(
    kai, kubectl: FakeKubectl, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, path: Path
) -> None:
    data = load(path)
    r, cassette = replay(kai, monkeypatch, tmp_path, path)
    assert cassette.all_played and cassette.play_count == len(data["interactions"]), r.err
    assert r.code == NOW_EXITS.get(path.stem, data["metadata"]["exit_code"]), (r.out, r.err)
    assert kubectl.calls() == []  # nothing ran: generate without --apply, run in suggest-only
    summary = re.search(r"(\d+) model calls?, (\d+) prompt \+ (\d+) completion tokens", r.out)
    if data["metadata"]["argv"][0] == "generate" and r.code in (0, 1):
        answered = [  # the chat completions (GET /props reads the server's context size)
            json.loads(x["response"]["body"]["string"])
            for x in data["interactions"]
            if x["request"]["method"] == "POST"
        ]
        usage = [a["usage"] for a in answered]
        assert summary, r.out
        assert tuple(map(int, summary.groups())) == (
            len(answered),
            sum(u["prompt_tokens"] for u in usage),
            sum(u["completion_tokens"] for u in usage),
        )


@pytest.mark.parametrize("path", RECORDINGS, ids=[p.stem for p in RECORDINGS])
def test_a_prompt_edit_without_rerecording_fails_the_replay(
    kai, kubectl: FakeKubectl, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, path: Path
) -> None:
    from kai.model import prompts

    original = prompts.template

    def edited(name: str) -> str:
        return original(name) + "\nBe brief.\n"

    monkeypatch.setattr(prompts, "template", edited)
    data = load(path)
    r, cassette = replay(kai, monkeypatch, tmp_path, path)
    gets = sum(it["request"]["method"] == "GET" for it in data["interactions"])  # GET /props
    assert cassette.play_count == gets and not cassette.all_played  # no model exchange matched
    assert r.code != data["metadata"]["exit_code"]  # the replay did not reproduce the run


def model_cassettes() -> list[Path]:
    """Every cassette of model traffic (the cluster/ ones hold API-server traffic)."""
    return [p for p in sorted(CASSETTES.rglob("*.yaml")) if "cluster" not in p.parts]


def test_every_model_cassette_says_whether_it_was_recorded_or_authored() -> None:
    paths = model_cassettes()
    assert len(paths) >= 40
    kinds: dict[str, list[str]] = {"recorded": [], "authored": []}
    for path in paths:
        meta = load(path).get("metadata") or {}
        assert meta.get("provenance") in kinds, f"{path.name}: no provenance in its metadata"
        kinds[meta["provenance"]].append(str(path.relative_to(CASSETTES)))
        if meta["provenance"] == "authored":
            assert (
                meta["by"].startswith("tests/cassettes/build")
                and "no model answered" in meta["note"]
            )
    # only what record_model.py wrote from the local model is called recorded
    assert kinds["recorded"] == [str(p.relative_to(CASSETTES)) for p in RECORDINGS]

"""Issue 12, item 3: the per-object rules added for the checks users of the peers expect, and the
RES/PRB rules rewritten so that the API server accepts their exported policy and they batch."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kai.manifests import load_text
from kai.policy.catalog import builtin_dir, load_rules
from kai.policy.engine import Engine
from kai.policy.export import export_vap, exportable
from kai.policy.fixtures import fixed_fixtures_for, run_fixed_fixture

RULES = load_rules()
BY_ID = {r.id: r for r in RULES}
REWRITTEN = ("KAI-RES-001", "KAI-RES-002", "KAI-RES-003", "KAI-PRB-003")


def test_no_builtin_rule_binds_names_with_cel_bind() -> None:
    """kube-apiserver rejects cel.bind inside a comprehension (tests/cluster/test_vap.py); the
    built-in rules bind with one-element comprehensions instead."""
    assert [r.id for r in RULES if r.cel and "cel.bind(" in r.cel.expression] == []


def test_rewritten_resource_and_probe_rules_are_exported() -> None:
    for rid in REWRITTEN:
        assert exportable(replace(BY_ID[rid], enabled=True)), rid
    objects, skipped = export_vap(RULES)
    names = {o["metadata"]["name"] for o in objects}
    assert {"kai-res-001", "kai-res-002", "kai-prb-003"} <= names
    assert not {r.id for r in skipped} & set(REWRITTEN)


def test_rewritten_rules_run_in_the_batched_program() -> None:
    engine = Engine([replace(r, enabled=True) if r.id in REWRITTEN else r for r in RULES])
    plan = engine._plan("Deployment", True)
    batched = {c.rule.id for c in plan.cel_rules}
    assert set(REWRITTEN) <= batched
    text = """\
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - name: ok
      image: ghcr.io/acme/app:1.0
      resources: {limits: {cpu: 500m, memory: 256Mi}}
    - name: bad
      image: ghcr.io/acme/app:1.0
      resources: {requests: {cpu: "0", memory: 64Mi}, limits: {memory: 128Mi}}
"""
    manifests, _ = load_text(text, "p.yaml")
    hits = {
        (f.rule, f.path)
        for f in engine.evaluate(manifests).findings
        if f.rule in ("KAI-RES-001", "KAI-RES-002", "KAI-RES-003")
    }
    assert hits == {
        ("KAI-RES-001", "spec.containers[1]"),
        ("KAI-RES-002", "spec.containers[1]"),
        ("KAI-RES-003", "spec.containers[1]"),
    }


# ---------- fixed fixtures: kai fix turns fixed*.yaml into exactly fixed*.out.yaml ----------

FIXED = [(r, p, e) for r in RULES for p, e in fixed_fixtures_for(r, builtin_dir())]


@pytest.mark.parametrize(
    ("rule", "path", "expected"), FIXED, ids=[f"{r.id}/{p.name}" for r, p, _ in FIXED]
)
def test_fixed_fixture(rule, path: Path, expected: Path) -> None:
    result = run_fixed_fixture(rule, path, expected)
    assert result.ok, result.messages


def test_every_fixable_new_rule_has_a_fixed_fixture() -> None:
    with_fixed = {r.id for r, _, _ in FIXED}
    assert {"KAI-AVL-007", "KAI-RES-004", "KAI-WRK-003", "KAI-JOB-003"} <= with_fixed


def test_a_fixed_fixture_fails_when_the_expected_text_differs(tmp_path: Path) -> None:
    rule = BY_ID["KAI-AVL-007"]
    src = builtin_dir() / "tests" / "KAI-AVL-007" / "fixed.yaml"
    (tmp_path / "fixed.yaml").write_text(src.read_text())
    (tmp_path / "fixed.out.yaml").write_text(src.read_text())  # the unfixed text
    result = run_fixed_fixture(rule, tmp_path / "fixed.yaml", tmp_path / "fixed.out.yaml")
    assert not result.ok and "differs" in result.messages[0]


# ---------- KAI-CFG-003: credentials in ConfigMaps, found by content and never shown ----------

SECRET_VALUES = [
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAtestonlynotarealkey\n-----END RSA PRIVATE KEY-----\n",
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE\n",
    "-----BEGIN ENCRYPTED PRIVATE KEY-----\nabc\n",
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
    "ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef0123",
    "github_pat_11ABCDEFG0123456789_abcdefghijkl",
    'bot = "xoxb-1234567890-abcdefghijkl"',
    "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZXJ2aWNlIn0.c2lnbmF0dXJlLW5vdA",
    "amqp://worker:Wq8vLx2@rabbitmq.internal:5672/",
    "redis://:pw@cache:6379",
    "spring.datasource.password=hunter2",
    "a: 1\npasswd: 's3cr3t'\n",
    '{"user": "app", "password": "p4ss"}',
    "PASSWORD=abc",
    "password: changeme",
]
PLACEHOLDERS = [
    "password: ''",
    'password: ""',
    "password:",
    "password=",
    "password=${DB_PASSWORD}",
    "password: $DB_PASSWORD",
    'passwd: "{{ .Values.password }}"',
    "password: <set me>",
    "password: null",
    "password: ~  # unset",
    "password: '***'",
    "password_file: /run/secrets/db",
    "passwordMinLength=12",
    "postgres://app@db:5432/app",
    "https://${USER}:${PASS}@example.com/",
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n",
    "AKIAIOSFODNN7EXAMPL",  # one character short of an access key id
    "token_url: https://auth.example.com/token",
]
CFG003 = Engine([BY_ID["KAI-CFG-003"]])


def _configmap(data: dict[str, str], binary: dict[str, str] | None = None) -> str:
    import json

    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": data,
    }
    if binary is not None:
        obj["binaryData"] = binary
    return json.dumps(obj)


def _cfg003_hits(text: str) -> int:
    manifests, _ = load_text(text, "c.yaml")
    return len([f for f in CFG003.evaluate(manifests).findings if f.rule == "KAI-CFG-003"])


@pytest.mark.parametrize("value", SECRET_VALUES)
def test_cfg003_finds_credentials_by_content_under_an_innocent_key(value: str) -> None:
    from kai.policy.credentials import configmap_credential

    assert _cfg003_hits(_configmap({"app.conf": value})) == 1
    assert configmap_credential("app.conf", value)  # the redactor agrees with the rule


@pytest.mark.parametrize("value", PLACEHOLDERS)
def test_cfg003_passes_placeholders_and_ordinary_config(value: str) -> None:
    from kai.policy.credentials import configmap_credential

    assert _cfg003_hits(_configmap({"app.conf": value})) == 0
    assert not configmap_credential("app.conf", value)


@pytest.mark.parametrize(
    ("key", "value", "hit"),
    [
        ("db-password", "hunter2", 1),
        ("clientSecret", "abc", 1),
        ("API_KEY", "k-123", 1),
        ("tls.key", "anything", 1),
        ("db-password", "", 0),
        ("db-password", "${DB_PASSWORD}", 0),
        ("use-token", "true", 0),
        ("token-ttl", "1h", 0),
        ("secret-name", "db-credentials", 0),
        ("password-policy", "strict", 0),
    ],
)
def test_cfg003_key_names(key: str, value: str, hit: int) -> None:
    from kai.policy.credentials import configmap_credential

    assert _cfg003_hits(_configmap({key: value})) == hit
    assert configmap_credential(key, value) == bool(hit)


def test_cfg003_binary_data_keys_by_name() -> None:
    assert _cfg003_hits(_configmap({}, {"id_rsa": "bm90IGEga2V5"})) == 1
    assert _cfg003_hits(_configmap({}, {"logo.png": "iVBORw0KGgo="})) == 0
    assert _cfg003_hits(_configmap({}, {"server.key": ""})) == 0


LEAKS = ["hunter2", "AKIAIOSFODNN7EXAMPLE", "Wq8vLx2", "s3cr3t", "p4ss", "abcdefghijkl", "c2lnbmF0"]


def _cfg003_fail_text() -> str:
    folder = builtin_dir() / "tests" / "KAI-CFG-003"
    return "\n---\n".join(p.read_text() for p in sorted(folder.glob("fail*.yaml")))


@pytest.mark.parametrize("fmt", ["table", "compact", "json", "yaml", "sarif", "github", "junit"])
def test_cfg003_output_never_shows_the_value(kai, tmp_path: Path, fmt: str) -> None:
    f = tmp_path / "cm.yaml"
    f.write_text(_cfg003_fail_text())
    r = kai("review", str(f), "-o", fmt)
    assert "KAI-CFG-003" in r.out
    for value in LEAKS:
        assert value not in r.out and value not in r.err, (fmt, value)


def test_cfg003_values_are_redacted_before_a_model_sees_them() -> None:
    from kai.generate import repair_messages
    from kai.model.redact import redact_object

    manifests, _ = load_text(_cfg003_fail_text(), "cm.yaml")
    from kai.model.redact import PLACEHOLDER
    from kai.policy.credentials import configmap_credential

    for m in manifests:
        clean = redact_object(m.obj)
        for field, binary in (("data", False), ("binaryData", True)):
            for k, v in (m.obj.get(field) or {}).items():
                if configmap_credential(k, v, binary):
                    assert clean[field][k] == PLACEHOLDER, (m.ref.display(), k)
    failing = [f for f in CFG003.evaluate(manifests).findings]
    assert len(failing) >= 8
    messages = repair_messages(
        [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        manifests,
        failing,
        BY_ID,
    )
    prompt = "\n".join(m["content"] for m in messages)
    assert "KAI-CFG-003" in prompt
    for value in [*LEAKS, "BEGIN RSA PRIVATE KEY", "BEGIN OPENSSH PRIVATE KEY", "ghp_"]:
        assert value not in prompt, value


def test_cfg003_linear_jwt_and_url_checks_agree_with_their_regular_expressions() -> None:
    """kai.policy.credentials decides the JWT and URL-with-password patterns without regular
    expressions (Python's backtracking made them quadratic in a value's length: a hostile
    ConfigMap could stall a review). On short values, where the expressions are cheap, both must
    agree with the patterns the rule documents, on seeded random strings built from the
    characters those patterns care about."""
    import random
    import re

    from kai.policy import credentials

    jwt = re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")
    url = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:[^/\s:@$<{][^/\s@]*@")
    rng = random.Random(7)
    alphabet = "eyJab1-_.:/@ x9Z$<{+"
    hits = {"jwt": 0, "url": 0}
    for _ in range(20_000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        if rng.random() < 0.3:
            s = s.replace("x", "eyJabcdefghijk", 2)
        if rng.random() < 0.2:
            s = s.replace("x", "eyJabcdefghijk.eyJabcdefghij.abcdefghij", 1)
        if rng.random() < 0.3:
            s = s.replace("Z", "://u:p@", 1)
        assert credentials._jwt(s) == bool(jwt.search(s)), s
        assert credentials._url_password(s) == bool(url.search(s)), s
        hits["jwt"] += credentials._jwt(s)
        hits["url"] += credentials._url_password(s)
    assert hits["jwt"] > 50 and hits["url"] > 50  # both branches were really exercised


# The literal pre-checks in kai.policy.credentials only skip searches that cannot match: drawn
# from the patterns' own fragments (and letters that (?i) folds to ASCII: the long s, the Kelvin
# sign), the decision equals a plain run of every pattern on every value and line.
_FRAGMENTS = st.sampled_from(
    [
        "-----BEGIN ",
        "RSA ",
        "PRIVATE KEY-----",
        "AKIA",
        "ASIA",
        "ghp_",
        "gho_",
        "github_pat_",
        "xoxb-",
        "xox",
        "A" * 16,
        "a1" * 8,
        "password",
        "PASSWORD",
        "pa\u017fsword",
        "PA\u017f\u017fWORD",
        "passwd",
        "passphrase",
        ": ",
        "=",
        " x",
        "null",
        "~",
        "\n",
        " ",
        "'",
        "\u212a",
    ]
)


def _every_pattern(key: str, value: str) -> bool:
    from kai.policy import credentials as c

    if any(p.search(value) for p in c._CM_CONTENT) or c._jwt(value) or c._url_password(value):
        return True
    if any(c._CM_ASSIGN.search(ln) and not c._CM_UNSET.search(ln) for ln in value.split("\n")):
        return True
    return bool(c._CM_KEY.search(key)) and not c._CM_PLACEHOLDER.search(value)


@settings(max_examples=400, deadline=None)
@example("ghp_" + "a1" * 18, "app.conf")
@example("github_pat_" + "A" * 22, "app.conf")
@example("xoxb-" + "1" * 12, "app.conf")
@example("AKIA" + "A" * 16, "app.conf")
@example("-----BEGIN RSA PRIVATE KEY-----", "app.conf")
@example("PA\u017fSWORD: x", "app.conf")
@given(st.lists(_FRAGMENTS, max_size=8).map("".join), st.sampled_from(["app.conf", "token"]))
def test_cfg003_literal_prechecks_never_change_the_decision(value: str, key: str) -> None:
    from kai.policy.credentials import configmap_credential

    assert configmap_credential(key, value) == _every_pattern(key, value)

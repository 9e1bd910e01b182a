"""`kai policies new`: a rule file and its two fixtures that pass out of the box."""

from __future__ import annotations

import re
from pathlib import Path

from kai.errors import InputError
from kai.policy.catalog import FIXTURE_DIR

RULE = """\
# A kai rule: edit the check, the words and the fixtures, then run `kai policies test {directory}`.
id: {id}
title: Images come from the team registry
severity: error
category: images
concept: container images
rationale: |
  Only images pushed to the team registry are scanned, signed and kept; an image pulled from a
  public registry can change or disappear under the same tag. (Explain why your rule matters, in
  words a new team member understands.)
remediation: |
  Push the image to registry.example.com and reference it from there.
example: |
  image: registry.example.com/team/app:1.4.0
references:
  docs: https://kubernetes.io/docs/concepts/containers/images/
equivalents: {{}}
cel:
  # object (the whole object), pod (podSpec too) or container (container too, once per container)
  scope: container
  expression: "container.image.startsWith('registry.example.com/')"
  message: "container {{container}} uses {{image}}, not an image from registry.example.com"
"""

PASS = """\
# {id}: every image comes from the team registry
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  selector:
    matchLabels: {{app: app}}
  template:
    metadata:
      labels: {{app: app}}
    spec:
      containers:
        - name: app
          image: registry.example.com/team/app:1.4.0
"""

FAIL = """\
# expect: 1
# {id}: one image from a public registry
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  selector:
    matchLabels: {{app: app}}
  template:
    metadata:
      labels: {{app: app}}
    spec:
      initContainers:
        - name: migrate
          image: registry.example.com/team/migrate:1.4.0
      containers:
        - name: app
          image: docker.io/library/nginx:1.27
"""


def scaffold(name: str, directory: Path) -> list[Path]:
    """Write DIR/<ID>.yaml and DIR/tests/<ID>/{pass,fail}.yaml; refuse to overwrite."""
    rule_id = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").upper()
    if not rule_id:
        raise InputError(
            f"{name!r} is not a usable rule name: use letters, digits and dashes (TEAM-001)"
        )
    rule_file = directory / f"{rule_id}.yaml"
    fixtures = directory / FIXTURE_DIR / rule_id
    paths = [rule_file, fixtures / "pass.yaml", fixtures / "fail.yaml"]
    for p in paths:
        if p.exists():
            raise InputError(f"{p} already exists: pick another name or edit it")
    fixtures.mkdir(parents=True, exist_ok=True)
    rule_file.write_text(RULE.format(id=rule_id, directory=directory), encoding="utf-8")
    paths[1].write_text(PASS.format(id=rule_id), encoding="utf-8")
    paths[2].write_text(FAIL.format(id=rule_id), encoding="utf-8")
    return paths

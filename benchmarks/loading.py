"""Loading and fixing against their floors, in CPU seconds measured in the same run.

    python benchmarks/loading.py [--objects 2000] [--repeat 3]

Loading: kai.manifests.load_text against yaml-rs parsing the same documents alone (issue 17's
target: at most 1.5x). Fixing: kai.policy.fixfile.fix_files on files with nothing to fix and on files
with findings, against one ruamel round trip (load_all + dump_all) of the same files (target:
at most 1.5x). Prints numbers; asserts nothing. On a shared machine, read the ratios.
"""

from __future__ import annotations

import argparse
import io
import re
import resource
import tempfile
from collections.abc import Callable
from pathlib import Path


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = cpu()
        fn()
        times.append(cpu() - start)
    return min(times)


def deployment(i: int, hardened: bool) -> str:
    sc = (
        "      securityContext: {runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001,"
        " seccompProfile: {type: RuntimeDefault}}\n      automountServiceAccountToken: false\n"
        if hardened
        else ""
    )
    csc = (
        "        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,"
        " capabilities: {drop: [ALL]}}\n"
        "        resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: 500m, memory: 256Mi}}\n"
        "        readinessProbe: {tcpSocket: {port: 8080}}\n        livenessProbe: {tcpSocket: {port: 8080}}\n"
        "        imagePullPolicy: IfNotPresent\n"
        if hardened
        else ""
    )
    return (
        f"---\n# deployment {i}\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-{i}\n"
        f"  namespace: ns-{i % 7}\n  labels:\n    app.kubernetes.io/name: web-{i}\n"
        f"    app.kubernetes.io/instance: web-{i}\n  annotations:\n    description: >-\n"
        f"      The web tier, number {i}; it serves *static* pages & assets.\nspec:\n"
        f"  replicas: 3\n  selector:\n    matchLabels: {{app: web-{i}}}\n  template:\n"
        f"    metadata:\n      labels: {{app: web-{i}}}\n    spec:\n{sc}      containers:\n"
        f"      - name: web\n        image: nginx:1.27.{i % 9}\n        ports:\n"
        f"        - containerPort: 8080\n          name: http\n{csc}"
        f'        env:\n        - {{name: MODE, value: "on"}}\n        - {{name: COUNT, value: "{i}"}}\n'
    )


def configmap(i: int) -> str:
    return (
        f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n  labels: {{app: a{i % 50}}}\n"
        f'data:\n  key: value-{i}\n  enabled: "true"\n  other: {"x" * 120}\n'
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--files", type=int, default=100)
    args = parser.parse_args()

    import yaml_rs
    from ruamel.yaml import YAML

    from kai.manifests import load_text

    boundary = re.compile(r"^(?:---|\.\.\.)(?=[ \t]|$)", re.M)  # documents, as kai splits them

    n = args.objects
    corpora = {
        "deployments": "".join(deployment(i, i % 2 == 0) for i in range(n)),
        "configmaps": "".join(configmap(i) for i in range(n)),
    }
    print(f"loading ({n} objects; CPU s, best of {args.repeat}; a busy shared machine)")
    print(f"{'corpus':<12} {'yaml-rs':>8} {'kai load':>9} {'ratio':>6}")
    for name, text in corpora.items():
        chunks = [c for c in boundary.split(text) if c.strip()]

        def floor(chunks: list[str] = chunks) -> None:
            for c in chunks:
                yaml_rs.loads(c, parse_datetime=False)

        def kai(text: str = text, name: str = name) -> None:
            load_text(text, f"{name}.yaml")

        f, k = best(floor, args.repeat), best(kai, args.repeat)
        print(f"{name:<12} {f:8.3f} {k:9.3f} {k / f:6.2f}x", flush=True)

    from kai.policy.catalog import load_rules
    from kai.policy.fixfile import fix_files

    rules = load_rules()
    per_file = max(1, n // args.files)
    print(f"\nfix ({args.files} files of {per_file} Deployments; CPU s, best of {args.repeat})")
    print(f"{'files':<12} {'ruamel rt':>9} {'kai fix':>8} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, hardened in (("clean", True), ("to fix", False)):
            d = Path(tmp) / label.replace(" ", "-")
            d.mkdir()
            for j in range(args.files):
                body = "".join(deployment(j * per_file + i, hardened) for i in range(per_file))
                (d / f"f{j}.yaml").write_text(body)
            files = sorted(d.iterdir())

            def round_trip(files: list[Path] = files) -> None:
                for p in files:
                    y = YAML(typ="rt")
                    out = io.StringIO()
                    y.dump_all(list(y.load_all(p.read_text())), out)

            def fix(d: Path = d) -> None:
                fix_files([str(d)], rules)

            r, k = best(round_trip, args.repeat), best(fix, args.repeat)
            print(f"{label:<12} {r:9.3f} {k:8.3f} {k / r:6.2f}x", flush=True)


if __name__ == "__main__":
    main()

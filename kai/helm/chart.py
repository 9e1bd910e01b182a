"""Helm packaging: manifests to an idiomatic chart, and rendering charts back to objects.

`package_chart` writes Chart.yaml, values.yaml (what teams change per environment) and
templates that reproduce the input objects with default values. `render_chart` renders a
chart with `helm template` when helm is on PATH, else with kai's own renderer, which knows
exactly the Go-template subset kai's charts use and refuses anything else.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kai.errors import InputError
from kai.models import Manifest, Note, Source

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")
_SCALABLE = ("Deployment", "StatefulSet", "ReplicaSet")
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
VERSION_LABEL = "app.kubernetes.io/version"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SENTINEL = "__kai_sentinel_{}__"
_SENTINEL_RE = re.compile(r"__kai_sentinel_(\d+)__")


# ---------------------------------------------------------------------------------------------
# Packaging: manifests -> chart files


def camel(name: str) -> str:
    """A Kubernetes name as a camelCase values key: agent-worker -> agentWorker."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", name) if p]
    if not parts:
        return "app"
    key = parts[0][:1].lower() + parts[0][1:] + "".join(p[:1].upper() + p[1:] for p in parts[1:])
    return key if key[0].isalpha() else f"w{key}"


def split_image(image: str) -> dict[str, str]:
    """repository, tag and digest of an image reference (registry ports are not tags)."""
    rest, _, digest = image.partition("@")
    repo, tag = rest, ""
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        repo, tag = rest[:colon], rest[colon + 1 :]
    out = {"repository": repo}
    if tag:
        out["tag"] = tag
    if digest:
        out["digest"] = digest
    return out


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    kind, spec = obj.get("kind"), obj.get("spec")
    if not isinstance(spec, dict):
        return None
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template") if isinstance(spec, dict) else None
    pod = template.get("spec") if isinstance(template, dict) else None
    return pod if isinstance(pod, dict) else None


def _pod_labels(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    meta = (spec.get("template") or {}).get("metadata") or {}
    labels = meta.get("labels")
    return labels if isinstance(labels, dict) else {}


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _secretish(name: str, value: str) -> bool:
    """Credential-like env entries stay out of values.yaml (values files get shared and logged)."""
    from kai.model.redact import _SECRET_NAME, redact_text

    return bool(_SECRET_NAME.search(name)) or redact_text(value) != value


def go_quote(s: str) -> str:
    """A double-quoted string as Go's %q writes it (also a valid YAML double-quoted scalar)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif o < 0x20 or 0x7F <= o < 0xA0:
            out.append(f"\\x{o:02x}")
        elif 0xD800 <= o < 0xE000 or o in (0x2028, 0x2029, 0xFEFF):
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class _IndentDumper(yaml.SafeDumper):
    """Block YAML with indented lists, as `helm create` writes it."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        del indentless  # lists are always indented
        return super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # YAML 1.1 readers (helm's and Kubernetes') take a plain y or n as a boolean; PyYAML doesn't.
    style = "'" if value in ("y", "Y", "n", "N") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


class _SafeDumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting every string a YAML 1.1 reader would retype."""


_SafeDumper.add_representer(str, _represent_str)
_IndentDumper.add_representer(str, _represent_str)


def _dump(data: Any) -> str:
    return str(
        yaml.dump(
            data,
            Dumper=_IndentDumper,
            sort_keys=False,
            default_flow_style=False,
            allow_unicode=True,
            width=1_000_000,
        )
    )


@dataclass
class _Workload:
    key: str
    obj: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    service: dict[str, Any] | None = None
    hpa: dict[str, Any] | None = None
    ingress: dict[str, Any] | None = None


# A replacement turns the line holding a sentinel into template text:
# (indent, "- " or "", key, column of the key) -> text for the whole line.
_LineFn = Callable[[str, str, str, int], str]


class _Builder:
    """Builds one chart from a list of objects (see package_chart)."""

    def __init__(self, objects: list[dict[str, Any]], name: str) -> None:
        self.objects = objects
        self.name = name
        self.inline: dict[int, str] = {}
        self.lines: dict[int, _LineFn] = {}
        self.workloads: list[_Workload] = []
        used: set[str] = set()
        for obj in objects:
            if obj.get("kind") in WORKLOAD_KINDS and _pod_spec(obj) is not None:
                key = camel(str(_meta(obj).get("name") or obj.get("kind")))
                if key in used:
                    key = f"{key}{obj['kind']}"
                used.add(key)
                self.workloads.append(_Workload(key, obj))
        main = self.workloads[0].obj if self.workloads else (objects[0] if objects else {})
        self.fullname = str(_meta(main).get("name") or name)
        self.names = {(str(o.get("kind")), str(_meta(o).get("name"))) for o in objects}
        self.app_version = ""
        if self.workloads:
            containers = (_pod_spec(self.workloads[0].obj) or {}).get("containers") or []
            if containers and isinstance(containers[0].get("image"), str):
                self.app_version = split_image(containers[0]["image"]).get("tag", "")
        self.selector = self._selector_labels()
        self.labels = self._common_labels()
        self._link()

    # -- analysis ----------------------------------------------------------------------------

    def _selector_labels(self) -> dict[str, Any]:
        for w in self.workloads:
            sel = (w.obj.get("spec") or {}).get("selector")
            if isinstance(sel, dict) and isinstance(sel.get("matchLabels"), dict):
                return dict(sel["matchLabels"])
        return {}

    def _common_labels(self) -> dict[str, Any]:
        """Labels every object carrying the selector labels shares: the labels helper."""
        if not self.selector:
            return {}
        common: dict[str, Any] | None = None
        for obj in self.objects:
            labels = _meta(obj).get("labels")
            if not isinstance(labels, dict) or not _superset(labels, self.selector):
                continue
            items = {k: v for k, v in labels.items() if isinstance(v, str)}
            common = (
                items if common is None else {k: v for k, v in common.items() if items.get(k) == v}
            )
        return common or dict(self.selector)

    def _link(self) -> None:
        """Attach each workload's Service, HorizontalPodAutoscaler and Ingress."""
        by_ref = {(w.obj.get("kind"), str(_meta(w.obj).get("name"))): w for w in self.workloads}
        services: dict[str, _Workload] = {}
        for obj in self.objects:
            kind, spec = obj.get("kind"), obj.get("spec")
            if not isinstance(spec, dict):
                continue
            if kind == "Service" and isinstance(spec.get("selector"), dict) and spec["selector"]:
                for w in self.workloads:
                    if w.service is None and _superset(_pod_labels(w.obj), spec["selector"]):
                        w.service = obj
                        services[str(_meta(obj).get("name"))] = w
                        break
            elif kind == "HorizontalPodAutoscaler":
                target = spec.get("scaleTargetRef") or {}
                scaled = by_ref.get((target.get("kind"), str(target.get("name"))))
                if scaled is not None and scaled.hpa is None:
                    scaled.hpa = obj
        for obj in self.objects:
            if obj.get("kind") != "Ingress":
                continue
            for backend in _ingress_backends(obj):
                served = services.get(str(backend.get("name")))
                if served is not None and served.ingress is None:
                    served.ingress = obj
                    break

    # -- sentinels ---------------------------------------------------------------------------

    def _put(self, text: str) -> str:
        n = len(self.inline) + len(self.lines)
        self.inline[n] = text
        return _SENTINEL.format(n)

    def _put_lines(self, fn: _LineFn) -> str:
        n = len(self.inline) + len(self.lines)
        self.lines[n] = fn
        return _SENTINEL.format(n)

    def _block(self, expr: str, extras: dict[str, Any] | None = None) -> str:
        """`key:` then `{{- EXPR | nindent N }}`, then literal extra entries."""

        def fn(indent: str, dash: str, key: str, col: int) -> str:
            pad = " " * (col + 2)
            text = f"{indent}{dash}{key}:\n{pad}{{{{- {expr} | nindent {col + 2} }}}}"
            if extras:
                literal = _dump(extras).rstrip("\n").replace("{{", '{{ "{{" }}')
                text += "\n" + _indent_lines(literal, pad)
            return text

        return self._put_lines(fn)

    def name_expr(self, value: str) -> str | None:
        if value == self.fullname:
            expr = f'{{{{ include "{self.name}.fullname" . }}}}'
        elif value.startswith(self.fullname + "-"):
            expr = f'{{{{ include "{self.name}.fullname" . }}}}{value[len(self.fullname) :]}'
        else:
            return None
        # A name such as 1234 or "true" would change type once rendered: quote it.
        return expr if yaml.safe_load(value) == value else f'"{expr}"'

    def label_expr(self, key: str, value: Any) -> str | None:
        if key == NAME_LABEL and value == self.name:
            return f'{{{{ include "{self.name}.name" . }}}}'
        if key == INSTANCE_LABEL and value == self.name:
            return "{{ .Release.Name }}"
        if key == VERSION_LABEL and self.app_version and value == self.app_version:
            return "{{ .Chart.AppVersion | quote }}"
        return None

    def _label_items(self, labels: dict[str, Any]) -> dict[str, Any]:
        return {k: (self._put(e) if (e := self.label_expr(k, v)) else v) for k, v in labels.items()}

    def _labels(self, labels: dict[str, Any], top: bool) -> Any:
        """A labels map through the labels/selectorLabels helpers where it carries them."""
        if top and self.labels and _superset(labels, self.labels):
            helper, known = "labels", self.labels
        elif self.selector and _superset(labels, self.selector):
            helper, known = "selectorLabels", self.selector
        else:
            return self._label_items(labels)
        extras = self._label_items({k: v for k, v in labels.items() if k not in known})
        return self._block(f'include "{self.name}.{helper}" .', extras)

    # -- per-object rewriting ----------------------------------------------------------------

    def rewrite_refs(self, node: Any, path: tuple[Any, ...], kind: str) -> Any:
        """Names, references to chart objects and labels, through the helpers."""
        if isinstance(node, list):
            return [self.rewrite_refs(v, (*path, i), kind) for i, v in enumerate(node)]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for k, v in node.items():
            sub = (*path, k)
            if k in ("labels", "matchLabels") and isinstance(v, dict) and v:
                out[k] = self._labels(v, top=sub == ("metadata", "labels"))
            elif kind == "Service" and sub == ("spec", "selector") and isinstance(v, dict) and v:
                out[k] = self._labels(v, top=False)
            elif isinstance(v, str) and (target := _ref_kind(path, k, node, kind)) is not None:
                expr = self.name_expr(v) if (target, v) in self.names else None
                out[k] = self._put(expr) if expr else v
            elif sub == ("metadata", "name") and isinstance(v, str):
                expr = self.name_expr(v)
                out[k] = self._put(expr) if expr else v
            else:
                out[k] = self.rewrite_refs(v, sub, kind)
        return out

    def workload_values(self, w: _Workload, tobj: dict[str, Any]) -> None:
        """Fill values for one workload and put their uses into its template object."""
        base = f".Values.{w.key}"
        vals = w.values
        spec = tobj["spec"]
        kind = w.obj["kind"]
        if isinstance(spec.get("replicas"), int) and not isinstance(spec.get("replicas"), bool):
            vals["replicaCount"] = spec["replicas"]
            spec["replicas"] = self._put(f"{{{{ {base}.replicaCount }}}}")
        elif w.hpa is not None and kind in _SCALABLE:
            vals["replicaCount"] = (w.hpa.get("spec") or {}).get("minReplicas", 1)

            def guarded(indent: str, dash: str, key: str, col: int) -> str:
                return (
                    f"{indent}{{{{- if not {base}.autoscaling.enabled }}}}\n"
                    f"{indent}replicas: {{{{ {base}.replicaCount }}}}\n"
                    f"{indent}{{{{- end }}}}"
                )

            # The HPA owns the count; the line appears only when autoscaling is turned off.
            tobj["spec"] = spec = {"replicas": self._put_lines(guarded), **spec}
        pod = _pod_spec(tobj)
        assert pod is not None
        first = True
        for c in pod.get("containers") or []:
            if not isinstance(c, dict):
                continue
            if first:
                cvals, cbase = vals, base
            else:
                ckey = camel(str(c.get("name") or "container"))
                cvals = vals.setdefault("sidecars", {}).setdefault(ckey, {})
                cbase = f"{base}.sidecars.{ckey}"
            self._container(c, cvals, cbase, main=first and w is self.workloads[0])
            first = False
        if w.service is not None:
            svc = w.service.get("spec") or {}
            sv: dict[str, Any] = {}
            if isinstance(svc.get("type"), str):
                sv["type"] = svc["type"]
            ports = svc.get("ports") or []
            if ports and isinstance(ports[0], dict) and isinstance(ports[0].get("port"), int):
                sv["port"] = ports[0]["port"]
            if sv:
                vals["service"] = sv
        if w.ingress is not None:
            ing = w.ingress.get("spec") or {}
            iv: dict[str, Any] = {"enabled": True}
            if isinstance(ing.get("ingressClassName"), str):
                iv["className"] = ing["ingressClassName"]
            annotations = _meta(w.ingress).get("annotations")
            if isinstance(annotations, dict) and annotations:
                iv["annotations"] = annotations
            host = next(
                (r["host"] for r in ing.get("rules") or [] if isinstance(r, dict) and "host" in r),
                None,
            )
            if isinstance(host, str):
                iv["host"] = host
            if isinstance(ing.get("tls"), list) and ing["tls"]:
                iv["tls"] = ing["tls"]
            vals["ingress"] = iv
        if w.hpa is not None:
            hspec = w.hpa.get("spec") or {}
            av: dict[str, Any] = {"enabled": True}
            for k in ("minReplicas", "maxReplicas"):
                if isinstance(hspec.get(k), int):
                    av[k] = hspec[k]
            vals["autoscaling"] = av

    def _container(self, c: dict[str, Any], vals: dict[str, Any], base: str, main: bool) -> None:
        image = c.get("image")
        parts = split_image(image) if isinstance(image, str) else {}
        rebuilt = parts.get("repository", "") + "".join(
            f"{sep}{parts[k]}" for sep, k in ((":", "tag"), ("@", "digest")) if k in parts
        )
        # Only references that split cleanly (not "app:" or "") become values.
        if image and rebuilt == image:
            vals["image"] = dict(parts)
            expr = f"{{{{ {base}.image.repository }}}}"
            if "tag" in parts:
                tag = f"{base}.image.tag"
                # helm create's idiom: an empty tag falls back to the chart's appVersion.
                tag_expr = (
                    f"{tag} | default .Chart.AppVersion"
                    if main and parts["tag"] == self.app_version
                    else tag
                )
                expr += f":{{{{ {tag_expr} }}}}"
            if "digest" in parts:
                expr += f"@{{{{ {base}.image.digest }}}}"
            c["image"] = self._put(f'"{expr}"')
            if isinstance(c.get("imagePullPolicy"), str):
                vals["image"]["pullPolicy"] = c["imagePullPolicy"]
                c["imagePullPolicy"] = self._put(f"{{{{ {base}.image.pullPolicy }}}}")
        if isinstance(c.get("resources"), dict):
            vals["resources"] = copy.deepcopy(c["resources"])
            c["resources"] = self._block(f"toYaml {base}.resources")
        env = c.get("env")
        if isinstance(env, list):
            literals: dict[str, str] = {}
            for entry in env:
                if not isinstance(entry, dict) or set(entry) != {"name", "value"}:
                    continue
                name, value = entry["name"], entry["value"]
                if (
                    isinstance(name, str)
                    and isinstance(value, str)
                    and _IDENT.match(name)
                    and name not in literals
                    and not _secretish(name, value)
                ):
                    literals[name] = value
                    entry["value"] = self._put(f"{{{{ {base}.env.{name} | quote }}}}")
            if literals:
                vals["env"] = literals

    def service_template(self, w: _Workload, tobj: dict[str, Any]) -> None:
        spec, base = tobj["spec"], f".Values.{w.key}.service"
        sv = w.values.get("service") or {}
        if "type" in sv:
            spec["type"] = self._put(f"{{{{ {base}.type }}}}")
        if "port" in sv:
            spec["ports"][0]["port"] = self._put(f"{{{{ {base}.port }}}}")

    def ingress_template(self, w: _Workload, tobj: dict[str, Any]) -> None:
        spec, base = tobj["spec"], f".Values.{w.key}.ingress"
        iv = w.values["ingress"]
        if "className" in iv:
            spec["ingressClassName"] = self._put(f"{{{{ {base}.className }}}}")
        if "annotations" in iv:

            def with_annotations(indent: str, dash: str, key: str, col: int) -> str:
                return (
                    f"{indent}{{{{- with {base}.annotations }}}}\n{indent}annotations:\n"
                    f"{indent}  {{{{- toYaml . | nindent {col + 2} }}}}\n{indent}{{{{- end }}}}"
                )

            tobj["metadata"]["annotations"] = self._put_lines(with_annotations)
        if "tls" in iv:
            spec["tls"] = self._block(f"toYaml {base}.tls")
        svc_name = str(_meta(w.service or {}).get("name"))
        port = (w.values.get("service") or {}).get("port")
        for rule in spec.get("rules") or []:
            if not isinstance(rule, dict):
                continue
            if "host" in iv and rule.get("host") == iv["host"]:
                rule["host"] = self._put(f"{{{{ {base}.host | quote }}}}")
            for backend in _ingress_backends({"spec": {"rules": [rule]}}):
                p = backend.get("port")
                if (
                    backend.get("name") == svc_name
                    and isinstance(p, dict)
                    and p.get("number") == port
                ):
                    p["number"] = self._put(f"{{{{ .Values.{w.key}.service.port }}}}")

    def hpa_template(self, w: _Workload, tobj: dict[str, Any]) -> None:
        spec, base = tobj["spec"], f".Values.{w.key}.autoscaling"
        for k in ("minReplicas", "maxReplicas"):
            if k in w.values.get("autoscaling", {}):
                spec[k] = self._put(f"{{{{ {base}.{k} }}}}")

    def template_for(self, obj: dict[str, Any]) -> str:
        """The template text of one object."""
        kind = str(obj.get("kind"))
        tobj = copy.deepcopy(obj)
        guard = None
        for w in self.workloads:
            if w.obj is obj:
                self.workload_values(w, tobj)
            elif w.service is obj:
                self.service_template(w, tobj)
            elif w.ingress is obj:
                self.ingress_template(w, tobj)
                guard = f".Values.{w.key}.ingress.enabled"
            elif w.hpa is obj:
                self.hpa_template(w, tobj)
                guard = f".Values.{w.key}.autoscaling.enabled"
        tobj = self.rewrite_refs(tobj, (), kind)
        text = self._expand(_dump(tobj))
        if guard:
            text = f"{{{{- if {guard} }}}}\n{text}{{{{- end }}}}\n"
        return text

    def _expand(self, dumped: str) -> str:
        # Input text that looks like a template action must come out literally.
        dumped = dumped.replace("{{", '{{ "{{" }}')
        out: list[str] = []
        for line in dumped.split("\n"):
            m = re.match(r"^(\s*)(- )?(.*?): (__kai_sentinel_(\d+)__)$", line)
            if m and int(m.group(5)) in self.lines:
                indent, dash, key = m.group(1), m.group(2) or "", m.group(3)
                line = self.lines[int(m.group(5))](indent, dash, key, len(indent) + len(dash))
            out.append(line)
        text = "\n".join(out)
        # Inline sentinels may sit inside text produced above (label extras), so replace last.
        return _SENTINEL_RE.sub(lambda m: self.inline[int(m.group(1))], text)

    # -- files -------------------------------------------------------------------------------

    def files(self) -> dict[str, str]:
        templates: dict[str, str] = {}
        for obj in self.objects:
            meta = _meta(obj)
            stem = f"{str(obj.get('kind')).lower()}-{meta.get('name') or 'unnamed'}"
            stem = re.sub(r"[^a-z0-9.-]+", "-", stem.lower())
            fname, n = f"{stem}.yaml", 2
            while f"templates/{fname}" in templates:
                ns = meta.get("namespace")
                fname = f"{stem}-{ns}.yaml" if ns and n == 2 else f"{stem}-{n}.yaml"
                n += 1
            templates[f"templates/{fname}"] = self.template_for(obj)
        return {
            "Chart.yaml": self.chart_yaml(),
            "values.yaml": self.values_yaml(),
            ".helmignore": ".DS_Store\n.git/\n*.swp\n*.bak\n*.tmp\n",
            "templates/_helpers.tpl": self.helpers(),
            "templates/NOTES.txt": self.notes(),
            **templates,
        }

    def chart_yaml(self) -> str:
        chart: dict[str, Any] = {
            "apiVersion": "v2",
            "name": self.name,
            "description": f"A Helm chart for {self.name}, packaged by kai from its manifests",
            "type": "application",
            "version": "0.1.0",
        }
        if self.app_version:
            chart["appVersion"] = self.app_version
        return _dump(chart)

    def values_yaml(self) -> str:
        head = {"nameOverride": "", "fullnameOverride": self.fullname}
        text = (
            f"# Default values for {self.name}, per workload. Override per environment with\n"
            f"# -f values-<env>.yaml or --set {self.workloads[0].key if self.workloads else 'x'}.image.tag=...\n\n"
            "# Object names: fullnameOverride keeps the names of the packaged manifests; set it\n"
            '# to "" to name objects after the release instead.\n' + _dump(head)
        )
        for w in self.workloads:
            if w.values:
                text += f"\n# {w.obj['kind']} {_meta(w.obj).get('name')}\n" + _dump(
                    {w.key: w.values}
                )
        return text

    def helpers(self) -> str:
        n = self.name
        sel = "\n".join(
            f"{k}: {self.label_expr(k, v) or go_quote(str(v))}" for k, v in self.selector.items()
        )
        extra = "\n".join(
            f"{k}: {self.label_expr(k, v) or go_quote(str(v))}"
            for k, v in self.labels.items()
            if k not in self.selector
        )
        return (
            f'{{{{/*\nChart name (nameOverride replaces it).\n*/}}}}\n{{{{- define "{n}.name" -}}}}\n'
            f'{{{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}}}\n'
            "{{- end }}\n\n"
            "{{/*\nFull name of the objects: fullnameOverride (by default the packaged names), else\n"
            "the release name.\n*/}}\n"
            f'{{{{- define "{n}.fullname" -}}}}\n'
            '{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}\n'
            "{{- end }}\n\n"
            "{{/*\nCommon labels (those every packaged object shared).\n*/}}\n"
            f'{{{{- define "{n}.labels" -}}}}\n{{{{ include "{n}.selectorLabels" . }}}}'
            + (f"\n{extra}" if extra else "")
            + "\n{{- end }}\n\n"
            "{{/*\nSelector labels: keep them stable across upgrades (selectors are immutable).\n*/}}\n"
            f'{{{{- define "{n}.selectorLabels" -}}}}\n' + sel + "\n{{- end }}\n"
        )

    def notes(self) -> str:
        lines = [
            "{{ .Chart.Name }} {{ .Chart.AppVersion }} is installed as release {{ .Release.Name }}.",
            "",
        ]
        for w in self.workloads:
            ing = w.values.get("ingress") or {}
            if "host" in ing:
                scheme = "https" if ing.get("tls") else "http"
                lines.append(
                    f"{{{{- if .Values.{w.key}.ingress.enabled }}}}\n"
                    f"{_meta(w.obj).get('name')}: {scheme}://{{{{ .Values.{w.key}.ingress.host }}}}/\n"
                    "{{- end }}"
                )
        lines.append(
            "Review the rendered objects before installing: helm template . | kai review -"
        )
        return "\n".join(lines) + "\n"


def _indent_lines(text: str, pad: str) -> str:
    return "\n".join(pad + line if line else line for line in text.split("\n"))


def _superset(labels: dict[str, Any], subset: dict[str, Any]) -> bool:
    return bool(subset) and all(labels.get(k) == v for k, v in subset.items())


def _ingress_backends(obj: dict[str, Any]) -> Iterable[dict[str, Any]]:
    spec = obj.get("spec") or {}
    default = (spec.get("defaultBackend") or {}).get("service")
    if isinstance(default, dict):
        yield default
    for rule in spec.get("rules") or []:
        for p in ((rule or {}).get("http") or {}).get("paths") or []:
            svc = ((p or {}).get("backend") or {}).get("service")
            if isinstance(svc, dict):
                yield svc


def _ref_kind(path: tuple[Any, ...], key: str, node: dict[str, Any], kind: str) -> str | None:
    """The kind a string field refers to by name, for the reference fields kai knows."""
    parent = path[-1] if path else None
    if key == "serviceAccountName":
        return "ServiceAccount"
    if key == "claimName":
        return "PersistentVolumeClaim"
    if key == "serviceName" and kind == "StatefulSet":
        return "Service"
    if key == "secretName" and parent == "secret":
        return "Secret"
    if key != "name":
        return None
    if parent in ("configMapRef", "configMapKeyRef", "configMap"):
        return "ConfigMap"
    if parent in ("secretRef", "secretKeyRef"):
        return "Secret"
    if parent in ("scaleTargetRef", "roleRef"):
        return str(node.get("kind"))
    if parent == "service" and kind == "Ingress":
        return "Service"
    if len(path) >= 2 and path[-2] == "subjects" and node.get("kind") == "ServiceAccount":
        return "ServiceAccount"
    return None


def build_chart(objects: Sequence[dict[str, Any]], name: str) -> dict[str, str]:
    """The chart's files (relative path -> text) for these objects."""
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name):
        raise InputError(
            f"--name {name!r}: a chart name is lowercase letters, digits and dashes (like my-app)"
        )
    if not objects:
        raise InputError("nothing to package: the input holds no Kubernetes objects")
    for obj in objects:
        _check_names(obj)
    try:
        return _Builder(list(objects), name).files()
    except (AttributeError, TypeError, KeyError, IndexError, ValueError, yaml.YAMLError) as e:
        # A shape the schema check could not see (a kind without a schema, say): say so in one
        # line instead of failing inside the generator.
        raise InputError(
            f"cannot package these objects: a field has a shape kai does not expect "
            f"({type(e).__name__}); run kai validate on them first"
        ) from None


# What a name may not hold: Kubernetes path-segment names exclude "/" and "%", every kind's
# name is printable without spaces, and a chart file is named after it.
_BAD_NAME = re.compile(r"[\x00-\x20\x7f-\x9f/%\\\u2028\u2029]")


def _check_names(obj: dict[str, Any]) -> None:
    from kai.yamlio import printable

    meta = _meta(obj)
    for key in ("name", "namespace", "generateName"):
        value = meta.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or _BAD_NAME.search(value) or value in (".", ".."):
            shown = printable(str(value))[:80]
            raise InputError(
                f"{printable(str(obj.get('kind')))[:40]} '{shown}': metadata.{key} is not a valid "
                "Kubernetes name (no spaces, slashes or control characters); fix it before packaging"
            )


def schema_type_errors(manifests: Sequence[Manifest]) -> None:
    """Refuse objects whose fields have the wrong type (spec.rules: "x"): the first, by line."""
    from kai.models import WRONG_TYPE
    from kai.policy.validate import validate

    result = validate(manifests, strict=False, backend="builtin")
    wrong = [f for f in result.findings if f.rule == WRONG_TYPE]
    if wrong:
        from kai.yamlio import printable

        f = min(wrong, key=lambda f: (f.file, f.line))
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        raise InputError(
            f"{f.file}:{f.line}: {printable(f.object.display())}: {f.path}: {f.message}{more}; "
            "kai package helm needs well-typed objects (kai validate lists them)"
        )


def package_chart(manifests: Sequence[Manifest], name: str, out: Path) -> list[Path]:
    """Write the chart for these manifests into `out`; returns the files written."""
    if manifests:
        schema_type_errors(manifests)
    files = build_chart([m.obj for m in manifests], name)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise InputError(f"{out}: directory is not empty (choose another --out)")
    written = []
    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


# ---------------------------------------------------------------------------------------------
# kai's renderer: the Go-template subset of kai-generated charts


class _Unsupported(Exception):
    pass


_FUNCS = frozenset(
    {"include", "toYaml", "nindent", "indent", "quote", "default", "not", "trunc", "trimSuffix"}
)
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\\n]|\\.)*")
    | (?P<raw>`[^`]*`)
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<punct>[|()])
    | (?P<other>\S+?)(?=\s|$|[|()]|-?}}))""",
    re.X,
)


_SPACE = re.compile(r"\s*")


@dataclass
class _Action:
    tokens: list[tuple[str, str]]
    line: int


@dataclass
class _Node:
    kind: str  # text, action, if, with, define
    text: str = ""
    pipe: list[list[tuple[str, str]]] = field(default_factory=list)
    body: list[_Node] = field(default_factory=list)
    orelse: list[_Node] = field(default_factory=list)
    line: int = 0


def _lex(src: str, file: str) -> list[str | _Action]:
    """Text and actions, with {{- and -}} trimming applied."""
    items: list[str | _Action] = []
    pos, trim_next = 0, False
    while True:
        i = src.find("{{", pos)
        text = src[pos:] if i < 0 else src[pos:i]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if i < 0:
            items.append(text)
            return items
        line = src.count("\n", 0, i) + 1
        j = i + 2
        if src.startswith("-", j) and src[j + 1 : j + 2] in (" ", "\t", "\r", "\n"):
            text = text.rstrip(" \t\r\n")
            j += 1
        items.append(text)
        k = j
        while k < len(src) and src[k] in " \t\r\n":
            k += 1
        if src.startswith("/*", k):  # a comment
            end = src.find("*/", k + 2)
            if end < 0:
                raise InputError(f"{file}:{line}: unclosed comment")
            close = src.find("}}", end)
            between = src[end + 2 : close].strip() if close >= 0 else "x"
            if close < 0 or between not in ("", "-"):
                raise InputError(f"{file}:{line}: comment not followed by }}}}")
            trim_next = between == "-"
            pos = close + 2
            continue
        tokens: list[tuple[str, str]] = []
        trim_next = False
        while True:
            k = _SPACE.match(src, k).end()  # type: ignore[union-attr]
            if src.startswith("}}", k):
                pos = k + 2
                break
            if src.startswith("-}}", k) and src[k - 1] in " \t\r\n":
                trim_next, pos = True, k + 3
                break
            if k >= len(src):
                raise InputError(f"{file}:{line}: unclosed action")
            tm = _TOKEN.match(src, k)
            if not tm or tm.end() == k:
                raise InputError(f"{file}:{line}: cannot read template action")
            kind = tm.lastgroup or "other"
            value = tm.group(kind)
            tokens.append((kind, value))
            k = tm.end()
        items.append(_Action(tokens, line))


def _parse(items: list[str | _Action], file: str) -> tuple[list[_Node], dict[str, list[_Node]]]:
    defines: dict[str, list[_Node]] = {}
    pos = 0

    def block(top: bool) -> tuple[list[_Node], str, int]:
        nonlocal pos
        nodes: list[_Node] = []
        while pos < len(items):
            item = items[pos]
            pos += 1
            if isinstance(item, str):
                if item:
                    nodes.append(_Node("text", text=item))
                continue
            toks = item.tokens
            if not toks:
                raise InputError(f"{file}:{item.line}: empty action")
            head = toks[0][1] if toks[0][0] == "ident" else ""
            if head in ("end", "else"):
                if top:
                    raise InputError(f"{file}:{item.line}: unexpected {{{{ {head} }}}}")
                if len(toks) != 1:
                    raise _Unsupported(
                        f"{file}:{item.line}: {{{{ {' '.join(t[1] for t in toks)} }}}}"
                    )
                return nodes, head, item.line
            if head in ("if", "with"):
                node = _Node(head, pipe=_pipeline(toks[1:], file, item.line), line=item.line)
                node.body, how, _ = block(False)
                if how == "else":
                    node.orelse, how, _ = block(False)
                    if how != "end":
                        raise InputError(f"{file}:{item.line}: {head} has two else branches")
                nodes.append(node)
            elif head == "define":
                if not top or len(toks) != 2 or toks[1][0] != "str":
                    raise InputError(f"{file}:{item.line}: define must be top-level with a name")
                body, how, _ = block(False)
                if how != "end":
                    raise InputError(f"{file}:{item.line}: define ends with else")
                defines[json.loads(toks[1][1])] = body
            elif head in ("range", "template", "block", "break", "continue") or head == "nil":
                raise _Unsupported(f"{file}:{item.line}: {{{{ {head} }}}}")
            else:
                nodes.append(_Node("action", pipe=_pipeline(toks, file, item.line), line=item.line))
        if not top:
            raise InputError(f"{file}: missing {{{{ end }}}}")
        return nodes, "", 0

    nodes, _, _ = block(True)
    return nodes, defines


def _pipeline(toks: list[tuple[str, str]], file: str, line: int) -> list[list[tuple[str, str]]]:
    """Split a pipeline into commands; parenthesised sub-pipelines stay as ("paren", ...)."""
    for kind, value in toks:
        if kind == "other":
            raise _Unsupported(f"{file}:{line}: `{value}`")
        if kind == "ident" and value not in _FUNCS and value not in ("true", "false"):
            raise _Unsupported(f"{file}:{line}: function `{value}`")
    cmds: list[list[tuple[str, str]]] = [[]]
    depth = 0
    for kind, value in toks:
        if kind == "punct" and value == "|" and depth == 0:
            cmds.append([])
            continue
        if kind == "punct":
            depth += 1 if value == "(" else -1 if value == ")" else 0
            if depth < 0:
                raise InputError(f"{file}:{line}: unbalanced parentheses")
        cmds[-1].append((kind, value))
    if depth != 0 or any(not c for c in cmds):
        raise InputError(f"{file}:{line}: malformed pipeline")
    return cmds


@dataclass
class _Root:
    values: dict[str, Any]
    release: dict[str, Any]
    chart: dict[str, Any]


_ALLOWED = {"Release": ("Name",), "Chart": ("Name", "Version", "AppVersion")}


def _truth(v: Any) -> bool:
    return v not in (None, False, 0, "") and not (isinstance(v, (dict, list)) and not v)


def _strval(v: Any, where: str) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
        return str(int(v))
    if isinstance(v, (str, int, float)):
        return str(v)
    raise _Unsupported(f"{where}: printing a {type(v).__name__} (use toYaml)")


def _to_yaml(v: Any) -> str:
    return (
        str(
            yaml.dump(
                v, Dumper=_SafeDumper, default_flow_style=False, allow_unicode=True, width=1_000_000
            )
        )
        .removesuffix("\n")
        .removesuffix("\n...")
    )


class _Renderer:
    def __init__(self, defines: dict[str, list[_Node]], file: str) -> None:
        self.defines = defines
        self.file = file
        self.depth = 0

    def render(self, nodes: list[_Node], dot: Any) -> str:
        out: list[str] = []
        for n in nodes:
            if n.kind == "text":
                out.append(n.text)
            elif n.kind == "action":
                out.append(_strval(self.pipe(n.pipe, dot, n.line), f"{self.file}:{n.line}"))
            else:
                v = self.pipe(n.pipe, dot, n.line)
                if _truth(v):
                    out.append(self.render(n.body, v if n.kind == "with" else dot))
                else:
                    out.append(self.render(n.orelse, dot))
        return "".join(out)

    def pipe(self, cmds: list[list[tuple[str, str]]], dot: Any, line: int) -> Any:
        value: Any = _NOTHING
        for cmd in cmds:
            value = self.command(cmd, dot, line, value)
        return value

    def command(self, cmd: list[tuple[str, str]], dot: Any, line: int, piped: Any) -> Any:
        where = f"{self.file}:{line}"
        args = self.operands(cmd, dot, line)
        kind, value = cmd[0]
        if kind != "ident" or value in ("true", "false"):
            if len(args) != 1 or piped is not _NOTHING:
                raise InputError(f"{where}: can't give an argument to a non-function")
            return args[0]
        params = args[1:] + ([] if piped is _NOTHING else [piped])
        return self.call(value, params, where)

    def operands(self, cmd: list[tuple[str, str]], dot: Any, line: int) -> list[Any]:
        out: list[Any] = []
        i = 0
        while i < len(cmd):
            kind, value = cmd[i]
            if kind == "punct" and value == "(":
                depth, j = 1, i + 1
                while depth:
                    depth += {"(": 1, ")": -1}.get(cmd[j][1], 0) if cmd[j][0] == "punct" else 0
                    j += 1
                inner = _pipeline(cmd[i + 1 : j - 1], self.file, line)
                out.append(self.pipe(inner, dot, line))
                i = j
                continue
            if kind == "str":
                out.append(json.loads(value))
            elif kind == "raw":
                out.append(value[1:-1])
            elif kind == "num":
                out.append(float(value) if "." in value else int(value))
            elif kind == "field":
                out.append(self.field(value, dot, line))
            elif kind == "ident":
                if i and value not in ("true", "false"):
                    raise _Unsupported(f"{self.file}:{line}: `{value}` as an argument")
                out.append({"true": True, "false": False}.get(value, value))
            i += 1
        return out

    def field(self, chain: str, dot: Any, line: int) -> Any:
        if chain == ".":
            return dot
        names = chain[1:].split(".")
        value = dot
        for i, name in enumerate(names):
            if isinstance(value, _Root):
                if name == "Values":
                    value = value.values
                elif name in _ALLOWED and len(names) > i + 1 and names[i + 1] in _ALLOWED[name]:
                    value = (value.release if name == "Release" else value.chart).get(names[i + 1])
                    if len(names) > i + 2:
                        raise InputError(f"{self.file}:{line}: {chain}: not a map")
                    return value
                else:
                    raise _Unsupported(f"{self.file}:{line}: {chain}")
            elif isinstance(value, dict):
                value = value.get(name)
            elif value is None:
                raise InputError(
                    f"{self.file}:{line}: nil pointer evaluating {chain} (a missing value)"
                )
            else:
                raise InputError(
                    f"{self.file}:{line}: {chain}: can't read .{name} of a {type(value).__name__}"
                )
        return value

    def call(self, fn: str, a: list[Any], where: str) -> Any:
        def need(n: int) -> None:
            if len(a) != n:
                raise InputError(f"{where}: {fn} takes {n} arguments, got {len(a)}")

        if fn == "include":
            need(2)
            body = self.defines.get(str(a[0]))
            if body is None:
                raise InputError(f"{where}: no template {a[0]!r} is defined")
            self.depth += 1
            if self.depth > 50:
                raise InputError(f"{where}: include nested too deeply")
            try:
                return self.render(body, a[1])
            finally:
                self.depth -= 1
        if fn == "toYaml":
            need(1)
            return _to_yaml(a[0])
        if fn in ("nindent", "indent"):
            need(2)
            pad = " " * _int(a[0], where)
            text = pad + _strval(a[1], where).replace("\n", "\n" + pad)
            return "\n" + text if fn == "nindent" else text
        if fn == "quote":
            return " ".join(go_quote(_strval(v, where)) for v in a if v is not None)
        if fn == "default":
            if len(a) not in (1, 2):
                raise InputError(f"{where}: default takes 2 arguments")
            return a[1] if len(a) == 2 and _truth(a[1]) else a[0]
        if fn == "not":
            need(1)
            return not _truth(a[0])
        if fn == "trunc":
            need(2)
            s, n = _strval(a[1], where), _int(a[0], where)
            return s[:n] if n >= 0 else s[n:]
        if fn == "trimSuffix":
            need(2)
            return _strval(a[1], where).removesuffix(_strval(a[0], where))
        raise _Unsupported(f"{where}: function `{fn}`")


_NOTHING = object()


def _int(v: Any, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(f"{where}: expected a number, got {v!r}")
    return int(v)


def merge_values(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge overrides into values; a dotted key (agent.image.tag) is a path, like --set."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        target = out
        parts = key.split(".")
        for p in parts[:-1]:
            if not isinstance(target.get(p), dict):
                target[p] = {}
            target = target[p]
        if isinstance(value, dict) and isinstance(target.get(parts[-1]), dict):
            target[parts[-1]] = merge_values(target[parts[-1]], value)
        else:
            target[parts[-1]] = copy.deepcopy(value)
    return out


RELEASE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
MAX_RELEASE_NAME = 53


def _load_yaml_file(path: Path) -> Any:
    from kai.manifests import read_file
    from kai.yamlio import iter_documents

    docs = list(iter_documents(read_file(path), str(path)))
    return docs[0][1] if docs else None


def _chart_meta(chart_dir: Path) -> dict[str, Any]:
    chart = chart_dir / "Chart.yaml"
    if not chart.is_file():
        raise InputError(f"{chart_dir}: not a Helm chart (no Chart.yaml)")
    meta = _load_yaml_file(chart)
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        raise InputError(f"{chart}: Chart.yaml needs a name")
    name = meta["name"]
    # The name becomes helm template's release name: Helm's own rule (a DNS subdomain, at most
    # 53 characters), which also keeps a name like `--post-renderer=/bin/sh` from being a flag.
    if len(name) > MAX_RELEASE_NAME or not RELEASE_NAME.fullmatch(name):
        raise InputError(
            f"{chart}: invalid chart name {name!r}: use lowercase letters, digits, '-' and '.', "
            f"starting and ending with a letter or digit, at most {MAX_RELEASE_NAME} characters"
        )
    return meta


def _render_with_kai(chart_dir: Path, overrides: dict[str, Any]) -> list[tuple[str, str]]:
    """(template path, rendered text) for each template, by kai's own renderer."""
    meta = _chart_meta(chart_dir)
    if meta.get("dependencies") or any((chart_dir / "charts").glob("*")):
        raise InputError(
            f"{chart_dir}: unsupported by kai's renderer: chart dependencies (install helm to render it)"
        )
    values_file = chart_dir / "values.yaml"
    values = _load_yaml_file(values_file) if values_file.is_file() else {}
    values = merge_values(values if isinstance(values, dict) else {}, overrides)
    root = _Root(
        values,
        {"Name": meta["name"]},
        {
            "Name": meta["name"],
            "Version": meta.get("version"),
            "AppVersion": meta.get("appVersion"),
        },
    )
    from kai.manifests import read_file

    tdir = chart_dir / "templates"
    files = sorted(p for p in tdir.rglob("*") if p.is_file()) if tdir.is_dir() else []
    parsed: list[tuple[Path, list[_Node]]] = []
    defines: dict[str, list[_Node]] = {}
    try:
        for p in files:
            if p.name == "NOTES.txt":
                continue
            nodes, defs = _parse(_lex(read_file(p), str(p)), str(p))
            defines.update(defs)
            if not p.name.startswith("_"):
                parsed.append((p, nodes))
        out = []
        for p, nodes in parsed:
            out.append((str(p), _Renderer(defines, str(p)).render(nodes, root)))
    except _Unsupported as e:
        raise InputError(
            f"unsupported by kai's renderer (it renders only kai-generated charts; install helm): {e}"
        ) from None
    return out


def _render_with_helm(
    helm: str, chart_dir: Path, overrides: dict[str, Any]
) -> list[tuple[str, str]]:
    meta = _chart_meta(chart_dir)
    with tempfile.TemporaryDirectory(prefix="kai-helm-") as tmp:
        argv = [helm, "template"]
        if overrides:
            vf = Path(tmp) / "overrides.yaml"
            vf.write_text(json.dumps(merge_values({}, overrides)), encoding="utf-8")
            argv += ["--values", str(vf)]
        argv += ["--", meta["name"], str(chart_dir)]  # positionals are never read as flags
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise InputError(f"{chart_dir}: helm template failed: {e}") from None
    if proc.returncode != 0:
        msg = next((ln for ln in proc.stderr.splitlines() if ln.strip()), "no message")
        raise InputError(f"{chart_dir}: helm template failed: {msg}")
    out: list[tuple[str, str]] = []
    for chunk in re.split(r"(?m)^---[ \t]*$", proc.stdout):
        m = re.search(r"(?m)^# Source: [^/]+/(.+)$", chunk)
        out.append((str(chart_dir / m.group(1)) if m else str(chart_dir), chunk))
    return out


def helm_binary() -> str | None:
    return shutil.which("helm")


def render_chart_manifests(
    chart_dir: str | Path, values_overrides: dict[str, Any] | None = None
) -> tuple[list[Manifest], list[Note]]:
    """Render a chart (helm when on PATH, else kai's renderer) into manifests."""
    from kai.manifests import load_text

    chart_dir = Path(chart_dir)
    helm = helm_binary()
    rendered = (
        _render_with_helm(helm, chart_dir, values_overrides or {})
        if helm
        else _render_with_kai(chart_dir, values_overrides or {})
    )
    manifests: list[Manifest] = []
    notes: list[Note] = []
    for file, text in rendered:
        if not text.strip():
            continue
        m, n = load_text(text, file)
        # Lines refer to the rendered text, not the template: point at the template's top.
        manifests += [Manifest(x.ref, Source(file, 1), x.obj) for x in m]
        notes += n
    return manifests, notes


def render_chart(
    chart_dir: str | Path, values_overrides: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The objects a chart renders to, with optional value overrides (nested or dotted keys)."""
    return [m.obj for m in render_chart_manifests(chart_dir, values_overrides)[0]]


def is_chart(path: str) -> bool:
    return path != "-" and (Path(path) / "Chart.yaml").is_file()


def renderer_notice(paths: Iterable[str]) -> str | None:
    """The one line to show when charts are reviewed without helm."""
    if helm_binary() or not any(is_chart(p) for p in paths):
        return None
    return (
        "note: helm is not on PATH: reviewing the chart with kai's own renderer, "
        "which supports only kai-generated charts"
    )


def load_charts(paths: Iterable[str]) -> tuple[list[Manifest], list[Note], list[str]]:
    """Render the chart directories among `paths`; returns their objects and the other paths."""
    manifests: list[Manifest] = []
    notes: list[Note] = []
    rest: list[str] = []
    for p in paths:
        if is_chart(p):
            m, n = render_chart_manifests(p)
            manifests += m
            notes += n
        else:
            rest.append(p)
    return manifests, notes, rest

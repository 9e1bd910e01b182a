"""Helm packaging: manifests to an idiomatic chart (`kai package helm`).

`package_chart` writes Chart.yaml, values.yaml (what teams change per environment) and
templates that reproduce the input objects with default values. Rendering a chart back to
objects is kai/helm/runner.py (`helm template`, or kai's own renderer in kai/helm/template.py,
which knows exactly the Go-template subset kai's charts use and refuses anything else).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kai.errors import InputError
from kai.models import Manifest

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
    # helm and the API server read YAML with go-yaml, which takes plain y, n, 1e3, 0o17, 1_000
    # or .iNf for a boolean or a number where PyYAML (YAML 1.1) reads a string: quote those.
    from kai.goyaml import go_resolve

    style = "'" if type(go_resolve(value)) is not str else None
    if "\x85" in value or "\u2028" in value or "\u2029" in value:
        # YAML 1.1 line breaks: PyYAML folds them in a quoted scalar, go-yaml reads them as
        # text, and the value changes ('\x85' came back '\x85  '); escaped, they survive
        style = '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


class _SafeDumper(yaml.SafeDumper):
    """PyYAML's safe dumper, quoting every string a YAML 1.1 reader would retype."""


_SafeDumper.add_representer(str, _represent_str)
_IndentDumper.add_representer(str, _represent_str)


def _dump(data: Any) -> str:
    """Block YAML as _IndentDumper writes it: the fast emitter when it can, PyYAML otherwise."""
    try:
        return _block(data)
    except _Unusual:
        pass
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


class _Unusual(Exception):
    """Data the fast emitter does not write (floats, non-string keys, quoted strings, ...)."""


# Strings _block writes plain: a conservative subset of what PyYAML writes plain in block
# context (no indicator first, no ": " or " #", no leading or trailing space, no line break),
# further restricted below to those both PyYAML's and go-yaml's resolvers read back as the same
# string. Anything else takes PyYAML's emitter (tests/test_helm_emit.py holds the two equal).
_PLAIN = re.compile(r"[A-Za-z0-9_./\-](?:[A-Za-z0-9_./=+,@~%()$\-]|:(?! )| (?=[^ #]))*")
_PLAIN_CACHE: dict[str, bool] = {}
_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVER = yaml.resolver.Resolver()


def _plain(text: str) -> str:
    known = _PLAIN_CACHE.get(text)
    if known is None:
        from kai.goyaml import go_resolve

        known = (
            _PLAIN.fullmatch(text) is not None
            and not text.endswith(":")
            and text != "-"
            and not text.startswith(("- ", "---", "..."))  # a sequence entry, a document marker
            and _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == _STR_TAG  # type: ignore[no-untyped-call]
            and type(go_resolve(text)) is str
        )
        if len(_PLAIN_CACHE) < 100_000:
            _PLAIN_CACHE[text] = known
    if not known:
        raise _Unusual(text)
    return text


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return str(value)
    if type(value) is str:
        return _plain(value)
    raise _Unusual(value)


def _entry(head: str, value: Any, indent: int, out: list[str], same_line: bool) -> None:
    """One `key:` or `-` and its value. A non-empty collection under a key starts on the next
    line; under a dash it starts on the dash's line (lists are indented, as `helm create` does)."""
    kind = type(value)
    if kind is dict or kind is list:
        if not value:
            out.append(head + (" {}\n" if kind is dict else " []\n"))
            return
        out.append(head + (" " if same_line else "\n"))
        write = _mapping if kind is dict else _sequence
        write(value, indent + 2, out, same_line)
    else:
        out.append(f"{head} {_scalar(value)}\n")


def _mapping(data: dict[Any, Any], indent: int, out: list[str], inline: bool) -> None:
    pad = " " * indent
    for key, value in data.items():
        if type(key) is not str or len(key) >= 128:  # PyYAML writes a longer key as "? key"
            raise _Unusual(key)
        _entry(f"{'' if inline else pad}{_plain(key)}:", value, indent, out, False)
        inline = False


def _sequence(items: list[Any], indent: int, out: list[str], inline: bool) -> None:
    pad = " " * indent
    for value in items:
        _entry(f"{'' if inline else pad}-", value, indent, out, True)
        inline = False


def _block(data: Any) -> str:
    """_IndentDumper's output for a non-empty mapping of JSON-like data, ~10x faster; raises
    _Unusual for anything outside the subset it writes exactly as PyYAML would."""
    if type(data) is not dict or not data:
        raise _Unusual(data)
    out: list[str] = []
    _mapping(data, 0, out, False)
    return "".join(out)


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


# helm keeps each release (the chart's templates and values, and the rendered manifest; gzip'd
# at gzip.BestCompression, then base64'd) in one Secret, or ConfigMap, of at most 1 MiB: a bigger
# release fails at `helm install` with "data: Too long: must have at most 1048576 bytes".
RELEASE_LIMIT = 1024 * 1024


def release_size_floor(manifests: Sequence[Manifest]) -> int | None:
    """A low estimate of the release record's size, when it is surely over helm's limit.

    The record holds every object twice, as a template (or values) and in the rendered manifest,
    each far beyond gzip's 32 KiB window from the other: at least twice the objects' own gzip'd
    size, base64'd. Refused only with a quarter's margin over the limit; compressing stops as
    soon as that is reached, so a 50 MB input costs a few seconds, not minutes of chart writing.
    """
    import json
    import zlib

    refuse_at = RELEASE_LIMIT * 5 // 4
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    gzipped = 0
    for m in manifests:
        data = json.dumps(m.obj, separators=(",", ":"), ensure_ascii=False, default=str)
        gzipped += len(z.compress(data.encode("utf-8", "surrogatepass")))
        if (floor := 2 * gzipped * 4 // 3) > refuse_at:
            return floor
    floor = 2 * (gzipped + len(z.flush())) * 4 // 3
    return floor if floor > refuse_at else None


def package_chart(manifests: Sequence[Manifest], name: str, out: Path) -> list[Path]:
    """Write the chart for these manifests into `out`; returns the files written."""
    floor = release_size_floor(manifests)
    if floor is not None:
        raise InputError(
            f"{len(manifests)} {'object makes' if len(manifests) == 1 else 'objects make'} a Helm release "
            f"of more than {floor / 2**20:.1f} MiB "
            "(gzip'd and base64'd), and helm keeps each release in one Secret of at most 1 MiB: "
            "`helm install` would fail ('data: Too long'); split them into several charts"
        )
    if manifests:
        schema_type_errors(manifests)
    files = build_chart([m.obj for m in manifests], name)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        raise InputError(f"{out}: directory is not empty (choose another --out)")
    written = []
    folders: set[Path] = set()
    for rel, text in files.items():
        path = out / rel
        if path.parent not in folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            folders.add(path.parent)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written

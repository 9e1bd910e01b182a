"""`--anonymize`: stable placeholders for names, namespaces, images, IPs and hostnames.

What the model sees is `obj-1`, `ns-1`, `img-1`, `ip-1`, `host-1`; what the person sees has the
real values restored. The same value always gets the same placeholder within a session, so the
model can still reason ("obj-2 is the Service in front of obj-1") and call tools with them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"
)
_IMAGE = re.compile(
    r"(?<![\w./-])(?:[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\d+)?/)+[a-z0-9][a-z0-9._-]*"
    r"(?::[\w][\w.-]{0,127}|@sha256:[a-f0-9]{64})?(?![\w/])"
)
_IMAGE_FIELD = re.compile(r'(?:Image:\s+|image:\s+|image "|Image "|pull image ")([^\s"]+)')
_HOST = re.compile(
    r"(?<![\w.-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
    r"(?:com|net|org|dev|ai|cloud|internal|local|app|co|io|svc)(?![\w-])"
)
# Names Kubernetes itself owns: replacing them would only confuse the model.
_KEEP_SUFFIXES = ("kubernetes.io", "k8s.io", "x-k8s.io", "kubernetes.default.svc")
_KEEP = {"default", "kube-system", "kube-public", "kube-node-lease"}
_PREFIX = {"name": "obj", "namespace": "ns", "image": "img", "ip": "ip", "host": "host"}


@dataclass(slots=True)
class Anonymizer:
    forward: dict[str, str] = field(default_factory=dict)  # real -> placeholder
    counters: dict[str, int] = field(default_factory=dict)

    def learn(self, value: str, category: str) -> str:
        """The placeholder for `value`, creating a stable one the first time it is seen."""
        if not value or value in _KEEP or value in self.forward.values():
            return value
        if value not in self.forward:
            n = self.counters.get(category, 0) + 1
            self.counters[category] = n
            self.forward[value] = f"{_PREFIX[category]}-{n}"
        return self.forward[value]

    def learn_object(self, obj: Any) -> None:
        """Names, namespaces, images and owner names in an object (or a List of them)."""
        if isinstance(obj, list):
            for item in obj:
                self.learn_object(item)
            return
        if not isinstance(obj, dict):
            return
        if isinstance(obj.get("items"), list):
            self.learn_object(obj["items"])
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            if isinstance(meta.get("namespace"), str):
                self.learn(meta["namespace"], "namespace")
            if isinstance(meta.get("name"), str):
                self.learn(meta["name"], "name")
            for owner in meta.get("ownerReferences") or []:
                if isinstance(owner, dict) and isinstance(owner.get("name"), str):
                    self.learn(owner["name"], "name")
        for key, value in obj.items():
            if key == "image" and isinstance(value, str):
                self.learn(value, "image")
            elif key in ("podIP", "hostIP", "clusterIP") and isinstance(value, str):
                self.learn(value, "ip")
            elif isinstance(value, dict | list):
                self.learn_object(value)

    def learn_table(self, text: str) -> None:
        """Names, namespaces, nodes and IPs in the columns of a `kubectl get` table."""
        lines = text.splitlines()
        if not lines or not lines[0].startswith(("NAME", "NAMESPACE")):
            return
        # kubectl aligns its columns: cut each row at the header's column offsets.
        starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", lines[0])]
        titles = [m.group(0) for m in re.finditer(r"\S+(?: \S+)*", lines[0])]
        columns = {"NAME": "name", "NAMESPACE": "namespace", "NODE": "name", "IP": "ip"}
        for line in lines[1:]:
            for i, title in enumerate(titles):
                if title not in columns:
                    continue
                end = starts[i + 1] if i + 1 < len(starts) else len(line)
                cell = line[starts[i] : end].strip()
                if cell and " " not in cell and cell not in ("<none>", "<pending>"):
                    self.learn(cell.rpartition("/")[2], columns[title])

    def hide(self, text: str) -> str:
        """`text` with every known and every recognisable identifying value replaced."""
        for m in _IMAGE_FIELD.finditer(text):
            self.learn(m.group(1), "image")
        for m in _IMAGE.finditer(text):
            ref = m.group(0)
            tagged = ":" in ref or "@" in ref or ref.count("/") >= 2
            if "/" in ref and tagged and not ref.endswith(_KEEP_SUFFIXES):
                self.learn(ref, "image")
        for m in _HOST.finditer(text):
            host = m.group(0)
            if not host.endswith(_KEEP_SUFFIXES) and "." in host:
                self.learn(host, "host")
        for m in _IPV4.finditer(text):
            self.learn(m.group(0), "ip")
        for real in sorted(self.forward, key=len, reverse=True):
            text = re.sub(
                rf"(?<![A-Za-z0-9.]){re.escape(real)}(?![A-Za-z0-9])", self.forward[real], text
            )
        return text

    def reveal(self, text: str) -> str:
        """`text` with every placeholder turned back into the real value."""
        back = {v: k for k, v in self.forward.items()}
        for placeholder in sorted(back, key=len, reverse=True):
            text = re.sub(rf"(?<![\w]){re.escape(placeholder)}(?!\d)", back[placeholder], text)
        return text

    def reveal_any(self, value: Any) -> Any:
        """`reveal` over every string in a JSON-like value."""
        if isinstance(value, str):
            return self.reveal(value)
        if isinstance(value, list):
            return [self.reveal_any(v) for v in value]
        if isinstance(value, dict):
            return {self.reveal_any(k): self.reveal_any(v) for k, v in value.items()}
        return value

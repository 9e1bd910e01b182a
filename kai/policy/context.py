"""The review Context: every object under review, indexed once so cross-object checks stay linear.

A cross-object check (kai.policy.crossobject, kai.policy.references) asks questions such as "which
workloads does this Service select?", "does any NetworkPolicy select these pods?" or "is there a
Service named x in namespace y?". Asked naively each is a scan of the namespace, and a namespace
with thousands of workloads turns the review quadratic. The Context answers them from indexes
built on first use, so each question touches only its candidates:

- by kind, namespace and name: `of_kind`, `named`, `get`, `by_name`;
- forward selection (a selector, which workloads' pod labels does it select?): `selected_by` and
  `selects_any` for a Service's plain map, `matching` and `any_matching` for a
  metav1.LabelSelector (matchLabels + matchExpressions);
- reverse selection (these pod labels, which objects' selectors select them?): `selecting` and
  `any_selecting`, e.g. the NetworkPolicies or PodDisruptionBudgets that cover a workload;
- memoized per-object facts (`pod`, `labels`, `container_ports`) and `memo` for a check's own
  derived index.

Selectors are indexed by label pair (a selector with matchLabels can only select labels that carry
its first pair; one with an `In` expression, labels that carry one of its values); one with only
an `Exists` term by that key; only empty and purely negative selectors go to a short list that
every lookup checks. Every selector evaluated against a candidate counts in `evaluations`, which
tests use to keep the quadratic from coming back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kai.models import Manifest
from kai.policy import workload
from kai.policy.selectors import label_selector_matches


@dataclass(frozen=True, slots=True)
class Hit:
    """A check's raw result: what is wrong and where in the object."""

    message: str
    path: str | None = None


# How a check reads the selector of an object that selects pods (None: it selects nothing).
SelectorFn = Callable[[Manifest], Any]


def spec_selector(m: Manifest) -> Any:
    """spec.selector (a PodDisruptionBudget's, a workload's); None when there is no spec."""
    spec = m.obj.get("spec")
    return spec.get("selector") if isinstance(spec, dict) else None


def _narrowing(selector: dict[str, Any]) -> tuple[str, list[str]] | None:
    """A label key every label set this selector selects must carry, and the values it must have
    there (from an In expression; [] from Exists: any value), if the selector has such a term."""
    exprs = selector.get("matchExpressions", [])
    found: tuple[str, list[str]] | None = None
    for e in exprs if isinstance(exprs, list) else []:
        if isinstance(e, dict) and isinstance(e.get("key"), str):
            op = e.get("operator")
            values = e.get("values", [])
            if op == "In" and isinstance(values, list) and values:
                return str(e["key"]), sorted({str(v) for v in values})
            if op == "Exists" and isinstance(values, list) and not values and found is None:
                found = (str(e["key"]), [])
    return found


class _ReverseIndex:
    """Objects carrying a label selector, indexed so a label set finds only its candidates."""

    __slots__ = ("by_key", "by_pair", "rest")

    def __init__(self) -> None:
        self.by_pair: dict[tuple[str, str], list[tuple[int, Any, Manifest]]] = defaultdict(list)
        self.by_key: dict[str, list[tuple[int, Any, Manifest]]] = defaultdict(list)
        self.rest: list[tuple[int, Any, Manifest]] = []

    def add(self, pos: int, selector: Any, m: Manifest) -> None:
        if not isinstance(selector, dict):
            return  # selects nothing (label_selector_matches says so for None and non-mappings)
        match_labels = selector.get("matchLabels", {})
        if not isinstance(match_labels, dict) or not isinstance(
            selector.get("matchExpressions", []), list
        ):
            return  # rejected by the API server: selects nothing
        entry = (pos, selector, m)
        if match_labels:
            k, v = next(iter(match_labels.items()))
            self.by_pair[(str(k), str(v))].append(entry)
            return
        narrowing = _narrowing(selector)
        if narrowing is None:
            self.rest.append(entry)
        elif narrowing[1]:  # In: one entry per value (a label set has one value for the key)
            for v in narrowing[1]:
                self.by_pair[(narrowing[0], v)].append(entry)
        else:
            self.by_key[narrowing[0]].append(entry)

    def candidates(self, labels: Mapping[str, str]) -> list[tuple[int, Any, Manifest]]:
        """Every indexed selector that might select `labels`, in the order they were added."""
        found: list[tuple[int, Any, Manifest]] = list(self.rest)
        if self.by_pair:
            for pair in labels.items():
                found += self.by_pair.get(pair, ())
        if self.by_key:
            for key in labels:
                found += self.by_key.get(key, ())
        found.sort(key=lambda e: e[0])
        return found


class Context:
    """Everything a cross-object check may look at: all objects under review (and existing ones)."""

    def __init__(self, manifests: Sequence[Manifest], default_namespace: str = "default") -> None:
        self.manifests = manifests
        self.default_namespace = default_namespace
        # Selector evaluations against candidates (tests assert this grows linearly).
        self.evaluations = 0
        self._by_kind: dict[str, list[Manifest]] = defaultdict(list)
        self._by_kind_ns: dict[tuple[str, str], list[Manifest]] = defaultdict(list)
        self._pos: dict[int, int] = {}
        for i, m in enumerate(manifests):
            self._pos[id(m)] = i
            self._by_kind[m.ref.kind].append(m)
            self._by_kind_ns[(m.ref.kind, m.ref.namespace or default_namespace)].append(m)
        self._activation: tuple[int, Any] | None = None
        self._pods: dict[int, tuple[dict[str, Any], str] | None] = {}
        self._labels: dict[int, dict[str, str]] = {}
        self._containers: tuple[
            Manifest | None, dict[tuple[str, ...], list[tuple[str, int, dict[str, Any]]] | None]
        ] = (None, {})
        self._ports: dict[int, tuple[frozenset[int], frozenset[str]]] = {}
        self._workloads: dict[str, list[Manifest]] | None = None
        self._by_label: dict[tuple[str, str, str], list[Manifest]] | None = None
        self._by_label_key: dict[tuple[str, str], list[Manifest]] | None = None
        self._names: dict[tuple[str, str], dict[str, list[Manifest]]] = {}
        self._last_names: dict[tuple[str, str], dict[str, Manifest]] = {}
        self._reverse: dict[tuple[str, str, SelectorFn], _ReverseIndex] = {}
        self._memo: dict[Any, Any] = {}

    # -- per-object facts -------------------------------------------------------------------

    def pod(self, m: Manifest) -> tuple[dict[str, Any], str] | None:
        """The object's PodSpec and its path (memoized: many rules ask)."""
        key = id(m)
        if key not in self._pods:
            self._pods[key] = workload.pod_spec(m.obj)
        return self._pods[key]

    def containers(
        self, m: Manifest, fields: tuple[str, ...]
    ) -> list[tuple[str, int, dict[str, Any]]] | None:
        """(field, index, container) of each container in `fields` of the object's PodSpec, None
        when it has none (memoized for one object at a time, as the engine asks: every container
        rule does, and a review-long memo would hold a list per object)."""
        if self._containers[0] is not m:
            self._containers = (m, {})
        memo = self._containers[1]
        if fields not in memo:
            pod = self.pod(m)
            memo[fields] = None if pod is None else list(workload.iter_containers(pod[0], fields))
        return memo[fields]

    def labels(self, m: Manifest) -> dict[str, str]:
        """The labels the object's pods carry (memoized)."""
        key = id(m)
        found = self._labels.get(key)
        if found is None:
            found = self._labels[key] = workload.pod_labels(m.obj)
        return found

    def container_ports(self, m: Manifest) -> tuple[frozenset[int], frozenset[str]]:
        """The containerPort numbers and port names its (regular) containers declare (memoized)."""
        key = id(m)
        found = self._ports.get(key)
        if found is None:
            numbers: set[int] = set()
            names: set[str] = set()
            pod = self.pod(m)
            for _, _, c in workload.iter_containers(pod[0] if pod else {}, ("containers",)):
                for p in c.get("ports") or []:
                    if not isinstance(p, dict):
                        continue
                    if isinstance(p.get("containerPort"), int):
                        numbers.add(p["containerPort"])
                    if isinstance(p.get("name"), str):
                        names.add(p["name"])
            found = self._ports[key] = (frozenset(numbers), frozenset(names))
        return found

    def cel_activation(self, m: Manifest) -> Any:
        """The object converted to CEL values, shared by every CEL rule (one object at a time)."""
        if self._activation is None or self._activation[0] != id(m):
            from kai.policy import cel

            self._activation = (id(m), cel.activation(m.obj))
        return self._activation[1]

    def namespace(self, m: Manifest) -> str:
        return m.ref.namespace or self.default_namespace

    def position(self, m: Manifest) -> int:
        """The object's place in review order (for results in a stable order)."""
        return self._pos.get(id(m), len(self.manifests))

    def memo(self, key: Any, build: Callable[[], Any]) -> Any:
        """A check's own derived value, built once per review (key it by check and namespace)."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    # -- by kind, namespace and name --------------------------------------------------------

    def of_kind(self, *kinds: str, namespace: str | None = None) -> list[Manifest]:
        """Objects of these kinds (in this namespace), kind by kind, each in review order."""
        out: list[Manifest] = []
        for k in kinds:
            out += (
                self._by_kind.get(k, ())
                if namespace is None
                else self._by_kind_ns.get((k, namespace), ())
            )
        return out

    def _name_index(self, kind: str, namespace: str) -> dict[str, list[Manifest]]:
        key = (kind, namespace)
        index = self._names.get(key)
        if index is None:
            index = self._names[key] = defaultdict(list)
            for m in self._by_kind_ns.get(key, ()):
                index[m.ref.name].append(m)
        return index

    def named(self, kind: str, namespace: str, name: Any) -> list[Manifest]:
        """Every object of `kind` in `namespace` named `name`, in review order (a name that is not
        a string names nothing)."""
        if not isinstance(name, str):
            return []
        return self._name_index(kind, namespace).get(name, [])

    def get(self, kind: str, namespace: str, name: Any) -> Manifest | None:
        """The first object of `kind` in `namespace` named `name`, or None."""
        found = self.named(kind, namespace, name)
        return found[0] if found else None

    def by_name(self, kind: str, namespace: str) -> Mapping[str, Manifest]:
        """Objects of `kind` in `namespace` by name; of two with one name, the later one."""
        key = (kind, namespace)
        found = self._last_names.get(key)
        if found is None:
            found = self._last_names[key] = {
                name: items[-1] for name, items in self._name_index(kind, namespace).items()
            }
        return found

    # -- forward selection: a selector, and the workloads whose pods it selects --------------

    def workloads(self, namespace: str) -> list[Manifest]:
        """Objects that carry a pod template (built-in workloads and custom resources alike)."""
        if self._workloads is None:
            self._workloads = defaultdict(list)
            for m in self.manifests:
                if self.pod(m):
                    self._workloads[self.namespace(m)].append(m)
        return self._workloads.get(namespace, [])

    def _label_index(
        self,
    ) -> tuple[dict[tuple[str, str, str], list[Manifest]], dict[tuple[str, str], list[Manifest]]]:
        if self._by_label is None or self._by_label_key is None:
            by_label: dict[tuple[str, str, str], list[Manifest]] = defaultdict(list)
            by_key: dict[tuple[str, str], list[Manifest]] = defaultdict(list)
            for m in self.manifests:
                if self.pod(m):
                    ns = self.namespace(m)
                    for k, v in self.labels(m).items():
                        by_label[(ns, k, v)].append(m)
                        by_key[(ns, k)].append(m)
            self._by_label, self._by_label_key = by_label, by_key
        return self._by_label, self._by_label_key

    def _plain_candidates(
        self, namespace: str, selector: Mapping[Any, Any]
    ) -> tuple[list[tuple[str, str]], Sequence[Manifest]]:
        by_label, _ = self._label_index()
        pairs = [(str(k), str(v)) for k, v in selector.items()]
        candidates = min((by_label.get((namespace, *p), []) for p in pairs), key=len)
        return pairs, candidates

    def _plain_match(self, w: Manifest, pairs: list[tuple[str, str]]) -> bool:
        self.evaluations += 1
        labels = self.labels(w)
        return all(labels.get(k) == v for k, v in pairs)

    def selected_by(self, namespace: str, selector: Mapping[Any, Any]) -> list[Manifest]:
        """Workloads in `namespace` whose pod labels include every pair of a plain map selector
        (a Service's or ReplicationController's), in review order; `{}` selects none."""
        if not selector:
            return []
        pairs, candidates = self._plain_candidates(namespace, selector)
        return [w for w in candidates if self._plain_match(w, pairs)]

    def selects_any(self, namespace: str, selector: Mapping[Any, Any]) -> bool:
        """Whether `selected_by(namespace, selector)` is non-empty (stops at the first match)."""
        if not selector:
            return False
        pairs, candidates = self._plain_candidates(namespace, selector)
        return any(self._plain_match(w, pairs) for w in candidates)

    def _selector_candidates(
        self, namespace: str, selector: Any, kinds: list[str] | None
    ) -> Sequence[Manifest]:
        if not isinstance(selector, dict):
            return []
        match_labels = selector.get("matchLabels", {})
        if not isinstance(match_labels, dict) or not isinstance(
            selector.get("matchExpressions", []), list
        ):
            return []
        by_label, by_key = self._label_index()
        if match_labels:
            return min(
                (by_label.get((namespace, str(k), str(v)), []) for k, v in match_labels.items()),
                key=len,
            )
        narrowing = _narrowing(selector)
        if narrowing is not None and narrowing[1]:
            key, values = narrowing
            lists = [by_label.get((namespace, key, v), []) for v in values]
            if len(lists) == 1:
                return lists[0]
            return sorted({id(w): w for items in lists for w in items}.values(), key=self.position)
        if narrowing is not None:
            return by_key.get((namespace, narrowing[0]), [])
        # Empty or purely negative: it may select anything, even the no labels of an object of
        # one of `kinds` that has no pod template.
        return (
            self.workloads(namespace)
            if kinds is None
            else self.of_kind(*kinds, namespace=namespace)
        )

    def _matches(self, selector: Any, labels: dict[str, str]) -> bool:
        self.evaluations += 1
        return label_selector_matches(selector, labels)

    def matching(
        self, namespace: str, selector: Any, kinds: Iterable[str] | None = None
    ) -> list[Manifest]:
        """Objects in `namespace` whose pod labels a metav1.LabelSelector selects: workloads (objects
        with a pod template) in review order, or, given `kinds`, objects of those kinds (one without
        a pod template has no labels) ordered as `of_kind(*kinds, namespace=namespace)` lists them.
        `{}` selects every one; None or a malformed selector none."""
        wanted = list(kinds) if kinds is not None else None
        found = [
            w
            for w in self._selector_candidates(namespace, selector, wanted)
            if (wanted is None or w.ref.kind in wanted) and self._matches(selector, self.labels(w))
        ]
        if wanted is None:
            return found  # candidates are in review order already
        rank = {k: i for i, k in reversed(list(enumerate(wanted)))}
        found.sort(key=lambda w: (rank[w.ref.kind], self.position(w)))
        return found

    def any_matching(
        self, namespace: str, selector: Any, kinds: Iterable[str] | None = None
    ) -> bool:
        """Whether `matching(namespace, selector, kinds)` is non-empty (stops at the first)."""
        wanted = list(kinds) if kinds is not None else None
        return any(
            (wanted is None or w.ref.kind in wanted) and self._matches(selector, self.labels(w))
            for w in self._selector_candidates(namespace, selector, wanted)
        )

    # -- reverse selection: pod labels, and the objects whose selectors select them ----------

    def _reverse_index(self, kind: str, namespace: str, selector: SelectorFn) -> _ReverseIndex:
        key = (kind, namespace, selector)
        index = self._reverse.get(key)
        if index is None:
            index = self._reverse[key] = _ReverseIndex()
            for m in self._by_kind_ns.get((kind, namespace), ()):
                index.add(self.position(m), selector(m), m)
        return index

    def selecting(
        self,
        kind: str,
        namespace: str,
        labels: dict[str, str],
        selector: SelectorFn = spec_selector,
    ) -> list[Manifest]:
        """Objects of `kind` in `namespace` whose label selector (read by `selector`: spec.selector
        unless told) selects `labels`, in review order. Pass the same `selector` function each
        time: the index is built once per (kind, namespace, function)."""
        index = self._reverse_index(kind, namespace, selector)
        return [m for _, sel, m in index.candidates(labels) if self._matches(sel, labels)]

    def any_selecting(
        self,
        kind: str,
        namespace: str,
        labels: dict[str, str],
        selector: SelectorFn = spec_selector,
    ) -> bool:
        """Whether `selecting(...)` is non-empty (stops at the first)."""
        index = self._reverse_index(kind, namespace, selector)
        return any(self._matches(sel, labels) for _, sel, _ in index.candidates(labels))


CheckFn = Callable[[Manifest, Context], Iterable[Hit]]

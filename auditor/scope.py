"""Which objects a run looks at: the kinds and namespaces in scope."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from auditor.kinds import parse_kind
from auditor.model import Resource, ResourceRef


@dataclass(frozen=True, slots=True)
class KindSelector:
    group: str | None  # None matches any group
    kind: str

    @classmethod
    def parse(cls, text: str) -> KindSelector:
        group, kind = parse_kind(text)
        return cls(group=group, kind=kind)

    def matches(self, group: str, kind: str) -> bool:
        return kind == self.kind and (self.group is None or self.group == group)

    def __str__(self) -> str:
        return self.kind if self.group is None else f"{self.group or 'core'}/{self.kind}"


@dataclass(frozen=True, slots=True)
class Scope:
    """Kinds and namespaces in scope. `namespaces=None` means every namespace.

    By default a run's scope is what Git declares: its kinds, and its namespaces.
    """

    kinds: tuple[KindSelector, ...]
    namespaces: tuple[str, ...] | None = None
    exclude_namespaces: tuple[str, ...] = ()
    # (group, kind, version) Git declares: live objects are read at that version when the
    # cluster serves it, so an `autoscaling/v1` HPA is not compared with its v2 form.
    versions: tuple[tuple[str, str, str], ...] = ()

    def version_for(self, group: str, kind: str) -> str | None:
        return next((v for g, k, v in self.versions if (g, k) == (group, kind)), None)

    def includes_namespace(self, namespace: str) -> bool:
        if any(fnmatch.fnmatchcase(namespace, p) for p in self.exclude_namespaces):
            return False
        if self.namespaces is None:
            return True
        return any(fnmatch.fnmatchcase(namespace, p) for p in self.namespaces)

    def includes(self, ref: ResourceRef) -> bool:
        if not any(sel.matches(ref.group, ref.kind) for sel in self.kinds):
            return False
        if ref.group == "" and ref.kind == "Namespace":
            # a Namespace belongs to the namespace it names: kube-system's is not in a scope of
            # ("ml",), or every run would report it unmanaged
            return self.includes_namespace(ref.name)
        if not ref.namespace:  # other cluster-scoped objects are in scope by kind alone
            return True
        return self.includes_namespace(ref.namespace)

    @classmethod
    def from_desired(
        cls,
        desired: Iterable[Resource],
        *,
        kinds: Iterable[str] | None = None,
        namespaces: Iterable[str] | None = None,
        exclude_namespaces: Iterable[str] = (),
    ) -> Scope:
        """The explicit kinds/namespaces where given, else those that Git declares."""
        resources = list(desired)
        if kinds is not None:
            selectors = tuple(KindSelector.parse(k) for k in kinds)
        else:
            seen = sorted({(r.ref.group, r.ref.kind) for r in resources})
            selectors = tuple(KindSelector(group=g, kind=k) for g, k in seen)
        if namespaces is not None:
            ns: tuple[str, ...] | None = tuple(namespaces)
        else:
            ns = tuple(sorted({r.ref.namespace for r in resources if r.ref.namespace}))
            # Git declaring a Namespace object puts its contents in scope too
            ns = tuple(
                sorted(
                    set(ns)
                    | {
                        r.ref.name
                        for r in resources
                        if r.ref.group == "" and r.ref.kind == "Namespace"
                    }
                )
            )
        versions: dict[tuple[str, str], str] = {}
        for r in resources:
            versions.setdefault((r.ref.group, r.ref.kind), r.ref.api_version.rpartition("/")[2])
        return cls(
            kinds=selectors,
            namespaces=ns,
            exclude_namespaces=tuple(exclude_namespaces),
            versions=tuple((g, k, v) for (g, k), v in sorted(versions.items())),
        )

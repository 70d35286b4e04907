"""Which objects a run looks at: the kinds and namespaces in scope."""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from auditor.errors import ConfigError
from auditor.kinds import parse_kind
from auditor.model import Resource, ResourceRef

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class KindSelector:
    """A kind in scope, in one group or any."""

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
        if _matches_any(namespace, self.exclude_namespaces):
            return False
        if self.namespaces is None:
            return True
        return _matches_any(namespace, self.namespaces)

    def namespaces_to_list(self) -> tuple[str, ...] | None:
        """Literal namespaces to list one by one, or None to list all namespaces and filter.

        Per-namespace lists need only namespaced RBAC, which is what an auditor usually has.
        """
        if self.namespaces is None or any(_GLOB_CHARS & set(ns) for ns in self.namespaces):
            return None
        return tuple(ns for ns in dict.fromkeys(self.namespaces) if self.includes_namespace(ns))

    def includes(self, ref: ResourceRef) -> bool:
        if not any(sel.matches(ref.group, ref.kind) for sel in self.kinds):
            return False
        # a Namespace belongs to the namespace it names: kube-system's is not in a scope of
        # ("ml",), or every run would report it unmanaged
        namespace = _namespace_of(ref)
        if not namespace:  # other cluster-scoped objects are in scope by kind alone
            return True
        return self.includes_namespace(namespace)

    @classmethod
    def from_desired(
        cls,
        desired: Iterable[Resource],
        *,
        kinds: Iterable[str] | None = None,
        namespaces: Iterable[str] | None = None,
        exclude_namespaces: Iterable[str] = (),
    ) -> Scope:
        """The explicit kinds/namespaces where given, else those that Git declares.

        Raises ConfigError when a given filter leaves none of Git's objects in scope (a
        kind or namespace list that matches nothing Git declares, an exclusion of all of
        it): the run would compare nothing, and that is never reported clean.
        """
        resources = list(desired)
        if kinds is not None:
            selectors = tuple(KindSelector.parse(k) for k in kinds)
        else:
            seen = sorted({(r.ref.group, r.ref.kind) for r in resources})
            selectors = tuple(KindSelector(group=g, kind=k) for g, k in seen)
        if namespaces is not None:
            ns: tuple[str, ...] | None = tuple(namespaces)
        else:
            # Git declaring a Namespace object puts its contents in scope too
            ns = tuple(sorted({n for r in resources if (n := _namespace_of(r.ref))}))
        versions: dict[tuple[str, str], str] = {}
        for r in resources:
            versions.setdefault((r.ref.group, r.ref.kind), r.ref.api_version.rpartition("/")[2])
        scope = cls(
            kinds=selectors,
            namespaces=ns,
            exclude_namespaces=tuple(exclude_namespaces),
            versions=tuple((g, k, v) for (g, k), v in sorted(versions.items())),
        )
        _require_git_in_scope(
            scope, resources, kinds_given=kinds is not None, namespaces_given=namespaces is not None
        )
        return scope


def _require_git_in_scope(
    scope: Scope, resources: Sequence[Resource], *, kinds_given: bool, namespaces_given: bool
) -> None:
    """Each given filter must keep some of what Git declares (an empty Git is the desired
    stage's error, not a filter's)."""
    if not resources:
        return
    by_kind = [r for r in resources if any(s.matches(r.ref.group, r.ref.kind) for s in scope.kinds)]
    if kinds_given and not by_kind:
        declared = sorted({str(KindSelector(r.ref.group, r.ref.kind)) for r in resources})
        raise ConfigError(
            f"{_listed(str(k) for k in scope.kinds)} matches nothing in Git: the objects Git "
            f"declares are of the kinds {_listed(declared)}, so nothing would be compared",
            key="scope.kinds",
        )
    if not namespaces_given and not scope.exclude_namespaces:
        return  # the namespaces are Git's own
    declared = sorted({ns for r in by_kind if (ns := _namespace_of(r.ref))})
    matched = declared
    if namespaces_given:
        patterns = scope.namespaces or ()
        matched = [ns for ns in declared if any(fnmatch.fnmatchcase(ns, p) for p in patterns)]
        if not matched:
            where = f"in the namespaces {_listed(declared)}" if declared else "in no namespace"
            raise ConfigError(
                f"{_listed(patterns)} matches nothing in Git: the objects Git declares "
                f"(of the kinds in scope) are {where}, so nothing would be compared",
                key="scope.namespaces (--namespace)",
            )
    if declared and not any(scope.includes_namespace(ns) for ns in matched):
        raise ConfigError(
            f"{_listed(scope.exclude_namespaces)} excludes every namespace of the objects Git "
            f"declares ({_listed(matched)}), so nothing would be compared",
            key="scope.exclude_namespaces",
        )


@functools.lru_cache(maxsize=4096)
def _matches_any(namespace: str, patterns: tuple[str, ...]) -> bool:
    """Whether a namespace matches one of the globs. Cached: a run asks it for every object
    (twice), over the few namespaces a cluster has, and the globs are the same all run."""
    return any(fnmatch.fnmatchcase(namespace, p) for p in patterns)


def _namespace_of(ref: ResourceRef) -> str:
    """The namespace an object belongs to for scoping: a Namespace object to its own."""
    if ref.group == "" and ref.kind == "Namespace":
        return ref.name
    return ref.namespace


def _listed(names: Iterable[str], limit: int = 10) -> str:
    items = list(names)
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")

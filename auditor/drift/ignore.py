"""Drift to leave alone: ignore rules from config, and an HPA's replicas.

Rules match objects by kind (`Kind`, `group/Kind`, globs), name and namespace globs;
their JSON pointers ignore a path and everything under it (`*` stands for one whole
token, e.g. `/spec/template/spec/containers/*/image`); a rule without pointers ignores
the whole object.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditor.config import IgnoreRule
from auditor.drift.pointer import parse_pointer
from auditor.kinds import parse_kind
from auditor.model import Resource, ResourceRef

REPLICAS: tuple[str, ...] = ("spec", "replicas")
RULES: tuple[str, ...] = ("rules",)
WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    """An IgnoreRule ready to match: group split from kind, pointers parsed."""

    group: str | None  # glob; None matches any group
    kind: str
    name: str
    namespace: str
    pointers: tuple[tuple[str, ...], ...]

    def matches(self, ref: ResourceRef) -> bool:
        return (
            fnmatch.fnmatchcase(ref.kind, self.kind)
            and (self.group is None or fnmatch.fnmatchcase(ref.group, self.group))
            and fnmatch.fnmatchcase(ref.name, self.name)
            and fnmatch.fnmatchcase(ref.namespace, self.namespace)
        )


def _compile(rule: IgnoreRule) -> _CompiledRule:
    group, kind = parse_kind(rule.kind)
    return _CompiledRule(
        group=group,
        kind=kind,
        name=rule.name,
        namespace=rule.namespace,
        pointers=tuple(parse_pointer(p) for p in rule.pointers),
    )


@dataclass(frozen=True, slots=True)
class ObjectIgnores:
    """What is ignored of one object."""

    whole: bool = False
    pointers: tuple[tuple[str, ...], ...] = ()

    def ignores(self, tokens: Sequence[str]) -> bool:
        """Whether a path is at or under an ignored pointer."""
        if self.whole:
            return True
        return any(_covers(p, tokens) for p in self.pointers)


NOTHING = ObjectIgnores()


def _covers(pointer: tuple[str, ...], tokens: Sequence[str]) -> bool:
    if len(pointer) > len(tokens):
        return False
    return all(p in (WILDCARD, t) for p, t in zip(pointer, tokens, strict=False))


def hpa_targets(resources: Iterable[Resource]) -> frozenset[tuple[str, str, str]]:
    """(namespace, kind, name) of every object an HPA scales."""
    out = set()
    for resource in resources:
        ref = resource.ref
        if ref.kind != "HorizontalPodAutoscaler" or ref.group != "autoscaling":
            continue
        spec = resource.body.get("spec")
        target = spec.get("scaleTargetRef") if isinstance(spec, dict) else None
        if isinstance(target, dict) and target.get("kind") and target.get("name"):
            out.add((ref.namespace, str(target["kind"]), str(target["name"])))
    return frozenset(out)


class IgnoreMatcher:
    """Answers, per object, what drift to leave alone."""

    def __init__(
        self,
        rules: Iterable[IgnoreRule],
        *,
        hpa_targets: frozenset[tuple[str, str, str]] = frozenset(),
        ignore_aggregated_roles: bool = True,
    ) -> None:
        self.rules = tuple(_compile(r) for r in rules)
        self.hpa_targets = hpa_targets
        self.ignore_aggregated_roles = ignore_aggregated_roles

    def for_ref(self, ref: ResourceRef) -> ObjectIgnores:
        pointers: list[tuple[str, ...]] = []
        for rule in self.rules:
            if rule.matches(ref):
                if not rule.pointers or () in rule.pointers:
                    return ObjectIgnores(whole=True)
                pointers.extend(rule.pointers)
        if (ref.namespace, ref.kind, ref.name) in self.hpa_targets:
            pointers.append(REPLICAS)
        return ObjectIgnores(pointers=tuple(pointers)) if pointers else NOTHING

    def for_object(self, ref: ResourceRef, desired_body: Mapping[str, Any]) -> ObjectIgnores:
        """`for_ref`, plus what the desired body itself hands to a controller.

        An aggregated ClusterRole (Git declares `aggregationRule`) has its `rules` written by
        the clusterrole-aggregation-controller; Git usually says `rules: []`. Argo CD's
        default install ignores them too (`resource.compareoptions: ignoreAggregatedRoles`).
        """
        ignored = self.for_ref(ref)
        if (
            ignored.whole
            or not self.ignore_aggregated_roles
            or not _is_aggregated_role(ref, desired_body)
        ):
            return ignored
        return ObjectIgnores(pointers=(*ignored.pointers, RULES))


def _is_aggregated_role(ref: ResourceRef, body: Mapping[str, Any]) -> bool:
    return (
        ref.group == "rbac.authorization.k8s.io"
        and ref.kind == "ClusterRole"
        and isinstance(body.get("aggregationRule"), Mapping)
    )

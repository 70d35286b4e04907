"""Which kinds of object a policy can judge, so a run evaluates it on those kinds only.

Most policies apply to a few kinds (pod security to workloads, canary bounds to
InferenceServices), and evaluating every policy on every object (ConfigMaps, Services) is most
of a large audit's policy stage. A policy's kinds come from what its author declares, in the
same form Gatekeeper and Konstraint use, `{apiGroups, kinds}` entries:

- a Rego package: METADATA `custom.matchers.kinds` on the package (Konstraint's convention);
- a Gatekeeper Constraint: its `spec.match.kinds`.

The rule that keeps this safe: when the kinds cannot be determined (nothing declared, a `*`,
a malformed entry) the policy applies to every kind. A declaration can only narrow a policy
its author narrowed; a policy that is not evaluated on an object records no evaluation there,
as Gatekeeper's `match` does (the object is outside its scope, not a pass).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# (group, kind); "*" as the group matches every group. None (not a tuple): every kind.
KindKey = tuple[str, str]
Kinds = frozenset[KindKey] | None

ANY_GROUP = "*"


def kinds_from_entries(entries: Any) -> Kinds:
    """The kinds `[{apiGroups: [...], kinds: [...]}]` names, or None (every kind) when they
    name every kind or are not that shape (a malformed entry never narrows a policy: the
    engine that evaluates it reports it instead)."""
    if not isinstance(entries, list) or not entries:
        return None
    out: set[KindKey] = set()
    for entry in entries:
        if not isinstance(entry, Mapping):
            return None
        names = _strings(entry.get("kinds"))
        groups = _strings(entry.get("apiGroups"))
        if names is None or groups is None or not names or "*" in names:
            return None
        for group in [ANY_GROUP] if not groups or "*" in groups else groups:
            out.update((group, name) for name in names)
    return frozenset(out)


def _strings(value: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def metadata_kinds(custom: Mapping[str, Any]) -> Kinds:
    """The kinds of a METADATA `custom` mapping: `matchers.kinds`, else None."""
    matchers = custom.get("matchers")
    if not isinstance(matchers, Mapping) or "kinds" not in matchers:
        return None
    return kinds_from_entries(matchers["kinds"])


def union(kinds: Iterable[Kinds]) -> Kinds:
    """Kinds of several declarations together; None (every kind) wins."""
    out: set[KindKey] = set()
    for item in kinds:
        if item is None:
            return None
        out.update(item)
    return frozenset(out)


def applies(kinds: Kinds, group: str, kind: str) -> bool:
    """Whether a policy with `kinds` judges an object of this group and kind."""
    return kinds is None or (group, kind) in kinds or (ANY_GROUP, kind) in kinds


__all__ = [
    "ANY_GROUP",
    "KindKey",
    "Kinds",
    "applies",
    "kinds_from_entries",
    "metadata_kinds",
    "union",
]

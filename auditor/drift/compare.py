"""Desired vs live: every field Git sets, compared with the live value (drift.changed).

Fields Git does not set are not looked at: live objects carry server and webhook
defaults, and those are not drift. The walk reports the deepest field that differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from auditor.drift.merge_keys import ListKey, index_by_key, list_key
from auditor.drift.normalize import is_unset, scalars_equal, zero_is_unset
from auditor.drift.pointer import ElementStep, Step
from auditor.redact import LAST_APPLIED

# Top-level fields that are never Git's to set, or are identity (matched already).
SKIPPED_TOP: frozenset[str] = frozenset({"apiVersion", "kind", "status"})
# metadata fields the API server owns; name and namespace are identity (namespace after
# defaulting), so comparing them again would only repeat the match.
SKIPPED_METADATA: frozenset[str] = frozenset(
    {
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
        "selfLink",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
        "name",
    }
)


class Change(NamedTuple):
    """A field Git sets whose live value differs (actual None: live lacks it)."""

    steps: tuple[Step, ...]
    expected: Any
    actual: Any


class _Walk:
    """One object's comparison; `stack` is the path to the map being walked."""

    __slots__ = ("changes", "quantity_parents", "stack", "typed")

    def __init__(self, quantity_parents: frozenset[str], typed: bool) -> None:
        self.quantity_parents = quantity_parents
        self.typed = typed  # the stored object went through Go structs (see is_typed)
        self.stack: list[Step] = []
        self.changes: list[Change] = []

    def record(self, last: Step, expected: Any, actual: Any) -> None:
        self.changes.append(Change((*self.stack, last), expected, actual))

    def mapping(
        self, desired: Mapping[str, Any], live: Mapping[str, Any], parent: str | None
    ) -> None:
        for key, dv in desired.items():
            lv = live.get(key)
            # the common case, done by C code for whole subtrees at once
            if dv == lv or dv is None:
                continue
            if lv is None:
                if not is_unset(dv) and not (self.typed and zero_is_unset(key, dv, None)):
                    self.record(key, dv, None)
            elif isinstance(dv, dict):
                if isinstance(lv, dict):
                    self.stack.append(key)
                    self.mapping(dv, lv, key)
                    self.stack.pop()
                else:
                    self.record(key, dv, lv)
            elif isinstance(dv, list):
                if isinstance(lv, list):
                    self.stack.append(key)
                    self.sequence(dv, lv, key, parent)
                    self.stack.pop()
                else:
                    self.record(key, dv, lv)
            elif not scalars_equal(dv, lv, key, parent, self.quantity_parents) and not (
                self.typed and zero_is_unset(key, dv, lv)
            ):
                self.record(key, dv, lv)

    def sequence(self, desired: list[Any], live: list[Any], field: str, parent: str | None) -> None:
        key = list_key(field, desired, parent)
        if key is not None:
            self.keyed(desired, live, key)
        elif any(isinstance(e, (dict, list)) for e in desired):
            self.positional(desired, live)
        else:
            # a list of scalars (args, command, finalizers) is one value
            if len(desired) != len(live) or not all(
                scalars_equal(d, v, None, field, self.quantity_parents)
                for d, v in zip(desired, live, strict=True)
            ):
                self.changes.append(Change(tuple(self.stack), desired, live))

    def keyed(self, desired: list[Any], live: list[Any], key: ListKey) -> None:
        live_index = index_by_key(live, key)
        if key.closed and live_index.keys() - index_by_key(desired, key).keys():
            # an element added live to a list nothing injects into: the list changed
            self.changes.append(Change(tuple(self.stack), desired, live))
            return
        for i, de in enumerate(desired):
            k = key.of(de)  # never None: list_key keys a list only when every element has one
            j = live_index.get(k) if k is not None else None
            if j is None:
                self.record(ElementStep(str(i), None, de, key.fields), de, None)
                continue
            le = live[j]
            if de == le:
                continue
            self.stack.append(ElementStep(str(i), le, de, key.fields))
            self.mapping(de, le, None)
            self.stack.pop()
        # live elements Git does not list are injected (sidecars), Git's former ones
        # (removed.py) or added by hand (added.py)

    def positional(self, desired: list[Any], live: list[Any]) -> None:
        if len(desired) != len(live):
            self.changes.append(Change(tuple(self.stack), desired, live))
            return
        for i, (de, le) in enumerate(zip(desired, live, strict=True)):
            if de == le or de is None:
                continue
            step = ElementStep(str(i), le, de, ())
            if isinstance(de, dict) and isinstance(le, dict):
                self.stack.append(step)
                self.mapping(de, le, None)
                self.stack.pop()
            elif isinstance(de, list) and isinstance(le, list):
                self.stack.append(step)
                self.positional(de, le)
                self.stack.pop()
            elif isinstance(de, (dict, list)) or not scalars_equal(
                de, le, None, None, self.quantity_parents
            ):
                self.record(step, de, le)


def compare_bodies(
    desired: Mapping[str, Any],
    live: Mapping[str, Any],
    quantity_parents: frozenset[str],
    *,
    typed: bool = False,
) -> list[Change]:
    """Every field Git sets that live lacks or holds differently, at the deepest such path.

    `typed`: the object is stored through Go structs, so Git's zero values of omitempty
    fields (`minReadySeconds: 0`, `hostNetwork: false`) are stored as no field at all.
    """
    walk = _Walk(quantity_parents, typed)
    for key, dv in desired.items():
        if key in SKIPPED_TOP or dv is None:
            continue
        if key == "metadata" and isinstance(dv, dict):
            lm = live.get("metadata")
            _metadata(walk, dv, lm if isinstance(lm, dict) else {})
        else:
            walk.mapping({key: dv}, live, None)
    return walk.changes


def _metadata(walk: _Walk, desired: Mapping[str, Any], live: Mapping[str, Any]) -> None:
    walk.stack.append("metadata")
    for key, dv in desired.items():
        if key in SKIPPED_METADATA or dv is None:
            continue
        if key == "annotations" and isinstance(dv, dict) and LAST_APPLIED in dv:
            dv = {k: v for k, v in dv.items() if k != LAST_APPLIED}
        walk.mapping({key: dv}, live, "metadata")
    walk.stack.pop()

"""drift.added: a field Git does not set that someone added by hand.

Fields Git does not set are not compared (they are server defaults, webhook and controller
writes), so an env var `MODEL_OVERRIDE` added with `kubectl edit` would go unseen, as it
does in Argo CD and Flux. managedFields say who wrote each field: a field live has and Git
does not set is added by hand when a manager people drive (`kubectl edit`, `patch`, `set`,
`label`, `annotate`, `drift.human_managers`) owns it and nobody else does, neither the
GitOps tool nor a controller (a controller that writes the field makes it the
controller's, like the HPA's replicas; and an Update takes the fields it changes away from
other managers, so a controller that rewrote the field owns it now).

A manager in both lists is a GitOps applier here. `kubectl-client-side-apply` is what Argo
CD before 2.5 applied with, what its client-side to server-side apply migration still
uses, and what a CI job running `kubectl apply` records, as well as what a person running
`kubectl apply` records. An applier that created the object owns every server default in
its Update entry (imagePullPolicy, dnsPolicy, terminationMessagePath...), so counting it as
a person would report each default as added. What such a manager applied that Git does not
set is still reported: its last-applied annotation holds it, so it is `drift.removed`.
Teams whose GitOps tool never applies client-side take it out of `drift.gitops_managers`,
and then a hand-run `kubectl apply` is `drift.added` too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from auditor.drift.managed_fields import ManagedEntry, child
from auditor.drift.owned import Unset, highest_once, unset_fields
from auditor.drift.pointer import Step, tokens_of
from auditor.model import ChangedBy

Addition = Unset  # source: the manager (or managers, joined by +) that owns it


def find_added(
    desired: Mapping[str, Any],
    live: Mapping[str, Any],
    entries: Sequence[ManagedEntry],
    human_managers: Collection[str],
    gitops_managers: Collection[str],
) -> list[Addition]:
    """Fields live has, Git does not set, owned by people only; each once, highest path."""

    def by_hand(entry: ManagedEntry) -> bool:
        return entry.manager in human_managers and entry.manager not in gitops_managers

    people = [e for e in entries if by_hand(e)]
    if not people:
        return []  # the common case: nothing anyone did by hand
    others = [e for e in entries if not by_hand(e)]
    found = [
        unset
        for entry in people
        for unset in unset_fields(entry.fields, desired, live, entry.manager)
        if not _held_by_others(entry, unset.steps, others)
    ]
    return highest_once(found)


def added_by(entries: Sequence[ManagedEntry], addition: Addition) -> ChangedBy | None:
    """Who added it: of the managers that own it, the one that wrote last.

    Not the owner of the path itself (`attribute.changed_by`): someone who added a label
    to an object without labels owns the label, not the labels map.
    """
    names = set(addition.source.split("+"))
    writers = [e for e in entries if e.manager in names]
    if not writers:
        return None
    last = max(writers, key=lambda e: e.time or "")
    return ChangedBy(manager=last.manager, operation=last.operation, time=last.time)


def _node_at(fields: Mapping[str, Any], steps: Sequence[Step]) -> Mapping[str, Any] | None:
    node: Any = fields
    for step in steps:
        node = child(node, step)
        if not isinstance(node, Mapping):
            return None
    return node


def _shares(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two fieldsV1 nodes own a field in common (a leaf owns all below it)."""
    for token, sub in a.items():
        other = b.get(token)
        if other is None:
            continue
        if token == "." or not sub or not other or _shares(sub, other):
            return True
    return False


def _held_by_others(
    entry: ManagedEntry, steps: Sequence[Step], others: Sequence[ManagedEntry]
) -> bool:
    """Whether another manager owns some of what `entry` owns at `steps`.

    Only what both own counts: the applier that set `resources: {}` owns the empty map, not
    the limits someone added to it; Argo CD's tracking annotation is not the annotation
    someone added next to it. A field shared with a controller (server-side apply shares
    fields set to the same value) is the controller's. A controller that took over one value
    of what someone added owns that value, and the rest is still the person's.
    """
    mine = _node_at(entry.fields, steps)
    if mine is None:
        return False
    for other in others:
        theirs = _node_at(other.fields, steps)
        if theirs is not None and (not mine or not theirs or _shares(mine, theirs)):
            return True
    return False


def outside(found: Sequence[Addition], taken: Sequence[tuple[Step, ...]]) -> list[Addition]:
    """`found` without what another check already reports at, above or below its path."""
    paths = [tokens_of(steps) for steps in taken]
    out = []
    for addition in found:
        path = tokens_of(addition.steps)
        if not any(path[: len(p)] == p or p[: len(path)] == path for p in paths):
            out.append(addition)
    return out

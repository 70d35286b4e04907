"""Who changed a drifted field, and when: the managedFields entry that owns it."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from auditor.drift.managed_fields import ManagedEntry, owned_depth
from auditor.drift.pointer import Step
from auditor.model import ChangedBy


def changed_by(
    entries: Sequence[ManagedEntry], steps: Sequence[Step], gitops_managers: Collection[str]
) -> ChangedBy | None:
    """The owner of the field at `steps`, or of its nearest owned ancestor.

    The deepest owner wins; among owners at the same depth a manager other than the GitOps
    tool is preferred (it is the one that made live differ from Git), then the latest.
    """
    best: tuple[int, bool, str] | None = None
    chosen: ManagedEntry | None = None
    for entry in entries:
        depth = owned_depth(entry.fields, steps)
        if depth < 0:
            continue
        rank = (depth, entry.manager not in gitops_managers, entry.time or "")
        if best is None or rank > best:
            best, chosen = rank, entry
    if chosen is None:
        return None
    return ChangedBy(manager=chosen.manager, operation=chosen.operation, time=chosen.time)

"""What a comparison could not check: live objects that carry no managedFields.

kubectl hides `metadata.managedFields` since 1.21 unless asked (`--show-managed-fields`),
so a snapshot taken with plain `kubectl get -o yaml` has none. Every field Git sets is still
compared, but who changed a field (changed_by), what someone added by hand (drift.added)
and what Git stopped setting under server-side apply (drift.removed; the last-applied
annotation of client-side apply still witnesses) cannot be known. That is said in a note
naming the cluster and snapshot, never skipped in silence. It is not a finding (nothing
drifted, and `auditor drift`'s exit code must not change) nor a stage error (nothing Git
declares went uncompared).
"""

from __future__ import annotations

from collections.abc import Sequence

from auditor.drift.managed_fields import has_managed_entries
from auditor.model import Resource

SNAPSHOT_PREFIX = "snapshot:"
SHOWN = 3  # objects a note names before "..."
WHAT_IS_OFF = (
    "who changed a field (changed_by), fields added by hand (drift.added) and fields Git "
    "stopped setting under server-side apply (drift.removed) are not checked for them"
)


def blind_spots(compared: Sequence[Resource]) -> tuple[str, ...]:
    """One note per cluster source (snapshot files, or the API server) whose compared live
    objects lack managedFields; none when they all have them."""
    by_origin: dict[str, list[Resource]] = {}
    for resource in compared:
        by_origin.setdefault(resource.origin, []).append(resource)
    notes = []
    for origin, resources in by_origin.items():
        blind = [r for r in resources if not has_managed_entries(r.body)]
        if blind:
            notes.append(_note(origin, resources, blind))
    return tuple(notes)


def _note(origin: str, resources: Sequence[Resource], blind: Sequence[Resource]) -> str:
    cluster = resources[0].ref.cluster
    names = ", ".join(r.ref.display() for r in blind[:SHOWN])
    if len(blind) > SHOWN:
        names += ", ..."
    counted = (
        f"{len(blind)} of {len(resources)} compared live objects carry no metadata.managedFields"
    )
    if origin.startswith(SNAPSHOT_PREFIX):
        source = f"cluster {cluster}, snapshot {origin.removeprefix(SNAPSHOT_PREFIX)}"
        hint = "take snapshots with `kubectl get -o yaml --show-managed-fields`"
    else:
        source = f"cluster {cluster}"
        hint = "the API server returned none for them"
    return f"{source}: {counted} ({names}): {WHAT_IS_OFF}; {hint}"

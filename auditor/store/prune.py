"""`auditor prune --keep-days N`: forget runs older than N days, keep history true.

Runs started before the cutoff go with every row of theirs (findings, resources,
evaluations, attestations, errors). What history says about the findings that remain is
kept as it was: a finding open for a year still says so, with its first sighting and the
number of runs that saw it, though those runs are gone. A finding resolved before the cutoff
is forgotten with the runs. Contents, objects, policies and message lists no remaining row
names are removed last.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from auditor.store.schema import utc_timestamp, write_transaction

_GARBAGE = (
    (
        "finding_contents",
        "id NOT IN (SELECT content FROM run_findings)"
        " AND id NOT IN (SELECT last_content FROM finding_states)",
    ),
    (
        "evaluation_messages",
        "id NOT IN (SELECT messages FROM run_evaluations WHERE messages IS NOT NULL)",
    ),
    (
        "policies",
        "id NOT IN (SELECT policy FROM run_policies) AND id NOT IN (SELECT policy FROM run_evaluations)",
    ),
    (
        "objects",
        "id NOT IN (SELECT object FROM finding_contents)"
        " AND id NOT IN (SELECT object FROM run_resources)"
        " AND id NOT IN (SELECT object FROM run_evaluations WHERE object IS NOT NULL)",
    ),
)


@dataclass(frozen=True, slots=True)
class PruneResult:
    cutoff: datetime
    runs: int  # runs deleted, with all their rows
    forgotten: int  # findings resolved before the cutoff, whose history went with them
    removed: dict[str, int]  # unreferenced rows removed, per table

    def to_json(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "runs_deleted": self.runs,
            "findings_forgotten": self.forgotten,
            "rows_removed": dict(self.removed),
        }


def prune(db: Database, cutoff: datetime, *, vacuum: bool = False) -> PruneResult:
    """Deletes the runs started before `cutoff` in one transaction; optionally VACUUMs."""
    when = utc_timestamp(cutoff)
    with write_transaction(db):
        runs = db.execute("DELETE FROM runs WHERE started < ?", [when]).rowcount
        forgotten = db.execute(
            "DELETE FROM finding_states WHERE resolved_at IS NOT NULL AND resolved_at < ?", [when]
        ).rowcount
        removed = {
            table: db.execute(f"DELETE FROM {table} WHERE {where}").rowcount
            for table, where in _GARBAGE
        }
    if vacuum:
        db.execute("VACUUM")
    return PruneResult(cutoff, runs, forgotten, removed)

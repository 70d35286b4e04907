"""`auditor prune --keep-days N`: forget runs older than N days, keep history true.

Runs started before the cutoff go with every row of theirs (findings, resources,
evaluations, attestations, errors). What history says about the findings that remain is
kept as it was: a finding open for a year still says so, with its first sighting and the
number of runs that saw it, though those runs are gone. A finding resolved before the cutoff
is forgotten with the runs. Contents, fingerprints, objects, policies, message lists and
origin parts no remaining row names are removed last.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from auditor.store.schema import utc_timestamp, write_transaction

# In this order: a table's rows go once nothing left in the tables before it names them.
_GARBAGE = (
    (
        "evaluation_messages",
        "id NOT IN (SELECT messages FROM run_evaluations WHERE messages IS NOT NULL)",
    ),
    (
        "finding_contents",
        "id NOT IN (SELECT content FROM run_findings)"
        " AND id NOT IN (SELECT last_content FROM fingerprints WHERE last_content IS NOT NULL)"
        " AND id NOT IN (SELECT part.value FROM evaluation_messages m, json_each(m.contents) part"
        " WHERE m.contents IS NOT NULL)"
        " AND id NOT IN (SELECT -messages FROM run_evaluations WHERE messages < 0)",
    ),
    (
        "fingerprints",
        "id NOT IN (SELECT finding FROM finding_contents) AND last_run IS NULL",
    ),
    (
        "policies",
        "id NOT IN (SELECT policy FROM run_policies) AND id NOT IN (SELECT policy FROM run_evaluations)"
        " AND id NOT IN (SELECT policy FROM finding_contents WHERE policy IS NOT NULL)",
    ),
    (
        "objects",
        "id NOT IN (SELECT object FROM finding_contents)"
        " AND id NOT IN (SELECT object FROM run_resources)"
        " AND id NOT IN (SELECT object FROM run_evaluations WHERE object IS NOT NULL)",
    ),
    (
        "origin_parts",
        "id NOT IN (SELECT origin_path FROM run_resources WHERE origin_path IS NOT NULL)"
        " AND id NOT IN (SELECT origin_commit FROM run_resources WHERE origin_commit IS NOT NULL)",
    ),
)


# A finding resolved before the cutoff loses its history (its `fingerprints` row goes with its
# contents, below, once nothing names it).
_FORGET = """
UPDATE fingerprints SET cluster = NULL, first_seen = NULL, last_seen = NULL, runs_seen = NULL,
    open_since = NULL, resolved_at = NULL, last_run = NULL, last_content = NULL
WHERE resolved_at IS NOT NULL AND resolved_at < ?
"""


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
        forgotten = db.execute(_FORGET, [when]).rowcount
        removed = {
            table: db.execute(f"DELETE FROM {table} WHERE {where}").rowcount
            for table, where in _GARBAGE
        }
    if vacuum:
        db.execute("VACUUM")
    return PruneResult(cutoff, runs, forgotten, removed)

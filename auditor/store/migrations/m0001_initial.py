"""Schema version 1: runs, the resources and findings they saw, stage errors, history views.

JSON columns (runs.clusters, runs.counts, findings.expected/actual/details/controls) hold
plain JSON text, so `json_extract()` works on every row, null included.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.db import ForeignKey


def _run_fk(table: str) -> list[ForeignKey]:
    # Deleting a run (retention) takes its rows with it.
    return [ForeignKey(table, "run_id", "runs", "id", on_delete="CASCADE")]


# The latest run that got as far as recording its results: a killed run (finished NULL)
# saw nothing trustworthy. Incomplete runs count, they say what they could not see.
LATEST_RUN = """
SELECT * FROM runs
WHERE finished IS NOT NULL
ORDER BY started DESC, id DESC
LIMIT 1
"""

OPEN_FINDINGS = """
SELECT findings.* FROM findings
JOIN latest_run ON latest_run.id = findings.run_id
"""

# Per fingerprint, over finished runs ordered by start time:
# - first_seen / last_seen: start of the first / last run that contained it;
# - runs_seen: how many runs contained it;
# - open_since: start of the current unbroken streak of runs containing it, NULL once a
#   later complete run no longer has it. Only a *complete* run can break a streak: an
#   incomplete or failed run that lacks a finding did not look, it did not see it fixed.
# Window functions instead of correlated subqueries keep this one pass over findings:
# `complete_upto` counts complete runs up to and including each run, so two consecutive
# sightings belong to one streak exactly when no complete run started between them.
# Every window is partitioned by fingerprint (no GROUP BY at the top), so SQLite pushes a
# `WHERE fingerprint = ?` down to the findings index: one fingerprint costs milliseconds.
FINDING_HISTORY = """
WITH finished_runs AS (
    SELECT id, started, status = 'complete' AS is_complete,
        SUM(status = 'complete') OVER (ORDER BY started, id) AS complete_upto
    FROM runs
    WHERE finished IS NOT NULL
),
sightings AS (
    SELECT DISTINCT findings.fingerprint, finished_runs.id AS run_id, finished_runs.started,
        finished_runs.complete_upto,
        finished_runs.complete_upto - finished_runs.is_complete AS complete_before
    FROM findings JOIN finished_runs ON finished_runs.id = findings.run_id
),
streaks AS (
    SELECT sightings.*,
        LAG(complete_upto) OVER (PARTITION BY fingerprint ORDER BY started, run_id) AS previous_upto
    FROM sightings
),
histories AS (
    SELECT fingerprint, started, complete_upto,
        MIN(started) OVER whole AS first_seen,
        COUNT(*) OVER whole AS runs_seen,
        MAX(CASE WHEN previous_upto IS NULL OR complete_before > previous_upto THEN started END)
            OVER whole AS streak_start,
        ROW_NUMBER() OVER (PARTITION BY fingerprint ORDER BY started DESC, run_id DESC) AS newest_first
    FROM streaks
    WINDOW whole AS (PARTITION BY fingerprint)
)
SELECT fingerprint, first_seen, started AS last_seen, runs_seen,
    CASE
        WHEN complete_upto < (SELECT COALESCE(MAX(complete_upto), 0) FROM finished_runs) THEN NULL
        ELSE streak_start
    END AS open_since
FROM histories
WHERE newest_first = 1
"""


def migrate(db: Database) -> None:
    db.table("runs").create(
        {
            "id": str,
            "trigger": str,
            "started": str,
            "finished": str,
            "status": str,
            "git_repo": str,
            "git_revision": str,
            "git_commit": str,
            "clusters": str,
            "counts": str,
            "config_path": str,
            "exit_code": int,
            "auditor_version": str,
        },
        pk="id",
        not_null=["trigger", "started", "status", "clusters", "counts"],
    )
    db.table("resources").create(
        {
            "id": int,
            "run_id": str,
            "cluster": str,
            "api_version": str,
            "kind": str,
            "namespace": str,
            "name": str,
            "status": str,
            "origin": str,
            "body_digest": str,
        },
        pk="id",
        foreign_keys=_run_fk("resources"),
        not_null=["run_id", "kind", "name", "status"],
    )
    db.table("findings").create(
        {
            "id": int,
            "run_id": str,
            "fingerprint": str,
            "category": str,
            "check_id": str,
            "severity": str,
            "class": str,
            "cluster": str,
            "api_version": str,
            "kind": str,
            "namespace": str,
            "name": str,
            "path": str,
            "message": str,
            "expected": str,
            "actual": str,
            "changed_by_manager": str,
            "changed_by_operation": str,
            "changed_by_time": str,
            "details": str,
            "controls": str,
        },
        pk="id",
        foreign_keys=_run_fk("findings"),
        not_null=["run_id", "fingerprint", "category", "check_id", "severity"],
    )
    db.table("errors").create(
        {
            "id": int,
            "run_id": str,
            "stage": str,
            "cluster": str,
            "target": str,
            "message": str,
        },
        pk="id",
        foreign_keys=_run_fk("errors"),
        not_null=["run_id", "stage", "message"],
    )
    db.table("runs").create_index(["started"])
    db.table("findings").create_index(["fingerprint"])
    db.table("findings").create_index(["run_id"])
    db.table("resources").create_index(["run_id"])
    db.table("errors").create_index(["run_id"])
    db.create_view("latest_run", LATEST_RUN)
    db.create_view("open_findings", OPEN_FINDINGS)
    db.create_view("finding_history", FINDING_HISTORY)

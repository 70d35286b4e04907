"""Schema version 5: the admission webhook's decisions (DESIGN "Admission").

One row per AdmissionReview answered: when, which request (uid) on which object, by whom,
the result and whether it was allowed, the reasons and warnings (JSON lists), how long the
answer took, the Git commit of the attestations it used, and whether the verification came
from the cache. Objects themselves are not kept: a review may carry a Secret's data.
"""

from __future__ import annotations

from sqlite_utils import Database

# Denials per object, newest first: what `sqlite3 audit.db` users look at first.
DENIED = """
SELECT time, namespace, kind, name, operation, user, result, reasons, commit_sha
FROM admission_decisions
WHERE allowed = 0
ORDER BY time DESC
"""


def migrate(db: Database) -> None:
    db.table("admission_decisions").create(
        {
            "id": int,
            "time": str,  # ISO-8601 UTC, fixed width: text order is time order
            "uid": str,
            "cluster": str,
            "api_version": str,
            "kind": str,
            "namespace": str,
            "name": str,
            "operation": str,
            "user": str,
            "dry_run": int,
            "allowed": int,
            "result": str,  # allow | deny | skip | error | fail_open
            "reasons": str,  # JSON list of {check, message}
            "warnings": str,  # JSON list of strings
            "latency_ms": float,
            "commit_sha": str,
            "cache": str,  # hit | miss | "" (no verification needed)
        },
        pk="id",
        not_null=["time", "uid", "kind", "operation", "allowed", "result"],
    )
    db.table("admission_decisions").create_index(["time"])
    db.table("admission_decisions").create_index(["namespace", "name"])
    db.create_view("denied_admissions", DENIED)

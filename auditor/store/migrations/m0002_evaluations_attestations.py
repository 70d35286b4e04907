"""Schema version 2: every policy x resource result, and what provenance verified.

`evaluations` keeps passes too, so a report can say "42 of 45 passed"; `attestations`
records each verification: what, against which authority, the subject digest, the result.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.db import ForeignKey

# Per run and policy: how many resources it saw and how they came out.
POLICY_SUMMARY = """
SELECT run_id, policy,
    COUNT(*) AS evaluated,
    SUM(result = 'pass') AS passed,
    SUM(result = 'fail') AS failed,
    SUM(result = 'warn') AS warned,
    SUM(result = 'error') AS errored
FROM evaluations
GROUP BY run_id, policy
"""


def migrate(db: Database) -> None:
    fk = [ForeignKey("evaluations", "run_id", "runs", "id", on_delete="CASCADE")]
    db.table("evaluations").create(
        {
            "id": int,
            "run_id": str,
            "policy": str,
            "cluster": str,
            "api_version": str,
            "kind": str,
            "namespace": str,
            "name": str,
            "result": str,
            "messages": str,  # JSON list of {rule, msg, details}
            "duration_ms": float,
            "error": str,
        },
        pk="id",
        foreign_keys=fk,
        not_null=["run_id", "policy", "result"],
    )
    fk = [ForeignKey("attestations", "run_id", "runs", "id", on_delete="CASCADE")]
    db.table("attestations").create(
        {
            "id": int,
            "run_id": str,
            "cluster": str,
            "api_version": str,
            "kind": str,
            "namespace": str,
            "name": str,
            "attestation": str,  # model-signature | slsa-provenance | intoto-layout | commit
            "source": str,  # the bundle or envelope path@commit
            "bundle_digest": str,
            "subject_digest": str,
            "authority": str,
            "identity": str,
            "verified": int,
            "reason": str,
            "details": str,  # JSON
        },
        pk="id",
        foreign_keys=fk,
        not_null=["run_id", "attestation", "verified"],
    )
    db.table("evaluations").create_index(["run_id"])
    db.table("evaluations").create_index(["policy"])
    db.table("attestations").create_index(["run_id"])
    db.create_view("policy_summary", POLICY_SUMMARY)

"""The store: every run and finding in a queryable SQLite file.

    with Store.open("audit.db") as store:
        store.begin_run(run)
        ...  # the audit
        store.finish_run(run, resources=..., findings=..., errors=..., exit_code=0)
        store.findings(open_only=True)

The file is plain SQLite (WAL mode): `sqlite3 audit.db 'select * from open_findings'` works.
Tables, views and migrations are in `schema.py` and `migrations/`; writing in `writer.py`
(with the integer keys of `keys.py` and the history of `history.py`); reading in
`queries.py` and `runreport.py`; retention in `prune.py`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Unpack

from sqlite_utils import Database

from auditor.model import (
    RESOURCE_STATUSES,
    AdmissionDecision,
    Attestation,
    Evaluation,
    Finding,
    PolicyInfo,
    ReportFinding,
    ResourceRecord,
    Run,
    RunReport,
    StageError,
)
from auditor.shards import Shard
from auditor.store import decisions, queries, writer
from auditor.store.prune import PruneResult, prune
from auditor.store.queries import FindingLine, KnownFilters, RunSighting
from auditor.store.runreport import read_run_report
from auditor.store.schema import BUSY_TIMEOUT_SECONDS, connect
from auditor.store.shards import ShardRecord, record_shards

__all__ = [
    "RESOURCE_STATUSES",
    "FindingLine",
    "KnownFilters",
    "PruneResult",
    "ResourceRecord",
    "RunSighting",
    "Store",
    "new_run_id",
]


def new_run_id(now: datetime) -> str:
    """A run id that sorts by start time: `20261123T165600Z-1a2b3c4d`.

    The random suffix keeps two runs started in the same second (cron and a person at the
    CLI) apart. A naive `now` is taken as UTC.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


class Store:
    """One open store file. Not shared between threads; each process opens its own."""

    def __init__(self, db: Database, path: Path) -> None:
        self.db = db  # the sqlite-utils Database, for callers that need a query of their own
        self.path = path

    @classmethod
    def open(cls, path: str | Path, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> Store:
        """Open or create the store at `path` and bring its schema up to date.

        Creates missing parent folders; ConfigError naming the file when it is not an auditor
        store or was written by a newer auditor.
        """
        path = Path(path)
        return cls(connect(path, busy_timeout=busy_timeout), path)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # Writing

    def begin_run(self, run: Run, *, config_path: str = "") -> None:
        """Commit the run's row now, as `failed` with no finish time, so a killed run shows."""
        writer.begin_run(self.db, run, config_path=config_path)

    def finish_run(
        self,
        run: Run,
        *,
        resources: Sequence[ResourceRecord],
        findings: Sequence[Finding],
        errors: Sequence[StageError],
        exit_code: int,
        evaluations: Sequence[Evaluation] = (),
        attestations: Sequence[Attestation] = (),
        policies: Sequence[PolicyInfo] = (),
    ) -> None:
        """Record the outcome and every row of a begun run, all or nothing, and its findings
        in the history."""
        writer.finish_run(
            self.db,
            run,
            resources=resources,
            findings=findings,
            errors=errors,
            exit_code=exit_code,
            evaluations=evaluations,
            attestations=attestations,
            policies=policies,
        )

    def record_run(
        self,
        run: Run,
        *,
        resources: Sequence[ResourceRecord] = (),
        findings: Sequence[Finding] = (),
        errors: Sequence[StageError] = (),
        exit_code: int,
        config_path: str = "",
        evaluations: Sequence[Evaluation] = (),
        attestations: Sequence[Attestation] = (),
        policies: Sequence[PolicyInfo] = (),
    ) -> None:
        """begin_run then finish_run, for callers that have everything at once."""
        self.begin_run(run, config_path=config_path)
        self.finish_run(
            run,
            resources=resources,
            findings=findings,
            errors=errors,
            exit_code=exit_code,
            evaluations=evaluations,
            attestations=attestations,
            policies=policies,
        )

    def record_shard(self, run_id: str, shard: Shard, fleet: Sequence[str]) -> None:
        """Marks a begun run as shard `shard` of a fleet run over `fleet` (every configured
        cluster, in order), for `auditor store merge`."""
        record_shards(self.db, [ShardRecord(run_id, shard.index, shard.count, tuple(fleet))])

    def prune(
        self, keep_days: int, *, now: datetime | None = None, vacuum: bool = False
    ) -> PruneResult:
        """Deletes runs started more than `keep_days` days before `now`; history stays true."""
        if keep_days < 0:
            raise ValueError(f"keep_days must be 0 or more, not {keep_days}")
        return prune(self.db, (now or datetime.now(UTC)) - timedelta(days=keep_days), vacuum=vacuum)

    def record_decisions(self, batch: Sequence[AdmissionDecision]) -> None:
        """The admission webhook's decisions, one transaction per batch."""
        decisions.record_decisions(self.db, batch)

    # Reading

    def decisions(
        self,
        *,
        denied_only: bool = False,
        results: Sequence[str] = (),
        namespace: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """The admission webhook's decisions, newest first; `namespace` is a glob."""
        return decisions.decisions(
            self.db,
            denied_only=denied_only,
            results=results,
            namespace=namespace,
            since=since,
            limit=limit,
        )

    def runs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Every run, newest first, killed and running ones included (finished NULL)."""
        return queries.runs(self.db, limit)

    def run(self, run_id: str) -> dict[str, Any] | None:
        """One run by id, or "latest" for the latest finished run."""
        return queries.run(self.db, run_id)

    def findings(
        self,
        run_id: str | None = None,
        *,
        open_only: bool = False,
        severity: str | None = None,
        category: str | None = None,
    ) -> list[dict[str, Any]]:
        """Findings of one run (id or "latest") or of all runs; see `queries.findings`."""
        return queries.findings(
            self.db, run_id, open_only=open_only, severity=severity, category=category
        )

    def finding_history(self, fingerprint: str) -> dict[str, Any] | None:
        """first_seen, last_seen, runs_seen, open_since, resolved_at and status of one
        fingerprint; None when the store never saw it."""
        return queries.finding_history(self.db, fingerprint)

    def report(self, run_id: str = queries.LATEST) -> RunReport | None:
        """One run as every report renders it (id or "latest"); None when there is none."""
        return read_run_report(self.db, run_id)

    def known_findings(self, **filters: Unpack[KnownFilters]) -> list[ReportFinding]:
        """Every finding the store knows, once each as last seen, with its history."""
        return queries.known_findings(self.db, **filters)

    def known_finding_lines(self, **filters: Unpack[KnownFilters]) -> list[FindingLine]:
        """`known_findings` with only what a line of `auditor findings` shows."""
        return queries.known_finding_lines(self.db, **filters)

    def known_findings_json(self, **filters: Unpack[KnownFilters]) -> list[str]:
        """`known_findings`, each as the JSON text of its `to_json()`, made by SQLite."""
        return queries.known_findings_json(self.db, **filters)

    def sightings(self, fingerprint: str) -> tuple[ReportFinding, list[RunSighting]] | None:
        """A finding with its history and the runs over its cluster that had it or not."""
        return queries.finding_sightings(self.db, fingerprint)

    def errors(self, run_id: str) -> list[dict[str, Any]]:
        """The stage errors of one run (id or "latest")."""
        return queries.errors(self.db, run_id)

    def evaluations(self, run_id: str) -> list[dict[str, Any]]:
        """Every policy x resource result of a run ("latest" accepted), pass included."""
        return queries.evaluations(self.db, run_id)

    def attestations(self, run_id: str) -> list[dict[str, Any]]:
        """Every verification a run made ("latest" accepted)."""
        return queries.attestations(self.db, run_id)

    def resources(self, run_id: str) -> list[dict[str, Any]]:
        """The resources one run (id or "latest") looked at."""
        return queries.resources(self.db, run_id)

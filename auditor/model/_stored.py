"""A stored run read back: what `auditor report`, `findings` and `history` show.

Import them from `auditor.model`, which loads this module when one is first asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from auditor.model import RESOURCE_STATUSES, iso

if TYPE_CHECKING:
    from datetime import datetime

    from auditor.model import (
        AdmissionSummary,
        Attestation,
        Evaluation,
        Finding,
        FindingStatus,
        PolicyInfo,
        ResourceRef,
        Run,
        StageError,
    )


@dataclass(frozen=True, slots=True)
class ResourceRecord:
    """One resource a run looked at, and what the run concluded about it.

    `status` is a drift verdict (`in_sync`, `drifted`, `missing`, `unmanaged`) or, when no
    comparison was made, the side it was read from (`live`, `desired`). Bodies are never
    stored: `body_digest` is enough to tell whether an object changed between runs. `origin`
    and `line` say where Git declares it (`path@commit`, the document's first line).
    """

    ref: ResourceRef
    status: str
    origin: str
    body_digest: str | None = None
    line: int | None = None

    def __post_init__(self) -> None:
        if self.status not in RESOURCE_STATUSES:
            raise ValueError(
                f"{self.ref.display()}: resource status {self.status!r} is not one of"
                f" {', '.join(RESOURCE_STATUSES)}"
            )

    @property
    def git_path(self) -> str | None:
        """The repo-relative file that declares it, when Git does (`origin` is `path@commit`)."""
        path, at, commit = self.origin.rpartition("@")
        if not at or not path or not commit or self.origin.startswith("snapshot:"):
            return None
        return path


@dataclass(frozen=True, slots=True)
class FindingHistory:
    """A finding across runs (DESIGN "Reports and history"), by fingerprint.

    Times are the start times of the runs that saw it. It is `open` until a complete run of
    its scope (its cluster) no longer has it: an incomplete run did not look, so it never
    resolves anything; `open_since` is where the current unbroken streak of sightings began.
    """

    first_seen: datetime
    last_seen: datetime
    runs_seen: int
    open_since: datetime | None
    resolved_at: datetime | None

    @property
    def status(self) -> FindingStatus:
        return "resolved" if self.resolved_at is not None else "open"

    def to_json(self) -> dict[str, Any]:
        return {
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "runs_seen": self.runs_seen,
            "open_since": iso(self.open_since),
            "resolved_at": iso(self.resolved_at),
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where Git declares the resource a finding is about: a repo-relative file and line."""

    path: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class ReportFinding:
    """A stored finding with its history; `new` when the previous run did not have it."""

    finding: Finding
    history: FindingHistory
    new: bool = False
    location: SourceLocation | None = None

    def to_json(self) -> dict[str, Any]:
        """The finding of `-o json` plus its history (DESIGN `auditor findings -o json`)."""
        return {**self.finding.to_json(), **self.history.to_json()}


@dataclass(frozen=True, slots=True)
class RunReport:
    """One stored run as every report renders it: read back from the store, never re-audited.

    `previous` is the complete run before it over the same clusters (for "new since" and "resolved
    since"); `resolved` the findings of that run this one no longer has (when this run is
    incomplete they may just not have been looked at, and the reports say so); `trend` the
    finished runs over the same clusters up to this one, oldest first.
    """

    run: Run
    exit_code: int | None
    findings: tuple[ReportFinding, ...]
    evaluations: tuple[Evaluation, ...] = ()
    attestations: tuple[Attestation, ...] = ()
    errors: tuple[StageError, ...] = ()
    resources: tuple[ResourceRecord, ...] = ()
    policies: tuple[PolicyInfo, ...] = ()
    previous: Run | None = None
    resolved: tuple[ReportFinding, ...] = ()
    trend: tuple[Run, ...] = ()
    # the webhook's decisions since the previous run; None when the store holds none at all
    admission: AdmissionSummary | None = None

    @property
    def complete(self) -> bool:
        return self.run.status == "complete"

    @property
    def new(self) -> tuple[ReportFinding, ...]:
        return tuple(f for f in self.findings if f.new)

    @property
    def still_open(self) -> tuple[ReportFinding, ...]:
        return tuple(f for f in self.findings if not f.new)

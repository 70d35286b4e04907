"""What the drift stage returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from auditor.model import Finding, ResourceRef

Status = Literal["in_sync", "drifted", "missing", "unmanaged"]


@dataclass(frozen=True, slots=True)
class DriftSummary:
    resources: int  # desired objects + unmanaged live objects
    in_sync: int
    drifted: int
    missing: int
    unmanaged: int

    def to_json(self) -> dict[str, int]:
        return {
            "resources": self.resources,
            "in_sync": self.in_sync,
            "drifted": self.drifted,
            "missing": self.missing,
            "unmanaged": self.unmanaged,
        }


@dataclass(frozen=True, slots=True)
class ResourceStatus:
    ref: ResourceRef  # the live ref when the object is live, else the desired one
    status: Status
    desired_origin: str | None  # `path@commit`; None for unmanaged objects


@dataclass(frozen=True, slots=True)
class DriftResult:
    findings: tuple[Finding, ...]
    summary: DriftSummary
    statuses: tuple[ResourceStatus, ...]

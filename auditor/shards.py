"""Fleets split over several processes: which clusters a shard audits, and the one order a
run's rows take, so that shards merged back read exactly as one process over the fleet.

`auditor audit --shard I/N` audits the clusters whose stable hash falls in shard I (0-based,
as a Kubernetes Indexed Job numbers its pods); `auditor store merge` puts the shards of one
fleet run back together. Both rely on the order below: a run lists its rows by stage block
(drift, provenance, policy), then by the cluster's position in `clusters:`, then as the stage
produced them; rows about no cluster (the audited commit) come first in their block.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from auditor.errors import ConfigError
from auditor.model import Attestation, Evaluation, Finding, ResourceRecord, StageError

T = TypeVar("T")

# A run id names a run in the store, in report file names and in a Job's environment: keep
# it to characters that are safe in all three.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SHARD = re.compile(r"(\d+)/(\d+)")
MAX_SHARDS = 10_000


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` (0-based) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, cluster: str) -> bool:
        return shard_of(cluster, self.count) == self.index


def parse_shard(text: str) -> Shard:
    """`I/N` with 0 <= I < N; ConfigError naming `--shard` otherwise."""
    match = _SHARD.fullmatch(text.strip())
    if match is None:
        raise ConfigError(
            f"{text!r} is not a shard: write I/N, e.g. 0/3 for the first of three",
            key="--shard",
        )
    index, count = int(match.group(1)), int(match.group(2))
    if not 0 < count <= MAX_SHARDS or index >= count:
        raise ConfigError(
            f"shard {text}: the index must be 0 to N-1 and N between 1 and {MAX_SHARDS}",
            key="--shard",
            hint="a Kubernetes Indexed Job's JOB_COMPLETION_INDEX runs 0 to completions-1",
        )
    return Shard(index, count)


def check_run_id(run_id: str, *, key: str = "--run-id") -> str:
    if not RUN_ID.fullmatch(run_id):
        raise ConfigError(
            f"run id {run_id!r}: use 1 to 128 letters, digits, '.', '_' or '-', starting with "
            "a letter or digit",
            key=key,
        )
    return run_id


def shard_of(cluster: str, count: int) -> int:
    """The shard a cluster name falls in: the same on every machine and Python version
    (Python's own hash() is salted per process)."""
    digest = hashlib.sha256(cluster.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def positions(clusters: Iterable[str]) -> dict[str, int]:
    """Each cluster's position in the fleet's `clusters:` list."""
    return {name: n for n, name in enumerate(clusters)}


def _position(places: Mapping[str, int], cluster: str) -> int:
    if not cluster:
        return -1  # about no cluster (the audited commit): first
    return places.get(cluster, len(places))


# The stage blocks of a run's findings and errors, in the order the pipeline runs them.
_FINDING_BLOCKS = {"drift": 0, "provenance": 1, "policy": 2, "error": 2}
_ERROR_BLOCKS = {"provenance": 1, "policy": 2, "fleet": 3}  # fleet: a shard a merge lacked


def _sorted(items: Iterable[T], key: Callable[[T], tuple[int, int]]) -> list[T]:
    return sorted(items, key=key)  # stable: within a key, the stage's own order stays


def order_findings(findings: Iterable[Finding], places: Mapping[str, int]) -> list[Finding]:
    return _sorted(
        findings,
        lambda f: (_FINDING_BLOCKS.get(f.category, 3), _position(places, f.ref.cluster)),
    )


def order_errors(errors: Iterable[StageError], places: Mapping[str, int]) -> list[StageError]:
    return _sorted(errors, lambda e: (_ERROR_BLOCKS.get(e.stage, 0), _position(places, e.cluster)))


def order_evaluations(
    evaluations: Iterable[Evaluation], places: Mapping[str, int]
) -> list[Evaluation]:
    return _sorted(evaluations, lambda e: (0, _position(places, e.ref.cluster if e.ref else "")))


def order_attestations(
    attestations: Iterable[Attestation], places: Mapping[str, int]
) -> list[Attestation]:
    return _sorted(attestations, lambda a: (0, _position(places, a.ref.cluster if a.ref else "")))


def order_resources(
    records: Iterable[ResourceRecord], places: Mapping[str, int]
) -> list[ResourceRecord]:
    return _sorted(records, lambda r: (0, _position(places, r.ref.cluster)))


def select(clusters: Sequence[T], shard: Shard | None, name: Callable[[T], str]) -> list[T]:
    """The clusters a shard audits, in their configured order (all without a shard)."""
    if shard is None:
        return list(clusters)
    return [c for c in clusters if shard.holds(name(c))]


__all__ = [
    "Shard",
    "check_run_id",
    "order_attestations",
    "order_errors",
    "order_evaluations",
    "order_findings",
    "order_resources",
    "parse_shard",
    "positions",
    "select",
    "shard_of",
]

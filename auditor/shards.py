"""Fleets split over several processes: which clusters a shard audits, and the one order a
run's rows take, so that shards merged back read exactly as one process over the fleet.

`auditor audit --shard I/N` audits the clusters whose stable hash falls in shard I (0-based,
as a Kubernetes Indexed Job numbers its pods); `auditor store merge` puts the shards of one
fleet run back together. Both rely on the order below: a run lists its rows by stage block
(drift, provenance, policy), then by the cluster's position in `clusters:`, then as the stage
produced them; rows about no cluster (the audited commit) come first in their block.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from auditor.errors import ConfigError
from auditor.model import Finding, StageError

if TYPE_CHECKING:  # values of the audit's later stages, which `auditor drift` never loads
    from auditor.model import Attestation, Evaluation, ResourceRecord

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
FINDING_BLOCKS = 4  # 0 to 3: any other category last
POLICY_BLOCK = _FINDING_BLOCKS["policy"]
_ERROR_BLOCKS = {"provenance": 1, "policy": 2, "fleet": 3}  # fleet: a shard a merge lacked

Key = tuple[int, int]  # (stage block, the cluster's position)


def finding_key(finding: Finding, places: Mapping[str, int]) -> Key:
    """Where a finding goes in its run: by stage block, then by its cluster's position."""
    return (_FINDING_BLOCKS.get(finding.category, 3), _position(places, finding.ref.cluster))


def row_key(cluster: str, places: Mapping[str, int]) -> Key:
    """Where a resource, evaluation or attestation goes in its run: by its cluster's position
    (-1 for none, then 0 to len(places) - 1, then len(places) for a cluster not listed)."""
    return (0, _position(places, cluster))


def _sorted(items: Iterable[T], key: Callable[[T], Key]) -> list[T]:
    return sorted(items, key=key)  # stable: within a key, the stage's own order stays


def order_findings(findings: Iterable[Finding], places: Mapping[str, int]) -> list[Finding]:
    return _sorted(findings, lambda f: finding_key(f, places))


def order_errors(errors: Iterable[StageError], places: Mapping[str, int]) -> list[StageError]:
    return _sorted(errors, lambda e: (_ERROR_BLOCKS.get(e.stage, 0), _position(places, e.cluster)))


def order_evaluations(
    evaluations: Iterable[Evaluation], places: Mapping[str, int]
) -> list[Evaluation]:
    return _sorted(evaluations, lambda e: row_key(e.ref.cluster if e.ref else "", places))


def order_attestations(
    attestations: Iterable[Attestation], places: Mapping[str, int]
) -> list[Attestation]:
    return _sorted(attestations, lambda a: row_key(a.ref.cluster if a.ref else "", places))


def order_resources(
    records: Iterable[ResourceRecord], places: Mapping[str, int]
) -> list[ResourceRecord]:
    return _sorted(records, lambda r: row_key(r.ref.cluster, places))


# One commit per fleet run: shards start minutes apart, and a branch may move between them.
# The first shard to resolve the revision publishes the commit in a file every shard sees
# (`--pin-commit`); the others read it. Published by hard link, which fails when the file
# exists (also on NFS): a pin is never half written, and two shards never both win.
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def read_pin(path: Path) -> str | None:
    """The commit a fleet run's pin file names; None when no shard has written it yet."""
    try:
        with path.open("rb") as handle:
            text = handle.read(200).decode("ascii", "replace").strip()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ConfigError(
            f"cannot read the fleet run's pinned commit: {error}", file=str(path)
        ) from error
    if not _COMMIT.fullmatch(text):
        raise ConfigError(
            "the fleet run's pinned commit is not a full commit SHA",
            file=str(path),
            key="--pin-commit",
        )
    return text


def publish_pin(path: Path, commit: str) -> str:
    """Pins `commit` for the fleet run unless another shard pinned one first; returns the
    commit pinned (this one, or the other shard's)."""
    if not _COMMIT.fullmatch(commit):
        raise ValueError(f"not a full commit SHA: {commit!r}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, staged = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as error:
        raise ConfigError(f"cannot pin the fleet run's commit: {error}", file=str(path)) from error
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(commit + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(staged, path)
    finally:
        os.unlink(staged)
    pinned = read_pin(path)
    assert pinned is not None  # linked by this shard or by another
    return pinned


def select(clusters: Sequence[T], shard: Shard | None, name: Callable[[T], str]) -> list[T]:
    """The clusters a shard audits, in their configured order (all without a shard)."""
    if shard is None:
        return list(clusters)
    return [c for c in clusters if shard.holds(name(c))]


__all__ = [
    "FINDING_BLOCKS",
    "POLICY_BLOCK",
    "Shard",
    "check_run_id",
    "finding_key",
    "order_attestations",
    "order_errors",
    "order_evaluations",
    "order_findings",
    "order_resources",
    "parse_shard",
    "positions",
    "publish_pin",
    "read_pin",
    "row_key",
    "select",
    "shard_of",
]

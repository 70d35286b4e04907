"""The live stage's entry: what reading one cluster produced, from its API server or snapshots.

This module must not import the `kubernetes` package: `auditor drift` on snapshot files never
talks to a cluster, and importing the client is a fifth of a second that command does not need.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from auditor.config import ClusterSource, Limits
from auditor.live.snapshot import read_snapshots
from auditor.model import ClusterInfo, Resource, ResourceRef, StageError
from auditor.scope import Scope

__all__ = ["LiveRead", "Unread", "read_live"]


Unread = tuple[str | None, str | None, str | None]


@dataclass(frozen=True, slots=True)
class LiveRead:
    """What one cluster read produced: objects in scope, identity, and what could not be read."""

    resources: tuple[Resource, ...]
    info: ClusterInfo
    errors: tuple[StageError, ...]
    # (group, kind) -> namespaced, for every kind discovery described
    namespaced: Mapping[tuple[str, str], bool] = field(
        default_factory=dict, compare=False, hash=False
    )
    # What could not be read, as (group, kind, namespace) with None for "all": desired objects
    # there are unknown, not missing.
    unread: frozenset[Unread] = frozenset()

    def was_read(self, ref: ResourceRef) -> bool:
        """False when a failed read could have held this object."""
        return not any(
            (g is None or g == ref.group)
            and (k is None or k == ref.kind)
            and (ns is None or ns == ref.namespace)
            for g, k, ns in self.unread
        )


def read_live(cluster: ClusterSource, scope: Scope, limits: Limits) -> LiveRead:
    """One cluster's live objects, from its API server or from snapshot files."""
    if cluster.snapshots:
        resources = read_snapshots(cluster.snapshots, cluster=cluster.name, limits=limits)
        info = ClusterInfo(name=cluster.name, server="snapshot:" + ",".join(cluster.snapshots))
        return LiveRead(resources=resources, info=info, errors=(), namespaced={})
    # imported here, not above, so that only a run that reads a cluster loads the client
    from auditor.live.cluster import read_cluster

    return read_cluster(cluster, scope, limits=limits)

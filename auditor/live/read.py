"""One cluster's live objects, from its API server or from snapshot files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from auditor.config import ClusterSource, Limits
from auditor.live.snapshot import read_snapshots
from auditor.model import ClusterInfo
from auditor.scope import Scope

if TYPE_CHECKING:
    from auditor.live.cluster import LiveRead


def read_live(cluster: ClusterSource, scope: Scope, limits: Limits) -> LiveRead:
    """The objects of one cluster: its snapshot files, or its API server."""
    # imported here: the kubernetes client costs ~0.2 s at start-up, which a snapshot audit
    # (every `auditor drift` on a file) never needs
    from auditor.live.cluster import LiveRead, read_cluster

    if cluster.snapshots:
        resources = read_snapshots(cluster.snapshots, cluster=cluster.name, limits=limits)
        info = ClusterInfo(name=cluster.name, server="snapshot:" + ",".join(cluster.snapshots))
        return LiveRead(resources=resources, info=info, errors=(), namespaced={})
    return read_cluster(cluster, scope, limits=limits)


__all__ = ["read_live"]

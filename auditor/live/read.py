"""The live stage's entry: what reading one cluster produced, from its API server or snapshots.

This module must not import the `kubernetes` package: `auditor drift` on snapshot files never
talks to a cluster, and importing the client is a fifth of a second that command does not need.
"""

from __future__ import annotations

from auditor.config import ClusterSource, Limits
from auditor.live.snapshot import read_snapshots
from auditor.model import ClusterInfo, LiveRead
from auditor.scope import Scope

__all__ = ["read_live"]


def read_live(cluster: ClusterSource, scope: Scope, limits: Limits) -> LiveRead:
    """One cluster's live objects, from its API server or from snapshot files."""
    if cluster.snapshots:
        resources = read_snapshots(cluster.snapshots, cluster=cluster.name, limits=limits)
        info = ClusterInfo(name=cluster.name, server="snapshot:" + ",".join(cluster.snapshots))
        return LiveRead(resources=resources, info=info, errors=(), namespaced={})
    # imported here, not above, so that only a run that reads a cluster loads the client
    from auditor.live.cluster import read_cluster

    return read_cluster(cluster, scope, limits=limits)

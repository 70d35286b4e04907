"""auditor.yaml: its schema, loading, and errors that name the file, key and line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from auditor.model import Severity

# Field managers that apply Git's content. A field one of these owns that Git no longer
# sets is `drift.removed`; a field another manager wrote is attributed to that manager.
DEFAULT_GITOPS_MANAGERS: tuple[str, ...] = (
    "argocd-controller",
    "argocd-application-controller",
    "kustomize-controller",
    "helm-controller",
    "kubectl-client-side-apply",
    "kubectl",
)

DEFAULT_CLASS_SEVERITY: Mapping[str, Severity] = {
    "model": "critical",
    "runtime": "high",
    "traffic": "high",
    "scale": "medium",
    "config": "medium",
}

DEFAULT_CHECK_SEVERITY: Mapping[str, Severity] = {
    "drift.missing": "high",
    "drift.unmanaged": "high",
}


@dataclass(frozen=True, slots=True)
class GitSource:
    repo: str  # a local path or a URL (file://, https://, ssh)
    revision: str = "HEAD"
    paths: tuple[str, ...] = (".",)
    cache_dir: str | None = None  # where URL repos are cloned
    default_namespace: str = "default"


@dataclass(frozen=True, slots=True)
class ClusterSource:
    name: str
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    snapshots: tuple[str, ...] = ()  # read these files instead of a cluster


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    """Drift to leave alone: objects matched by globs, at JSON pointers (all when empty)."""

    kind: str = "*"  # `Deployment`, `apps/Deployment`, or a glob
    name: str = "*"
    namespace: str = "*"
    pointers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DriftSettings:
    ignore: tuple[IgnoreRule, ...] = ()
    gitops_managers: tuple[str, ...] = DEFAULT_GITOPS_MANAGERS
    class_severity: Mapping[str, Severity] = field(
        default_factory=lambda: dict(DEFAULT_CLASS_SEVERITY)
    )
    check_severity: Mapping[str, Severity] = field(
        default_factory=lambda: dict(DEFAULT_CHECK_SEVERITY)
    )
    # An HPA owns the replicas of the object it scales: built in, as Argo CD users configure it.
    ignore_hpa_replicas: bool = True


@dataclass(frozen=True, slots=True)
class ScopeSettings:
    kinds: tuple[str, ...] | None = None  # None: the kinds Git declares
    namespaces: tuple[str, ...] | None = None  # None: the namespaces Git declares
    exclude_namespaces: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Limits:
    max_manifest_bytes: int = 8 * 1024 * 1024
    max_snapshot_bytes: int = 1024 * 1024 * 1024
    max_response_bytes: int = 256 * 1024 * 1024
    page_size: int = 500
    request_timeout_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class Config:
    path: str  # the file it was loaded from ("" when built from flags)
    git: GitSource
    clusters: tuple[ClusterSource, ...]
    scope: ScopeSettings = ScopeSettings()
    drift: DriftSettings = field(default_factory=DriftSettings)
    limits: Limits = Limits()
    store: str | None = None
    report: str | None = None
    fail_on: Severity = "high"

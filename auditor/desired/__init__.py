"""The `desired` stage: what Git declares at one pinned commit, as `Resource`s.

state = read_desired(GitSource(repo="https://...", revision="main", paths=("prod",)))
state.commit     # the full SHA that `main` named when it was read
state.resources  # plain YAML/JSON manifests and rendered kustomize directories
"""

from __future__ import annotations

from dataclasses import dataclass

from auditor.config import GitSource, Limits
from auditor.desired.git import display_url, open_repo
from auditor.desired.manifests import (
    KustomizeDir,
    ManifestFile,
    RawObject,
    build_resources,
    find_inputs,
    normalize_path,
    read_manifest_files,
)
from auditor.desired.render import Checkout, render_kustomization
from auditor.model import Resource

__all__ = ["DesiredState", "read_desired"]

DEFAULT_LIMITS = Limits()  # frozen, so one shared default is safe


@dataclass(frozen=True, slots=True)
class DesiredState:
    repo: str  # as given, credentials masked
    revision: str  # as given: a branch, tag, SHA or HEAD
    commit: str  # the full SHA the revision resolved to
    paths: tuple[str, ...]  # repo-relative, normalized
    resources: tuple[Resource, ...]


def read_desired(
    source: GitSource, *, cluster: str = "", limits: Limits = DEFAULT_LIMITS
) -> DesiredState:
    """Every object the paths declare at the commit `source.revision` names.

    Raises SourceError when Git cannot be read as asked (not a repository, unknown
    revision, clone failure, remote kustomize base, no kustomize) and InputError naming the
    file and line for a bad manifest. Working-tree edits never count.
    """
    paths = tuple(normalize_path(p) for p in source.paths) or (".",)
    repo = open_repo(source.repo, revision=source.revision, cache_dir=source.cache_dir)
    commit = repo.resolve(source.revision)
    objects: list[RawObject] = []
    with repo.blobs() as reader:
        tree = repo.tree(commit, reader)
        inputs = find_inputs(tree, paths)
        files = [i for i in inputs if isinstance(i, ManifestFile)]
        # every plain file in one pipelined batch, finished before kustomize needs the reader
        parsed = iter(
            list(read_manifest_files(tree, reader, files, max_bytes=limits.max_manifest_bytes))
        )
        with Checkout(tree, reader) as checkout:
            for item in inputs:
                if isinstance(item, KustomizeDir):
                    objects += render_kustomization(
                        tree,
                        reader,
                        item,
                        checkout,
                        max_manifest_bytes=limits.max_manifest_bytes,
                        max_output_bytes=limits.max_snapshot_bytes,
                    )
                else:
                    objects += next(parsed)
    resources = build_resources(
        objects, default_namespace=source.default_namespace, cluster=cluster
    )
    return DesiredState(
        repo=display_url(source.repo),
        revision=source.revision,
        commit=commit,
        paths=paths,
        resources=resources,
    )

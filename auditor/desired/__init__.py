"""The `desired` stage: what Git declares at one pinned commit, as `Resource`s.

state = read_desired(GitSource(repo="https://...", revision="main", paths=("prod",)))
state.commit     # the full SHA that `main` named when it was read
state.resources  # plain YAML/JSON manifests and rendered kustomize directories
"""

from __future__ import annotations

from auditor.config import GitSource, Limits
from auditor.desired.commit import CommitReader
from auditor.desired.git import open_repo
from auditor.desired.manifests import (
    KustomizeDir,
    ManifestFile,
    RawObject,
    build_resources,
    find_inputs,
    normalize_path,
    read_manifest_files,
    require_objects,
)
from auditor.desired.render import Checkout, render_kustomization
from auditor.model import DesiredState, GitCommit
from auditor.redact import redact_url

__all__ = ["open_commit_files", "read_desired"]

DEFAULT_LIMITS = Limits()  # frozen, so one shared default is safe


def read_desired(
    source: GitSource,
    *,
    cluster: str = "",
    limits: Limits = DEFAULT_LIMITS,
    keep_files: bool = False,
) -> DesiredState:
    """Every object the paths declare at the commit `source.revision` names.

    With `keep_files`, the result carries the commit's files (`DesiredState.files`) for the
    stages that read attestations from the same commit; the caller closes them.

    Raises SourceError when Git cannot be read as asked (not a repository, unknown
    revision, clone failure, remote kustomize base, no kustomize) and InputError naming the
    file and line for a bad manifest. Working-tree edits never count.
    """
    paths = tuple(normalize_path(p) for p in source.paths) or (".",)
    repo = open_repo(source.repo, revision=source.revision, cache_dir=source.cache_dir)
    commit = repo.resolve(source.revision)
    objects: list[RawObject] = []
    reader = repo.blobs()
    try:
        tree = repo.tree(commit, reader)
        found = find_inputs(tree, paths)
        manifest_files = [i for i in found.inputs if isinstance(i, ManifestFile)]
        # every plain file in one pipelined batch, finished before kustomize needs the reader
        parsed = iter(
            list(
                read_manifest_files(
                    tree, reader, manifest_files, max_bytes=limits.max_manifest_bytes
                )
            )
        )
        produced: dict[str, list[RawObject]] = {}
        with Checkout(tree, reader) as checkout:
            for item in found.inputs:
                if isinstance(item, KustomizeDir):
                    produced[item.path] = render_kustomization(
                        tree,
                        reader,
                        item,
                        checkout,
                        limits=limits,
                    )
                else:
                    produced[item.path] = next(parsed)
                objects += produced[item.path]
        require_objects(tree, found, produced)
        resources = build_resources(
            objects, default_namespace=source.default_namespace, cluster=cluster
        )
    except BaseException:
        reader.close()
        raise
    files: CommitReader | None = None
    if keep_files:
        files = CommitReader(repo, tree, reader, max_bytes=limits.max_manifest_bytes)
    else:
        reader.close()
    git = GitCommit(
        repo=redact_url(source.repo), revision=source.revision, commit=commit, paths=paths
    )
    return DesiredState(git=git, resources=resources, files=files)


def open_commit_files(
    source: GitSource, commit: str, *, limits: Limits = DEFAULT_LIMITS
) -> CommitReader:
    """The files of one commit of `source`, for reading attestations (the admission server,
    tests): what `read_desired(..., keep_files=True)` hands over after reading manifests."""
    repo = open_repo(source.repo, revision=commit, cache_dir=source.cache_dir)
    full = repo.resolve(commit)
    reader = repo.blobs()
    try:
        tree = repo.tree(full, reader)
    except BaseException:
        reader.close()
        raise
    return CommitReader(repo, tree, reader, max_bytes=limits.max_manifest_bytes)

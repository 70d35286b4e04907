"""Attestation files and lockfiles read from the audited Git commit, never a working tree.

The attestations that vouch for a model live in the audited repository (DESIGN "Model
references and provenance"): a directory per serving resource holding `*.sig` (model-signing
bundles), `*.intoto.json` / `*.intoto.jsonl` (SLSA provenance in a DSSE envelope or a Sigstore
bundle), optionally an in-toto layout (`*.layout`, or `layout`) with its links under `links/`.
Everything here is untrusted Git content: paths that leave the repository (`..`, absolute
paths, symlinks pointing out) are refused, and file sizes are checked before a byte is read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import PurePosixPath

from auditor.config import GitSource
from auditor.desired.git import BlobReader, Repo, Tree, open_repo, short
from auditor.errors import InputError

ATTESTATIONS_ANNOTATION = "auditor.gitops.ml/attestations"
MAX_ATTESTATION_FILES = 256  # files in one attestation directory, links included
PROVENANCE_SUFFIXES = (".intoto.json", ".intoto.jsonl")
LAYOUT_NAMES = ("layout", "root.layout")
LINKS_DIR = "links"


class AttestationPathError(ValueError):
    """An attestation path from Git or config that must not be followed."""


@dataclass(frozen=True, slots=True)
class GitFile:
    """One file of the commit; `data` is None when it is over the size limit (not read)."""

    path: str  # repo-relative, as found (before symlinks)
    commit: str
    size: int
    data: bytes | None

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def at(self) -> str:
        """`attestations/ml/scorer/model.sig@1a2b3c4d5e6f`: how messages name it."""
        return f"{self.path}@{short(self.commit)}"

    @property
    def digest(self) -> str | None:
        return "sha256:" + hashlib.sha256(self.data).hexdigest() if self.data is not None else None


@dataclass(frozen=True, slots=True)
class AttestationFiles:
    """What one attestation directory holds, sorted by path."""

    directory: str
    exists: bool
    signatures: tuple[GitFile, ...] = ()
    provenance: tuple[GitFile, ...] = ()
    layouts: tuple[GitFile, ...] = ()
    links: tuple[tuple[str, GitFile], ...] = ()  # (name relative to links/, file)


def normalize_repo_path(value: str) -> str:
    """A repo-relative path (`a/b`), or AttestationPathError when it could leave the repository."""
    text = value.strip()
    if not text:
        raise AttestationPathError("the path is empty")
    if text.startswith("/") or "\\" in text or "\0" in text:
        raise AttestationPathError(f"{value!r} is not a relative path inside the repository")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise AttestationPathError(f"{value!r} climbs out of its directory ('..')")
    if not parts:
        raise AttestationPathError(f"{value!r} names the repository root, not a directory in it")
    return "/".join(parts)


def classify(name: str) -> str | None:
    """`signature`, `provenance`, `layout`, or None for a file the binding does not read."""
    if name.endswith(".sig"):
        return "signature"
    if name.endswith(PROVENANCE_SUFFIXES):
        return "provenance"
    if name in LAYOUT_NAMES or name.endswith(".layout"):
        return "layout"
    return None


class CommitFiles:
    """The files of one commit of the audited repository, through one `git cat-file` process.

    Opened lazily: a run with no model to verify never starts git again. Raises SourceError
    when Git cannot be read (the caller makes the run incomplete).
    """

    def __init__(self, source: GitSource, commit: str, *, max_bytes: int) -> None:
        self.source = source
        self.commit = commit
        self.max_bytes = max_bytes
        self._repo: Repo | None = None
        self._reader: BlobReader | None = None
        self._tree: Tree | None = None

    @property
    def repo(self) -> Repo:
        if self._repo is None:
            # a full SHA the desired stage already fetched: a cached clone is never re-fetched
            self._repo = open_repo(
                self.source.repo, revision=self.commit, cache_dir=self.source.cache_dir
            )
        return self._repo

    @property
    def tree(self) -> Tree:
        if self._tree is None:
            self._reader = self.repo.blobs()
            self._tree = self.repo.tree(self.commit, self._reader)
        return self._tree

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _resolve(self, path: str) -> str:
        try:
            return self.tree.resolve(path)
        except InputError as exc:
            raise AttestationPathError(exc.message) from None

    def _file(self, shown: str, resolved: str) -> GitFile | None:
        entry = self.tree.entries.get(resolved)
        if entry is None or entry.is_submodule or entry.is_symlink:
            return None
        if entry.size > self.max_bytes:
            return GitFile(path=shown, commit=self.commit, size=entry.size, data=None)
        assert self._reader is not None  # opened with the tree
        data = self._reader.read(entry.sha)
        return GitFile(path=shown, commit=self.commit, size=entry.size, data=data)

    def read(self, path: str) -> GitFile | None:
        """One file by repo-relative path; None when the commit has no such file."""
        shown = normalize_repo_path(path)
        return self._file(shown, self._resolve(shown))

    def attestations(self, directory: str) -> AttestationFiles:
        """The attestation files in `directory` (repo-relative) at the commit.

        Raises AttestationPathError when the directory, or a symlink in it, leads out of the
        repository, or it holds more than MAX_ATTESTATION_FILES files.
        """
        shown = normalize_repo_path(directory)
        resolved = self._resolve(shown)
        tree = self.tree
        if not tree.is_dir(resolved):
            return AttestationFiles(directory=shown, exists=False)
        found: dict[str, list[GitFile]] = {"signature": [], "provenance": [], "layout": []}
        links: list[tuple[str, GitFile]] = []
        count = 0
        for child in tree.child_paths(resolved):
            name = PurePosixPath(child).name
            target = self._resolve(child)
            if name == LINKS_DIR and tree.is_dir(target):
                for rel, link_path in self._walk(target):
                    count += 1
                    self._check_count(count, shown)
                    file = self._file(f"{shown}/{LINKS_DIR}/{rel}", link_path)
                    if file is not None and rel.endswith(".link"):
                        links.append((rel, file))
                continue
            kind = classify(name)
            if kind is None:
                continue
            count += 1
            self._check_count(count, shown)
            file = self._file(f"{shown}/{name}", target)
            if file is not None:
                found[kind].append(file)
        return AttestationFiles(
            directory=shown,
            exists=True,
            signatures=tuple(found["signature"]),
            provenance=tuple(found["provenance"]),
            layouts=tuple(found["layout"]),
            links=tuple(links),
        )

    def _walk(self, directory: str) -> list[tuple[str, str]]:
        """(path relative to `directory`, resolved path) of every file below it."""
        out: list[tuple[str, str]] = []
        pending = [("", directory)]
        seen: set[str] = set()
        while pending:
            rel_dir, real_dir = pending.pop()
            if real_dir in seen:
                continue  # a symlink loop inside the repository
            seen.add(real_dir)
            for child in self.tree.child_paths(real_dir):
                name = PurePosixPath(child).name
                rel = f"{rel_dir}/{name}" if rel_dir else name
                target = self._resolve(child)
                if self.tree.is_dir(target):
                    pending.append((rel, target))
                else:
                    out.append((rel, target))
                if len(out) > MAX_ATTESTATION_FILES:
                    return out
        return sorted(out)

    @staticmethod
    def _check_count(count: int, directory: str) -> None:
        if count > MAX_ATTESTATION_FILES:
            raise AttestationPathError(
                f"{directory} holds more than {MAX_ATTESTATION_FILES} attestation files"
            )


__all__ = [
    "ATTESTATIONS_ANNOTATION",
    "AttestationFiles",
    "AttestationPathError",
    "CommitFiles",
    "GitFile",
    "classify",
    "normalize_repo_path",
]

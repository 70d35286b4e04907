"""Attestation files and lockfiles read from the audited Git commit, never a working tree.

The attestations that vouch for a model live in the audited repository (DESIGN "Model
references and provenance"): a directory per serving resource holding `*.sig` (model-signing
bundles), `*.intoto.json` / `*.intoto.jsonl` (SLSA provenance in a DSSE envelope or a Sigstore
bundle), `*.sigstore.json` (Sigstore bundles over an OCI model's image: cosign signatures and
attestations), optionally an in-toto layout (`*.layout`, or `layout`) with its links under
`links/`.
Everything here is untrusted Git content: paths that leave the repository (`..`, absolute
paths, symlinks pointing out) are refused, and file sizes are checked before a byte is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from auditor.errors import InputError
from auditor.model import CommitFiles, GitFile
from auditor.repo_paths import RepoPathError, repo_path

MAX_ATTESTATION_FILES = 256  # files in one attestation directory, links included
PROVENANCE_SUFFIXES = (".intoto.json", ".intoto.jsonl")
IMAGE_SIGNATURE_SUFFIX = ".sigstore.json"  # cosign's `--bundle` files, GitHub attestations
LAYOUT_NAMES = ("layout", "root.layout")
LINKS_DIR = "links"


class AttestationPathError(RepoPathError):
    """An attestation path from Git or config that must not be followed."""


@dataclass(frozen=True, slots=True)
class AttestationFiles:
    """What one attestation directory holds, sorted by path."""

    directory: str
    exists: bool
    signatures: tuple[GitFile, ...] = ()
    provenance: tuple[GitFile, ...] = ()
    image_signatures: tuple[GitFile, ...] = ()
    layouts: tuple[GitFile, ...] = ()
    links: tuple[tuple[str, GitFile], ...] = ()  # (name relative to links/, file)


def normalize_repo_path(value: str) -> str:
    """A repo-relative path (`a/b`), or AttestationPathError when it could leave the repository."""
    try:
        return repo_path(value)
    except RepoPathError as exc:
        raise AttestationPathError(str(exc)) from None


def classify(name: str) -> str | None:
    """`signature`, `provenance`, `image_signature`, `layout`, or None for a file the binding
    does not read."""
    if name.endswith(".sig"):
        return "signature"
    if name.endswith(PROVENANCE_SUFFIXES):
        return "provenance"
    if name.endswith(IMAGE_SIGNATURE_SUFFIX):
        return "image_signature"
    if name in LAYOUT_NAMES or name.endswith(".layout"):
        return "layout"
    return None


def _resolve(files: CommitFiles, path: str) -> str:
    try:
        return files.resolve(path)
    except InputError as exc:
        raise AttestationPathError(exc.message) from None


def read_file(files: CommitFiles, path: str) -> GitFile | None:
    """One file by repo-relative path; None when the commit has no such file."""
    shown = normalize_repo_path(path)
    return files.file(shown, _resolve(files, shown))


def attestation_files(files: CommitFiles, directory: str) -> AttestationFiles:
    """The attestation files in `directory` (repo-relative) at the commit.

    Raises AttestationPathError when the directory, or a symlink in it, leads out of the
    repository, or it holds more than MAX_ATTESTATION_FILES files.
    """
    shown = normalize_repo_path(directory)
    resolved = _resolve(files, shown)
    if not files.is_dir(resolved):
        return AttestationFiles(directory=shown, exists=False)
    found: dict[str, list[GitFile]] = {
        "signature": [],
        "provenance": [],
        "image_signature": [],
        "layout": [],
    }
    links: list[tuple[str, GitFile]] = []
    count = 0
    for child in files.child_paths(resolved):
        name = PurePosixPath(child).name
        target = _resolve(files, child)
        if name == LINKS_DIR and files.is_dir(target):
            for rel, link_path in _walk(files, target):
                count += 1
                _check_count(count, shown)
                file = files.file(f"{shown}/{LINKS_DIR}/{rel}", link_path)
                if file is not None and rel.endswith(".link"):
                    links.append((rel, file))
            continue
        kind = classify(name)
        if kind is None:
            continue
        count += 1
        _check_count(count, shown)
        file = files.file(f"{shown}/{name}", target)
        if file is not None:
            found[kind].append(file)
    return AttestationFiles(
        directory=shown,
        exists=True,
        signatures=tuple(found["signature"]),
        provenance=tuple(found["provenance"]),
        image_signatures=tuple(found["image_signature"]),
        layouts=tuple(found["layout"]),
        links=tuple(links),
    )


def documents(file: GitFile) -> list[tuple[str, bytes | None]]:
    """(source, bytes) of the signed documents of a file: the whole file, or one per line of a
    `.jsonl` (`file@commit#3` names the third); bytes None when the file is over the limit."""
    if file.data is None or not file.name.endswith(".jsonl"):
        return [(file.at, file.data)]
    lines = [line.strip() for line in file.data.splitlines()]
    return [(f"{file.at}#{i + 1}", line) for i, line in enumerate(lines) if line] or [
        (file.at, b"")
    ]


def _walk(files: CommitFiles, directory: str) -> list[tuple[str, str]]:
    """(path relative to `directory`, resolved path) of every file below it."""
    out: list[tuple[str, str]] = []
    pending = [("", directory)]
    seen: set[str] = set()
    while pending:
        rel_dir, real_dir = pending.pop()
        if real_dir in seen:
            continue  # a symlink loop inside the repository
        seen.add(real_dir)
        for child in files.child_paths(real_dir):
            name = PurePosixPath(child).name
            rel = f"{rel_dir}/{name}" if rel_dir else name
            target = _resolve(files, child)
            if files.is_dir(target):
                pending.append((rel, target))
            else:
                out.append((rel, target))
            if len(out) > MAX_ATTESTATION_FILES:
                return out
    return sorted(out)


def _check_count(count: int, directory: str) -> None:
    if count > MAX_ATTESTATION_FILES:
        raise AttestationPathError(
            f"{directory} holds more than {MAX_ATTESTATION_FILES} attestation files"
        )


__all__ = [
    "AttestationFiles",
    "AttestationPathError",
    "attestation_files",
    "classify",
    "documents",
    "normalize_repo_path",
    "read_file",
]

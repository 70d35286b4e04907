"""From a signed statement to a manifest, and from the model's files to the same manifest.

The statement says how the model was hashed (its serialization); the model is hashed the
same way, once per distinct serialization, and the two manifests are compared file by file.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from model_signing import hashing as ms_hashing
from model_signing import manifest as ms_manifest

from auditor import checks
from auditor.errors import InputError, first_line
from auditor.provenance import upstream
from auditor.provenance.signing.results import Problem
from auditor.safeyaml import strict_json

_V1_PREDICATE = "https://model_signing/signature/v1.0"


def statement_manifest(payload: bytes, path: Path) -> tuple[ms_manifest.Manifest, str] | Problem:
    """The manifest and subject digest of an authenticated statement."""
    try:
        statement = strict_json(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return Problem(checks.SIGNATURE_INVALID, f"the statement signed in {path.name} is not JSON")
    if not isinstance(statement, dict) or statement.get("_type") != upstream.IN_TOTO_STATEMENT_TYPE:
        return Problem(
            checks.SIGNATURE_INVALID, f"{path.name} does not sign an in-toto Statement v1"
        )
    try:
        manifest = upstream.statement_manifest(statement)
    except ValueError as exc:
        message = first_line(exc)
        if message.startswith("Manifest is inconsistent"):
            # Authentic, but its subject digest is not the digest of the files it lists.
            return Problem(
                checks.DIGEST_MISMATCH,
                f"the subject digest signed in {path.name} does not match the files it lists "
                f"({message})",
                expected=_subject_digest(statement),
            )
        return Problem(checks.SIGNATURE_INVALID, f"{path.name} is not a model signature: {message}")
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        return Problem(
            checks.SIGNATURE_INVALID, f"{path.name} is not a model signature: missing {exc}"
        )
    if statement.get("predicateType") == _V1_PREDICATE:
        digest = _subject_digest(statement)
    else:
        # The v0.2 compat statement lists files as subjects and has no single model digest:
        # use the one a v1.0 statement of the same manifest would carry.
        digest = manifest_digest(manifest)
    assert digest is not None
    return manifest, digest


def _subject_digest(statement: dict[str, Any]) -> str | None:
    try:
        return "sha256:" + str(statement["subject"][0]["digest"]["sha256"])
    except (KeyError, IndexError, TypeError):
        return None


def manifest_digest(manifest: ms_manifest.Manifest) -> str:
    """The subject digest model-signing signs for a manifest: `sha256:<hex>`."""
    return "sha256:" + upstream.subject_digest_hex(manifest)


def files_digest(sha256: Mapping[str, str]) -> str:
    """The model digest model-signing signs for a directory holding exactly these files
    (path relative to it -> hex SHA-256): `sha256:<hex>`."""
    manifest = upstream.files_manifest({path: bytes.fromhex(v) for path, v in sha256.items()})
    return manifest_digest(manifest)


def _truthy(value: Any) -> bool:
    # The v0.2 compat serialization records allow_symlinks as the string "false".
    return value is True or (isinstance(value, str) and value.lower() == "true")


def hashing_config(
    serialization: dict[str, Any], ignore_paths: Iterable[Path]
) -> ms_hashing.Config:
    """model-signing's hashing configuration for a signed serialization, plus ignored paths.

    The same choice `model_signing.verifying.Config` makes when it guesses the configuration
    from the signature, with the caller's ignored paths added (ours come from the CLI).
    """
    method = serialization.get("method")
    algorithm = serialization.get("hash_type", "sha256")
    symlinks = _truthy(serialization.get("allow_symlinks", False))
    signed_ignores = [Path(p) for p in serialization.get("ignore_paths", ())]
    config = ms_hashing.Config()
    if method == "files":
        config.use_file_serialization(hashing_algorithm=algorithm, allow_symlinks=symlinks)
    elif method == "shards":
        config.use_shard_serialization(
            hashing_algorithm=algorithm,
            shard_size=int(serialization["shard_size"]),
            allow_symlinks=symlinks,
        )
    else:
        raise ValueError(f"unknown serialization method {method!r}")
    # set_allow_symlinks: Config.hash re-applies its own flag to the serializer.
    return config.set_ignored_paths(
        paths=[*signed_ignores, *ignore_paths], ignore_git_paths=True
    ).set_allow_symlinks(symlinks)


def manifest_diff(
    actual: ms_manifest.Manifest, expected: ms_manifest.Manifest
) -> dict[str, list[str]]:
    """Which files changed, are missing from the model, or are in it unsigned."""
    have = {rd.identifier: rd.digest.digest_hex for rd in actual.resource_descriptors()}
    want = {rd.identifier: rd.digest.digest_hex for rd in expected.resource_descriptors()}
    return {
        "changed": sorted(k for k in have.keys() & want.keys() if have[k] != want[k]),
        "missing": sorted(want.keys() - have.keys()),
        "extra": sorted(have.keys() - want.keys()),
    }


def diff_text(diff: dict[str, list[str]]) -> str:
    """`changed a, b; unsigned c`: at most five names of each kind."""
    parts = [
        f"{label} {', '.join(diff[key][:5])}{' ...' if len(diff[key]) > 5 else ''}"
        for key, label in (("changed", "changed"), ("missing", "missing"), ("extra", "unsigned"))
        if diff[key]
    ]
    return "; ".join(parts)


# Below this many bytes in at most this many files, a model is small: model-signing starts a
# pool of threads for every model it hashes, which costs several times what hashing such a
# model does (the admission webhook hashes the model on every decision its cache does not
# answer).
SMALL_MODEL_BYTES = 16 * 1024 * 1024
SMALL_MODEL_FILES = 64
# What model-signing leaves out of every model it hashes (`hashing.Config.hash` with
# `ignore_git_paths`, which `hashing_config` sets), as paths relative to the model.
GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")


class Hasher:
    """Hashes the model once per distinct serialization, however many signatures ask.

    A small model signed by files with SHA-256 is first hashed here, in the calling thread,
    walking it as model-signing does (every file under the model but the ignored ones, paths
    relative to it); when that manifest equals the signed one, it is the answer. Anything
    else (another serialization, a symlink or special file anywhere in the model, an ignored
    path that is not a plain relative one, a model that is not small, a manifest that differs
    from the signed one) is hashed by model-signing itself, whose manifest then says what
    differs, exactly as it always did.
    """

    def __init__(self, model: Path, ignore_paths: tuple[Path, ...]) -> None:
        self.model = model
        self.ignore_paths = ignore_paths
        self._done: dict[str, ms_manifest.Manifest | Problem] = {}
        self._quick: dict[str, ms_manifest.Manifest | None] = {}

    def manifest(
        self, serialization: dict[str, Any], expected: ms_manifest.Manifest | None = None
    ) -> ms_manifest.Manifest | Problem:
        """The model's manifest under `serialization`; `expected`: the manifest a signature
        lists, which a small model's own hashing may confirm."""
        key = json.dumps(serialization, sort_keys=True, default=str)
        if expected is not None and key not in self._done:
            if key not in self._quick:
                self._quick[key] = self._hash_small(serialization)
            quick = self._quick[key]
            if quick is not None and quick == expected:
                return quick
        if key not in self._done:
            self._done[key] = self._hash(serialization)
        return self._done[key]

    def _hash_small(self, serialization: dict[str, Any]) -> ms_manifest.Manifest | None:
        """The manifest of a small model signed by files with SHA-256, hashed here; None
        where model-signing must decide."""
        if (
            serialization.get("method") != "files"
            or serialization.get("hash_type", "sha256") != "sha256"
            or _truthy(serialization.get("allow_symlinks", False))
        ):
            return None
        ignored = _plain_ignores([*serialization.get("ignore_paths", ()), *self.ignore_paths])
        if ignored is None:
            return None
        try:
            digests = _small_model_digests(self.model, ignored)
        except OSError:
            return None  # model-signing reads it again and says what is wrong
        return upstream.files_manifest(digests) if digests is not None else None

    def _hash(self, serialization: dict[str, Any]) -> ms_manifest.Manifest | Problem:
        try:
            config = hashing_config(serialization, self.ignore_paths)
        except (ValueError, KeyError, TypeError) as exc:
            return Problem(
                checks.SIGNATURE_INVALID,
                f"the signed serialization is not one model-signing knows: {exc}",
            )
        try:
            return config.hash(self.model)
        except ValueError as exc:
            # A symlink the signature does not allow, or a special file: not the signed model.
            return Problem(
                checks.DIGEST_MISMATCH, f"the model cannot be hashed as signed: {first_line(exc)}"
            )
        except OSError as exc:
            raise InputError(
                f"cannot read the model: {exc.strerror}", file=exc.filename or str(self.model)
            ) from None


def _plain_ignores(paths: Iterable[Any]) -> tuple[str, ...] | None:
    """Ignored paths as relative POSIX strings, with model-signing's Git paths; None when one
    is absolute, climbs out (`..`) or names the model itself (model-signing's own rules
    decide those)."""
    out = list(GIT_PATHS)
    for item in paths:
        path = PurePosixPath(str(item))
        if path.is_absolute() or ".." in path.parts or str(path) in ("", "."):
            return None
        out.append(str(path))
    return tuple(out)


def _ignored(relative: str, ignored: tuple[str, ...]) -> bool:
    # model-signing: the path is the ignored one or under it (`Path.is_relative_to`)
    return any(relative == i or relative.startswith(i + "/") for i in ignored)


def _small_model_digests(model: Path, ignored: tuple[str, ...]) -> dict[str, bytes] | None:
    """{path relative to the model: SHA-256} of every file model-signing would hash in the
    directory `model`; None when the model is not a small directory of plain files and
    folders (a symlink or special file anywhere, ignored or not, as model-signing checks
    every path before it ignores any)."""
    if not model.is_dir():
        return None
    digests: dict[str, bytes] = {}
    total = 0

    def fail(exc: OSError) -> None:
        raise exc

    for folder, dirs, files in os.walk(model, onerror=fail):
        for name in (*dirs, *files):
            mode = os.lstat(os.path.join(folder, name)).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                return None
        for name in files:
            path = os.path.join(folder, name)
            relative = Path(path).relative_to(model).as_posix()
            if _ignored(relative, ignored):
                continue
            # never follows a link nor waits on a pipe put there since the walk looked
            flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
            with os.fdopen(os.open(path, flags), "rb") as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    return None
                data = handle.read(SMALL_MODEL_BYTES - total + 1)
            total += len(data)
            if total >= SMALL_MODEL_BYTES or len(digests) >= SMALL_MODEL_FILES:
                return None
            digests[relative] = hashlib.sha256(data).digest()
    return digests


__all__ = [
    "Hasher",
    "diff_text",
    "files_digest",
    "hashing_config",
    "manifest_diff",
    "manifest_digest",
    "statement_manifest",
]

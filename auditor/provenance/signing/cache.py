"""A model is hashed once per process for the same bundles, policy and files on disk.

The key holds the digest of every signature file, the trust policy's digest, the rule's
inputs and a fingerprint of the model's directory entries, so a cached answer never outlives a
change to any of them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from auditor.lru import LRU
from auditor.model import ResourceRef
from auditor.provenance.signing.bundles import read_bundle_bytes
from auditor.provenance.signing.results import ModelVerification
from auditor.trust.policy import TrustPolicy

CacheKey = tuple[Any, ...]

VERIFICATIONS: LRU[CacheKey, ModelVerification] = LRU(256)


def clear_cache() -> None:
    """Forgets every cached verification (tests, or after rotating trust material)."""
    VERIFICATIONS.clear()


def stat_fingerprint(model: Path) -> str:
    """A digest of every entry's path, type, size, mtime, ctime and inode under `model`.

    Any write changes ctime, which a user cannot set back, so a cached answer never outlives
    a change to the files.
    """
    entries: list[tuple[Any, ...]] = []

    def add(path: Path) -> None:
        st = path.lstat()
        entries.append(
            (
                str(path.relative_to(model.parent)),
                st.st_mode,
                st.st_size,
                st.st_mtime_ns,
                st.st_ctime_ns,
                st.st_ino,
            )
        )

    add(model)
    if model.is_dir():
        for root, dirs, files in os.walk(model):
            dirs.sort()
            for item in sorted(dirs + files):
                add(Path(root) / item)
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def cache_key(
    model: Path,
    signatures: tuple[Path, ...],
    policy: TrustPolicy,
    namespace: str | None,
    name: str | None,
    ignores: tuple[Path, ...],
    ref: ResourceRef,
) -> CacheKey:
    return (
        tuple((str(p), _file_digest(p)) for p in signatures),
        policy.digest,
        namespace,
        name,
        tuple(str(p) for p in ignores),
        ref,
        str(model),
        stat_fingerprint(model),
    )


def _file_digest(path: Path) -> str | None:
    # bounded as the verification reads it: a pipe or `/dev/zero` is refused there, by name
    data = read_bundle_bytes(path)
    return hashlib.sha256(data).hexdigest() if isinstance(data, bytes) else None


__all__ = ["VERIFICATIONS", "cache_key", "clear_cache", "stat_fingerprint"]

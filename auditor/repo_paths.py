"""Paths inside the audited repository, as config, Git and attestations name them.

Every repo-relative path auditor follows (`--path`, `provenance.attestations`, the lockfile,
an attestation directory named by an annotation in Git) goes through `repo_path`: Git content
and config are untrusted, and a path that could leave the repository is refused before it
is resolved, whatever the caller does with it next.
"""

from __future__ import annotations


class RepoPathError(ValueError):
    """A path that must not be followed; the message names it and says why."""


def repo_path(value: str, *, root_ok: bool = False) -> str:
    """`value` as a clean repo-relative path (`a/b`; `.` for the root when `root_ok`).

    Refused: absolute paths, backslashes and NUL (never a POSIX path in Git), any `..`
    segment (even one that would stay inside: the rule is simpler to trust than to reason
    about), and the root itself unless `root_ok`.
    """
    text = value.strip()
    if text.startswith("/"):
        raise RepoPathError(f"{value!r} is absolute: paths are relative to the repository root")
    if "\\" in text or "\0" in text:
        raise RepoPathError(f"{value!r} is not a relative path inside the repository")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise RepoPathError(f"{value!r} climbs with '..', which could lead outside the repository")
    if not parts:
        if root_ok:
            return "."
        raise RepoPathError(f"{value!r} names the repository root, not a directory in it")
    return "/".join(parts)


__all__ = ["RepoPathError", "repo_path"]

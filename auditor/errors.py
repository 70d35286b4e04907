"""One error base whose `diagnostics()` a person can act on; the CLI prints it, no traceback."""

from __future__ import annotations

import errno
from typing import TypeGuard

from auditor.exit_codes import ExitCode


class AuditorError(Exception):
    """Base of every error auditor raises on purpose.

    `exit_code` is what the CLI exits with: USAGE (2) for a user or input mistake.
    """

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        self.hint = hint

    def location(self) -> str:
        """`file:line: key` as far as it is known."""
        parts = []
        if self.file:
            parts.append(self.file if self.line is None else f"{self.file}:{self.line}")
        if self.key:
            parts.append(self.key)
        return ": ".join(parts)

    def diagnostics(self) -> str:
        where = self.location()
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.diagnostics()


class ConfigError(AuditorError):
    """auditor.yaml (or a flag) is wrong: names the file, key and line."""


class InputError(AuditorError):
    """A manifest, snapshot or other input file is unusable: names the file and line."""


class SourceError(AuditorError):
    """Git or the cluster could not be read as asked (unknown revision, missing tool)."""


class VerificationError(AuditorError):
    """A signature or attestation failed verification: names the exact reason."""

    exit_code = ExitCode.FINDINGS


class StoreError(AuditorError):
    """The store could not record a run (e.g. another audit held the write lock too long).

    Exit 3: the audit ran but its result is not recorded, so the run is not complete.
    """

    exit_code = ExitCode.INCOMPLETE


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text, or its type's name when it has none.

    Upstream libraries (model-signing, sigstore, OpenSSL) raise multi-line messages; a finding
    quotes one line of them.
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# The machine, not auditor: a full or failing disk, a file size limit, a read-only file system.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS})


def no_room(exc: BaseException) -> TypeGuard[OSError]:
    """Whether `exc` is a write the machine had no room for (exit 2, said as such), rather than
    a bug (exit 4)."""
    return isinstance(exc, OSError) and exc.errno in _NO_ROOM

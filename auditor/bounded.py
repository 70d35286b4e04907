"""Reading a file a user or Git named, bounded before a byte is read.

Every file auditor reads on someone's say-so (config, trust policy and its keys, signature
bundles, policy and data files, snapshots, kubeconfigs) comes through `read_bounded`: it is
opened without blocking, must be a regular file (a named pipe would hang the run, `/dev/zero`
or `/dev/urandom` would fill memory), its size is checked from the open handle, and at most
`max_bytes + 1` bytes are read, so a file that grows after the check is still refused.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from pathlib import Path

from auditor.errors import AuditorError, InputError

# What a path is, when it is not a regular file: messages name it so the user sees the mistake.
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
# Reads past this many bytes are done in chunks: a cap of 1 GiB must not allocate 1 GiB
# up front for a file of a few kilobytes.
_CHUNK = 1 << 20
_SPECIAL_HINT = "auditor reads only regular files (no pipes, devices or sockets)"


def special_kind(mode: int) -> str | None:
    """`a named pipe (FIFO)`, `a character device`, ...; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((text for test, text in _KINDS if test(mode)), "not a regular file")


def read_bounded(
    path: str | Path,
    *,
    max_bytes: int,
    what: str = "file",
    error: type[AuditorError] = InputError,
    hint: str | None = None,
    missing: str = "not found",
) -> bytes:
    """The bytes of the regular file at `path`, at most `max_bytes` of them.

    Raises `error` (InputError by default: exit 2) naming the file when it is missing, not a
    regular file (directory, named pipe, device, socket), unreadable, or over `max_bytes`;
    `what` names it in the message ("snapshot file", "public key"), `hint` says which limit
    to raise, `missing` how a missing file is reported. Symlinks are followed: a link to `/dev/zero` is a character device.
    """
    source = str(path)
    try:
        # O_NONBLOCK: opening a named pipe would otherwise wait for a writer, forever
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(f"{what} {missing}", file=source) from None
    except OSError as exc:
        # opening a Unix socket fails with ENXIO: say what it is, not "no such device"
        reason = "is a socket, not a file" if exc.errno == errno.ENXIO else exc.strerror
        raise error(f"cannot read {what}: {reason}", file=source) from None
    try:
        info = os.fstat(fd)
        kind = special_kind(info.st_mode)
        if kind is not None:
            raise error(
                f"{what} is {kind}, not a regular file",
                file=source,
                hint=None if kind == "a directory" else _SPECIAL_HINT,
            )
        if info.st_size > max_bytes:
            raise error(
                f"{what} is {info.st_size} bytes, over the {max_bytes}-byte limit",
                file=source,
                hint=hint,
            )
        with io.FileIO(fd, "rb", closefd=False) as handle:
            content = _read_at_most(handle, expected=info.st_size, limit=max_bytes + 1)
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror}", file=source) from None
    finally:
        os.close(fd)
    if len(content) > max_bytes:
        raise error(
            f"{what} grew past the {max_bytes}-byte limit while it was read",
            file=source,
            hint=hint,
        )
    return content


def _read_at_most(handle: io.FileIO, *, expected: int, limit: int) -> bytes:
    """Up to `limit` bytes: what fstat announced in one read, anything past it in chunks."""
    chunks: list[bytes] = []
    total = 0
    want = min(expected + 1, limit)  # one byte more than fstat said: did the file grow?
    while total < limit:
        chunk = handle.read(want)  # a raw read may return less than asked: loop until EOF
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        want = min(max(_CHUNK, expected + 1 - total), limit - total)
    return b"".join(chunks)


__all__ = ["read_bounded", "special_kind"]

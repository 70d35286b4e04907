"""Files named by a user or Git are read within a limit, and only when they are files."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from auditor.bounded import read_bounded
from auditor.errors import ConfigError, InputError


def test_a_regular_file_within_the_limit_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_bytes(b"x" * 1000)
    assert read_bounded(path, max_bytes=1000) == b"x" * 1000


def test_a_file_over_the_limit_is_refused_by_its_size_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"x" * 1001)
    with pytest.raises(InputError) as caught:
        read_bounded(path, max_bytes=1000, what="snapshot file", hint="raise the limit")
    assert caught.value.file == str(path)
    assert caught.value.message == "snapshot file is 1001 bytes, over the 1000-byte limit"
    assert caught.value.hint == "raise the limit"


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda p: os.mkfifo(p), "a named pipe (FIFO)"),
        (lambda p: p.mkdir(), "a directory"),
        (lambda p: p.symlink_to("/dev/zero"), "a character device"),
    ],
)
def test_what_is_not_a_regular_file_is_refused_by_kind(
    tmp_path: Path, make: object, kind: str
) -> None:
    path = tmp_path / "input.yaml"
    make(path)  # type: ignore[operator]
    with pytest.raises(InputError) as caught:
        read_bounded(path, max_bytes=1 << 30, what="data file")
    assert caught.value.message == f"data file is {kind}, not a regular file"
    assert caught.value.file == str(path)


def test_a_unix_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(InputError, match="socket"):
            read_bounded(path, max_bytes=100)


def test_a_missing_file_and_the_error_class_are_the_callers_to_choose(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        read_bounded(
            tmp_path / "nope.pub",
            max_bytes=100,
            what="public key",
            error=ConfigError,
            missing="does not exist",
        )
    assert caught.value.message == "public key does not exist"

"""A process forked while the webhook serves (its policy worker) keeps none of its network
sockets, so the port closes with the server; its pipes stay open."""

from __future__ import annotations

import multiprocessing
import os
import socket
import stat
from collections.abc import Iterator
from multiprocessing.connection import Connection

import pytest

from auditor.admission.forks import forks_without_sockets


def _report_sockets(conn: Connection, fds: dict[str, int]) -> None:
    """In the child: which of `fds` are still sockets."""
    kept = {}
    for name, fd in fds.items():
        try:
            kept[name] = stat.S_ISSOCK(os.fstat(fd).st_mode)
        except OSError:
            kept[name] = False
    conn.send(kept)


def sockets_in_a_forked_child(fds: dict[str, int]) -> dict[str, bool]:
    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe()  # a Unix socket pair: what a policy worker talks over
    child = context.Process(target=_report_sockets, args=(theirs, fds))
    child.start()
    try:
        assert ours.poll(30), "the forked child did not answer"
        return dict(ours.recv())
    finally:
        child.join(30)
        ours.close()
        theirs.close()


@pytest.fixture
def server_like() -> Iterator[dict[str, int]]:
    """A listening TCP socket, a connection it accepted, and a Unix socket pair."""
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    pipe, other = socket.socketpair()
    yield {
        "listener": listener.fileno(),
        "accepted": accepted.fileno(),
        "pipe": pipe.fileno(),
    }
    for sock in (listener, client, accepted, pipe, other):
        sock.close()


def test_a_child_forked_while_serving_has_no_network_socket_but_keeps_its_pipes(
    server_like: dict[str, int],
) -> None:
    with forks_without_sockets():
        kept = sockets_in_a_forked_child(server_like)
    assert kept == {"listener": False, "accepted": False, "pipe": True}


def test_a_child_forked_when_no_server_runs_keeps_everything(
    server_like: dict[str, int],
) -> None:
    with forks_without_sockets():
        pass
    assert sockets_in_a_forked_child(server_like) == {
        "listener": True,
        "accepted": True,
        "pipe": True,
    }

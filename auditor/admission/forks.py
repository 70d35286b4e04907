"""Processes a server worker forks do not keep the server's network sockets open.

A server worker forks a policy worker from its compiled policies (at startup, and again after
a policy overran its budget), and a forked process holds a copy of every descriptor its parent
had: the listening socket, and the connections accepted so far. The policy worker never
serves, yet while it lives the port stays open in it: after the server worker closed its
listener on shutdown, connections to the port were still accepted by the kernel into the
copy's queue and never answered (a client waits for its timeout instead of being refused and
trying another replica), and a connection the server closed was not closed for the client.
So while a server runs in this process, every process forked from it closes its TCP sockets
first thing; its own pipes (Unix sockets) stay open.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import threading
from collections.abc import Iterator

_NETWORK = (socket.AF_INET, socket.AF_INET6)
_lock = threading.Lock()
_servers = 0  # servers running in this process: the hook does nothing when there are none
_registered = False


def _open_descriptors() -> list[int]:
    for folder in ("/proc/self/fd", "/dev/fd"):
        with contextlib.suppress(OSError):
            return [int(name) for name in os.listdir(folder)]
    return []


def _is_network_socket(fd: int) -> bool:
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return False
        sock = socket.socket(fileno=fd)
    except OSError:
        return False
    try:
        return sock.family in _NETWORK
    finally:
        sock.detach()  # the descriptor is not this object's to close


def _close_network_sockets() -> None:
    """In a process just forked: each TCP socket's descriptor is pointed at /dev/null, which
    closes the socket here and keeps the number taken, so an object inherited from the parent
    that closes it later cannot close whatever would otherwise reuse it."""
    if not _servers:
        return
    network = [fd for fd in _open_descriptors() if _is_network_socket(fd)]
    if not network:
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in network:
            with contextlib.suppress(OSError):
                os.dup2(null, fd)
    finally:
        os.close(null)


@contextlib.contextmanager
def forks_without_sockets() -> Iterator[None]:
    """While a server runs in this process: every process forked from it (by any thread)
    starts without the server's listening socket and connections."""
    global _servers, _registered
    with _lock:
        if not _registered and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_close_network_sockets)
            _registered = True
        _servers += 1
    try:
        yield
    finally:
        with _lock:
            _servers -= 1


__all__ = ["forks_without_sockets"]

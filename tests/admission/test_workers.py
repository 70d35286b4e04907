"""Several workers share the connections: each listens on a socket of its own (SO_REUSEPORT),
so kept-alive connections opened together are spread over the workers rather than all taken
by whichever worker woke first; a worker that dies is replaced on its socket.

Which worker holds which connection is read from Linux's /proc (the sockets each process has
open, and their TCP state), as `ss -tnp` shows it.
"""

from __future__ import annotations

import http.client
import os
import signal
import ssl
import time
from pathlib import Path

from tests.admission.running import Server, TLSFiles
from tests.admission.world import ExampleWorld

CONNECTIONS = 24  # all on one of two sockets by chance: 2 in 2**24
LISTEN, ESTABLISHED = "0A", "01"


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return inodes  # exited meanwhile
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def server_sockets(port: int, state: str) -> set[str]:
    """Inodes of the TCP sockets on local port `port` in `state`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                inodes.add(fields[9])
    return inodes


def workers(server: Server) -> dict[int, set[str]]:
    """Each worker (a child of the supervisor with a listening socket on the port) and the
    inodes of the sockets it has open."""
    listening = server_sockets(server.port, LISTEN)
    held = {pid: socket_inodes(pid) for pid in children(server.process.pid)}
    return {pid: inodes for pid, inodes in held.items() if inodes & listening}


def all_workers(server: Server, count: int = 2) -> dict[int, set[str]]:
    """The workers once `count` of them listen (`Server` is ready when the first is)."""
    deadline = time.monotonic() + 60
    found = workers(server)
    while len(found) < count and time.monotonic() < deadline:
        time.sleep(0.2)
        found = workers(server)
    return found


def connect(server: Server, tls: TLSFiles) -> list[http.client.HTTPSConnection]:
    context = ssl.create_default_context(cafile=str(tls.authority.path))
    connections = []
    for _ in range(CONNECTIONS):
        connection = http.client.HTTPSConnection("127.0.0.1", server.port, context=context)
        connection.request("GET", "/healthz")
        reply = connection.getresponse()
        assert (reply.status, reply.read()) == (200, b"ok\n")
        connections.append(connection)
    return connections


def served_by(server: Server) -> dict[int, int]:
    """How many of the established connections each worker holds."""
    established = server_sockets(server.port, ESTABLISHED)
    return {pid: len(inodes & established) for pid, inodes in workers(server).items()}


def test_connections_are_spread_and_a_dead_worker_is_replaced_on_its_socket(
    world: ExampleWorld, tls: TLSFiles, tmp_path: Path
) -> None:
    server = Server(world.config, tmp_path / "store.db", tls, tmp_path / "server.log", workers=2)
    try:
        before = all_workers(server)
        assert len(before) == 2, before
        # each worker listens on a socket of its own, not on one they share
        (first, second) = before.values()
        assert not (first & second & server_sockets(server.port, LISTEN))
        connections = connect(server, tls)
        counts = served_by(server)
        assert sum(counts.values()) == CONNECTIONS and min(counts.values()) > 0, counts
        for connection in connections:
            connection.close()

        victim = next(iter(before))
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while victim in workers(server) and time.monotonic() < deadline:
            time.sleep(0.2)
        after = all_workers(server)
        assert victim not in after and len(after) == 2, after
        # the replacement took over the dead worker's socket
        (replacement,) = after.keys() - before.keys()
        assert before[victim] & after[replacement] & server_sockets(server.port, LISTEN)
        connections = connect(server, tls)  # answered, whichever socket each lands on
        counts = served_by(server)
        assert min(counts.values()) > 0, counts
        for connection in connections:
            connection.close()
    finally:
        server.stop()

"""Several workers share the connections: each listens on a socket of its own (SO_REUSEPORT),
so kept-alive connections opened together are spread over the workers rather than all taken
by whichever worker woke first; a worker that dies is replaced on its socket, and SIGHUP
replaces every worker in turn, each on its socket, the old ones' decisions stored. The policy
worker each forks holds none of the server's sockets, so the port closes with the server.

Which worker holds which connection is read from Linux's /proc (the sockets each process has
open, and their TCP state), as `ss -tnp` shows it.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.admission.running import Server, TLSFiles
from tests.admission.world import ExampleWorld, llm, review
from tests.conftest import run_main

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


@pytest.fixture
def two_workers(world: ExampleWorld, tls: TLSFiles, tmp_path: Path) -> Iterator[Server]:
    """A server of its own with two workers, its store `tmp_path / "store.db"`."""
    running = Server(world.config, tmp_path / "store.db", tls, tmp_path / "server.log", workers=2)
    try:
        yield running
    finally:
        running.stop()


def test_connections_are_spread_and_a_dead_worker_is_replaced_on_its_socket(
    two_workers: Server, tls: TLSFiles
) -> None:
    server = two_workers
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


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, children first."""
    found: list[int] = []
    try:
        below = children(pid)
    except OSError:
        return found  # exited meanwhile
    for child in below:
        found.append(child)
        found.extend(descendants(child))
    return found


def forked_from(parent: int, pid: int) -> bool:
    """Whether `pid` is `parent` forked (the same program, not one it started with exec)."""
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes()
            == Path(f"/proc/{parent}/cmdline").read_bytes()
        )
    except OSError:
        return False


def alive(pid: int) -> bool:
    """Running: neither gone nor a zombie (dead, its exit status not yet collected)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def port_sockets(port: int) -> set[str]:
    """Inodes of every TCP socket on local port `port`, in any state."""
    return server_sockets(port, LISTEN) | server_sockets(port, ESTABLISHED)


# one worker too: it is not uvicorn's lone server process, which SIGHUP would end at once,
# the decisions still queued for the store lost
@pytest.mark.parametrize("count", [1, 2])
def test_sighup_replaces_each_worker_on_its_socket_and_stores_the_old_ones_decisions(
    count: int,
    world: ExampleWorld,
    tls: TLSFiles,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = tmp_path / "store.db"
    server = Server(world.config, store, tls, tmp_path / "server.log", workers=count)
    try:
        before = all_workers(server, count)
        assert len(before) == count, before
        # decisions the old workers made, queued for the store when SIGHUP arrives
        uids = [server.validate(review(llm()))["uid"] for _ in range(6)]
        server.session.close()  # a kept-alive connection would hold an old worker's shutdown
        os.kill(server.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 120
        after = workers(server)
        while (after.keys() & before.keys() or len(after) < count) and time.monotonic() < deadline:
            time.sleep(0.2)
            after = workers(server)
        assert len(after) == count and not after.keys() & before.keys(), (before, after)
        assert server.process.poll() is None, server.log.read_text()
        # each replacement listens on the socket of a worker it replaced
        listening = server_sockets(server.port, LISTEN)
        assert {frozenset(i & listening) for i in before.values()} == {
            frozenset(i & listening) for i in after.values()
        }
        assert server.validate(review(llm()))["allowed"] is True
    finally:
        assert server.stop() == 0, server.log.read_text()
    result = run_main(capsys, "admission", "decisions", "--store", str(store), "-o", "json")
    assert result.code == 0, result.err
    stored = {row["uid"] for row in json.loads(result.out)["decisions"]}
    assert set(uids) <= stored


def test_policy_workers_hold_none_of_the_servers_sockets_and_the_port_closes_with_it(
    two_workers: Server, tls: TLSFiles
) -> None:
    server = two_workers
    try:
        serving = all_workers(server)
        assert len(serving) == 2, serving
        connections = connect(server, tls)  # accepted connections too, while they are open
        forked = {
            pid: worker
            for worker in serving
            for pid in descendants(worker)
            if forked_from(worker, pid)
        }
        # each server worker forked a policy worker from its compiled policies at startup
        assert set(forked.values()) == set(serving), (serving, forked)
        held = {pid: socket_inodes(pid) & port_sockets(server.port) for pid in forked}
        assert not any(held.values()), held
        for connection in connections:
            connection.close()
        everyone = [server.process.pid, *descendants(server.process.pid)]
    finally:
        assert server.stop() == 0, server.log.read_text()
    assert not server_sockets(server.port, LISTEN)
    deadline = time.monotonic() + 30
    while any(map(alive, everyone)) and time.monotonic() < deadline:
        time.sleep(0.2)  # a helper that exits once the supervisor is gone (its pipe closed)
    assert not [pid for pid in everyone if alive(pid)]

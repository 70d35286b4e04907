"""Several uvicorn workers, each accepting its own share of the connections.

uvicorn's supervisor binds one listening socket that every worker accepts from. The worker
whose event loop wakes first takes every connection waiting (asyncio accepts up to the
backlog in one go), so a client that opens its connections together and keeps them alive, as
the API server does, has them all served by one worker on one core: with 16 kept-alive
connections from bench/admission, all 16 went to one of two workers and the other sat idle.

Here each worker listens on a socket of its own, all bound to the same address with
SO_REUSEPORT: the kernel spreads new connections over the sockets by a hash of the client's
address and port. uvicorn's supervisor still starts, health-checks, restarts and stops the
workers; worker `i` always gets socket `i`, which the parent holds open, so a worker started
in place of one that died (or replaced on SIGHUP) takes over its socket and the connections
queued on it. The number of workers is fixed: SIGTTIN and SIGTTOU, which make uvicorn add or
remove one, are ignored. This overrides the methods of uvicorn's `Multiprocess` that start
workers (checked with uvicorn 0.55; tests/admission/test_workers.py kills a worker and looks
for its replacement on its socket).
"""

from __future__ import annotations

import socket
import sys

from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process, logger


def spreading_supported() -> bool:
    """Linux spreads connections over SO_REUSEPORT sockets; other systems give one socket
    all of them, so there the shared socket stays."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets bound to (host, port) with SO_REUSEPORT, not listening yet (a worker
    listens when it starts serving). Port 0: the others bind the port the first was given."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class SpreadWorkers(Multiprocess):
    """uvicorn's supervisor with worker `i` on `sockets[i]`."""

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets=[])
        self.listeners = sockets
        self.processes_num = len(sockets)

    def _start(self, index: int) -> Process:
        process = Process(self.config, [self.listeners[index]])
        process.start()
        return process

    def init_processes(self) -> None:
        self.processes = [self._start(i) for i in range(self.processes_num)]

    def keep_subprocess_alive(self) -> None:
        # uvicorn's own, but for the socket the replacement is given
        if self.should_exit.is_set():
            return
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung: killed; dead: reaped
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                # it never served: the app, TLS or socket is broken and would stay so
                logger.error(f"Child process [{process.pid}] failed to start, stopping.")
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.info(f"Child process [{process.pid}] died")
            self.processes[index] = self._start(index)

    def restart_all(self) -> None:
        # SIGHUP: each worker replaced in turn, the replacement serving before the old one
        # is stopped (both listen on the same socket meanwhile)
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._start(index)
            ready = new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit)
            if not ready:
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    logger.error(f"Worker [{new.pid}] not ready in time; restart aborted.")
                return
            old.terminate()
            old.join()
            self.processes[index] = new

    def handle_ttin(self) -> None:
        # a worker more would need a socket more, bound while the others serve: not offered
        logger.warning("SIGTTIN ignored: the number of workers is fixed (--workers)")

    def handle_ttou(self) -> None:
        # a worker fewer would leave the connections hashed to its socket unanswered
        logger.warning("SIGTTOU ignored: the number of workers is fixed (--workers)")


__all__ = ["SpreadWorkers", "listeners", "spreading_supported"]

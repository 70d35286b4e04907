"""One example world and one running server for the admission tests (starting one costs
seconds: each worker compiles the policy library and reads Git), shared by every test that
talks to it, the SIGTERM test included."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.admission.running import Server, TLSFiles
from tests.admission.world import ExampleWorld
from tests.provenance.attestation_factory import SigningKey, make_key


@pytest.fixture(autouse=True)
def collected_here() -> None:
    """What earlier tests left in reference cycles (a `pytest.raises` keeps the frames of its
    error, and so any regorus engine among their locals) is collected now, in the thread that
    made it, not by a collection that happens to run in a server's or a client's thread: a
    regorus engine may only be dropped by its own thread ("unsendable")."""
    gc.collect()


@pytest.fixture(scope="session")
def impostor_key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    """A real key the example's trust policy does not know."""
    return make_key(tmp_path_factory.mktemp("impostor"), "p256", "impostor")


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory, impostor_key: SigningKey) -> ExampleWorld:
    return ExampleWorld(tmp_path_factory.mktemp("admission"), impostor_key)


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return TLSFiles(tmp_path_factory.mktemp("tls"))


class RunningServer:
    """The one `auditor admission serve` the webhook tests share, started when first asked
    for and again if a test stopped it (the SIGTERM test, which runs last, does)."""

    def __init__(self, world: ExampleWorld, tls: TLSFiles, log: Path) -> None:
        self.world, self.tls, self.log = world, tls, log
        self._current: Server | None = None

    def running(self) -> Server:
        if self._current is None or self._current.process.poll() is not None:
            self._current = Server(self.world.config, self.world.store, self.tls, self.log)
        return self._current

    def stop(self) -> None:
        if self._current is not None:
            self._current.stop()


@pytest.fixture(scope="session")
def shared_server(
    world: ExampleWorld, tls: TLSFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    holder = RunningServer(world, tls, tmp_path_factory.mktemp("log") / "server.log")
    yield holder
    holder.stop()


@pytest.fixture
def server(shared_server: RunningServer) -> Server:
    return shared_server.running()

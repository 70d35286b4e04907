"""One example world and one running server for the admission tests (starting one costs
seconds: each worker compiles the policy library and reads Git)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.admission.running import Server, TLSFiles
from tests.admission.world import ExampleWorld
from tests.provenance.attestation_factory import SigningKey, make_key


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


@pytest.fixture(scope="session")
def server(
    world: ExampleWorld, tls: TLSFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("log") / "server.log"
    running = Server(world.config, world.store, tls, log)
    yield running
    running.stop()

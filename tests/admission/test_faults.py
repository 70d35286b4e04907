"""Fail closed: what the webhook answers when a decision cannot be made.

The server here is the real one (Starlette on uvicorn, TLS), in a thread of the test process,
so faults can be put into the decider it is handed: a verifier that raises, one that never
returns. A Rego policy that never finishes is a real fault of its own (no injection).
"""

from __future__ import annotations

import dataclasses
import gc
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from auditor.admission.server import create_app
from auditor.admission.tls import reloading_context
from auditor.admit import AttestationSource, Decider, Verified, build_decider
from auditor.config import Config, load_config
from auditor.model import CommitFiles, Resource
from tests.admission.running import TLSFiles, free_port, https_session
from tests.admission.world import ExampleWorld, llm, review

SANDBOX = "ml-sandbox"  # fails open in this module's config


class ThreadServer:
    """uvicorn serving the decider `decider_factory` makes, over TLS, from a thread of the test
    process."""

    def __init__(
        self, decider_factory: Callable[[], Decider], config: Config, tls: TLSFiles
    ) -> None:
        app = create_app(decider_factory, settings=config.admission)
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                ssl_certfile=str(tls.cert),
                ssl_keyfile=str(tls.key),
                ssl_context_factory=reloading_context,
                lifespan="on",
                log_level="warning",
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started and self.thread.is_alive():
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        self.session = https_session(tls)

    def validate(self, document: dict[str, Any]) -> dict[str, Any]:
        reply = self.session.post(
            f"https://127.0.0.1:{self.port}/validate", json=document, timeout=30
        )
        assert reply.status_code == 200, reply.text
        return dict(reply.json()["response"])

    def stop(self) -> None:
        self.session.close()
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture(scope="module")
def fault_world(tmp_path_factory: pytest.TempPathFactory, impostor_key: Any) -> ExampleWorld:
    return ExampleWorld(
        tmp_path_factory.mktemp("faults"),
        impostor_key,
        timeout_seconds=0.5,
        fail_open_namespaces=[SANDBOX],
    )


@pytest.fixture
def serve(
    fault_world: ExampleWorld, tls: TLSFiles
) -> Iterator[Callable[[Callable[[Resource, CommitFiles], Verified]], ThreadServer]]:
    started: list[tuple[ThreadServer, Decider]] = []

    def start(verify: Callable[[Resource, CommitFiles], Verified]) -> ThreadServer:
        config = load_config(fault_world.config)
        attestations = AttestationSource(config)
        attestations.refresh()
        decider = Decider(config, policies=None, attestations=attestations, verify=verify)
        server = ThreadServer(lambda: decider, config, tls)
        started.append((server, decider))
        return server

    yield start
    for server, _ in started:
        server.stop()


def in_namespace(body: dict[str, Any], namespace: str) -> dict[str, Any]:
    body["metadata"]["namespace"] = namespace
    return body


def raising(resource: Resource, files: CommitFiles) -> Verified:
    raise RuntimeError("the verifier broke")


def test_verifier_exception_denies_with_the_reason(serve: Any) -> None:
    server = serve(raising)
    response = server.validate(review(llm()))
    assert response["allowed"] is False
    message = response["status"]["message"]
    assert "Deployment ml-prod/llm-server" in message
    assert "internal error: RuntimeError: the verifier broke" in message
    assert "denied (fail closed)" in message


def test_verification_over_the_time_budget_denies(serve: Any) -> None:
    release = threading.Event()

    def stuck(resource: Resource, files: CommitFiles) -> Verified:
        release.wait(60)
        raise RuntimeError("released")

    server = serve(stuck)
    try:
        response = server.validate(review(llm()))
        assert response["allowed"] is False
        assert "did not finish within the time budget of 0.5 s" in response["status"]["message"]
        # the server still answers while that verification hangs on
        sandbox = server.validate(review(in_namespace(llm(), SANDBOX)))
        assert sandbox["allowed"] is True
    finally:
        release.set()


def test_fail_open_namespace_is_allowed_with_a_warning_and_others_still_fail_closed(
    serve: Any,
) -> None:
    server = serve(raising)
    response = server.validate(review(in_namespace(llm(), SANDBOX)))
    assert response["allowed"] is True
    (warning,) = response["warnings"]
    assert "could not decide" in warning
    assert f"namespace {SANDBOX} fails open" in warning
    assert server.validate(review(in_namespace(llm(), "ml-staging")))["allowed"] is False


def test_a_decision_that_cannot_finish_is_not_cached(serve: Any) -> None:
    calls = []

    def flaky(resource: Resource, files: CommitFiles) -> Verified:
        calls.append(resource.ref.name)
        raise RuntimeError("the verifier broke")

    server = serve(flaky)
    for _ in range(2):
        assert server.validate(review(llm()))["allowed"] is False
    assert calls == ["llm-server", "llm-server"]


def decide_once(config: Config, tls: TLSFiles) -> dict[str, Any]:
    """The response of a server with a decider made in this thread to one review."""
    decider = build_decider(config)
    server = ThreadServer(lambda: decider, config, tls)
    try:
        return server.validate(review(llm()))
    finally:
        server.stop()


def test_policy_that_never_finishes_denies(
    fault_world: ExampleWorld, tmp_path: Path, tls: TLSFiles
) -> None:
    endless = tmp_path / "endless.rego"
    endless.write_text(
        "package tests.endless\n\nimport rego.v1\n\n"
        "deny contains msg if {\n"
        # 10^10 products: CPU for hours, memory for none (a range of 10^11 numbers would be
        # refused at once, over the worker's memory allowance)
        "\tsome i in numbers.range(1, 100000)\n"
        "\tsome j in numbers.range(1, 100000)\n"
        "\ti * j == -1\n"
        '\tmsg := "unreachable"\n}\n'
    )
    config = load_config(fault_world.config)
    policy = dataclasses.replace(config.policy, paths=(str(endless),), timeout_seconds=0.5)
    config = dataclasses.replace(
        config, policy=policy, admission=dataclasses.replace(config.admission, timeout_seconds=5)
    )
    response = decide_once(config, tls)
    assert response["allowed"] is False
    message = response["status"]["message"]
    assert "tests.endless: policy error" in message
    assert "time budget" in message


def test_the_server_releases_its_decider_when_it_stops(
    fault_world: ExampleWorld, tls: TLSFiles
) -> None:
    # The decider holds the compiled policies: a regorus engine, which may only be freed by
    # the thread that made it (else "regoruspy::Engine is unsendable, but is being dropped
    # on another thread"). The server makes it in its event loop's thread and lets go of it
    # there when it stops; kept until the garbage collector found it (the app is full of
    # reference cycles), it was freed by whichever thread the collector ran in.
    config = load_config(fault_world.config)
    made: list[weakref.ref[Decider]] = []

    def factory() -> Decider:
        decider = build_decider(config)
        made.append(weakref.ref(decider))
        return decider

    gc.disable()  # only references decide when it is freed
    try:
        server = ThreadServer(factory, config, tls)
        try:
            assert server.validate(review(llm()))["allowed"] is True
        finally:
            server.stop()
        assert made and made[0]() is None
    finally:
        gc.enable()

"""`auditor admission serve` as a real process on 127.0.0.1, and an HTTPS client for it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from tests.admission.tlsfiles import Authority, issue, make_authority
from tests.gitrepo import _ENV

START_SECONDS = 90  # two workers each compile the policy library and read Git, on a busy box


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TLSFiles:
    """A CA, and the server certificate/key files it signs (re-issued by `rotate`)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.authority: Authority = make_authority(directory)
        self.cert, self.key = directory / "tls.crt", directory / "tls.key"
        self.serial = issue(self.authority, self.cert, self.key, serial=1000)

    def rotate(self) -> int:
        self.serial = issue(self.authority, self.cert, self.key, serial=self.serial + 1)
        return self.serial


def https_session(tls: TLSFiles) -> requests.Session:
    """A client that trusts the test CA and nothing else (the environment's CA bundle
    variables would take precedence over `verify` in requests: not read)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(tls.authority.path)
    return session


class Server:
    """One `auditor admission serve` process; `session` talks HTTPS to it, trusting the CA."""

    def __init__(
        self, config: Path, store: Path, tls: TLSFiles, log: Path, *, workers: int = 2
    ) -> None:
        self.port = free_port()
        self.base = f"https://127.0.0.1:{self.port}"
        self.tls = tls
        self.log = log
        args = [
            sys.executable, "-m", "auditor", "admission", "serve",
            "--config", str(config), "--store", str(store),
            "--tls-cert", str(tls.cert), "--tls-key", str(tls.key),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
        ]  # fmt: skip
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **_ENV}
            )
        self.session = https_session(tls)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()  # never leave a server behind a failed start
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()}")
            # a probe of its own each time: a connection made before the workers accept would
            # otherwise stay open in the pool and hold the server's graceful shutdown
            try:
                with https_session(self.tls) as probe:
                    if probe.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                        return
            except requests.exceptions.SSLError:
                raise
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server did not get ready: {self.log.read_text()}")

    def validate(self, review: dict[str, Any]) -> dict[str, Any]:
        """The AdmissionReview response of a review, HTTP 200 required."""
        reply = self.session.post(f"{self.base}/validate", json=review, timeout=30)
        assert reply.status_code == 200, reply.text
        document = reply.json()
        assert document["apiVersion"] == "admission.k8s.io/v1"
        assert document["kind"] == "AdmissionReview"
        return dict(document["response"])

    def post_raw(self, body: bytes, content_type: str = "application/json") -> requests.Response:
        return self.session.post(
            f"{self.base}/validate", data=body, headers={"content-type": content_type}, timeout=30
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.session.close()  # a kept-alive connection would hold the graceful shutdown
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def denial(response: dict[str, Any]) -> str:
    """The 403 message of a denial (asserting it is one)."""
    assert response["allowed"] is False, json.dumps(response)
    assert response["status"]["code"] == 403
    return str(response["status"]["message"])

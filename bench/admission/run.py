"""Admission webhook latency: a real HTTPS client against `auditor admission serve`.

    .venv/bin/python bench/admission/run.py [--rates 50,200] [--seconds 10] [--workers 2]
                                            [--variants cached,new_objects,uncached]

Builds the bundled example as the admission tests do (tests/admission/world.py: examples/ in
a Git repository of its own), starts two servers on 127.0.0.1 with real TLS (2 uvicorn
workers each): one as configured (verification and policy caches on), one with
`admission.cache_size: 0` (every request verifies the model's signature over its files and
evaluates every policy). At each rate, open loop for `--seconds`: requests are sent on a fixed
schedule by client threads with kept-alive connections (`http.client`, opened before the
schedule starts, as the API server keeps its connections to a webhook open), each carrying a fresh
AdmissionReview (new uid) for the example's signed LLM Deployment (allowed). Three variants:
`cached` (the same object each time: verdicts from the caches), `new_objects` (a label of its
own on every object: policies evaluated each time, the model's verification cached) and
`uncached` (caches off: on every request the model's files are hashed, its signature verified and
every policy evaluated). What `uncached` still reuses is what is memoised by content: the check of
the provenance envelope's signature and the SLSA statement's schema validation (about 2 ms of CPU
a decision on the 2-core bench machine), as for a model verified again once its verdict's TTL is
over; a model never seen before pays those too. The same server's
`/healthz` at the same rate is the baseline: what TLS, HTTP and the event loop cost without a
decision. Every answer is checked (HTTP 200, uid echoed, allowed). Prints one JSON object.

Targets on 2 cores: cached p99 < 10 ms and within 3x of /healthz's p99; uncached p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import copy
import http.client
import json
import os
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.admission.running import Server, TLSFiles  # noqa: E402
from tests.admission.world import ExampleWorld, llm, review  # noqa: E402
from tests.provenance.attestation_factory import make_key  # noqa: E402

CLIENT_THREADS = 16


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Client(threading.Thread):
    """Sends the requests scheduled for it (every n-th), on one kept-alive connection, opened
    (TCP and TLS handshake) before the schedule starts, as the API server's connections to a
    webhook are open long before any one review: no request's latency includes a handshake
    unless the connection broke and had to be made again."""

    def __init__(self, server: Server, path: str, bodies: list[bytes]):
        super().__init__(daemon=True)
        self.server, self.path, self.bodies = server, path, bodies
        self.slots: list[float] = []
        self.latencies: list[float] = []
        self.late: list[float] = []  # how far behind schedule each request went out
        self.errors: list[str] = []
        self.connection = self._connection()

    def _connection(self) -> http.client.HTTPSConnection:
        context = ssl.create_default_context(cafile=str(self.server.tls.authority.path))
        connection = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=context)
        connection.connect()
        return connection

    def run(self) -> None:
        connection = self.connection
        for slot, body in zip(self.slots, self.bodies, strict=True):
            pause = slot - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            started = time.perf_counter()
            self.late.append(max(0.0, started - slot))
            try:
                if body:
                    headers = {"content-type": "application/json"}
                    connection.request("POST", self.path, body=body, headers=headers)
                else:
                    connection.request("GET", self.path)
                reply = connection.getresponse()
                data = reply.read()
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(repr(exc))
                connection.close()
                connection = self._connection()
                continue
            self.latencies.append((time.perf_counter() - started) * 1000)
            self._check(reply.status, data, body)
        connection.close()

    def _check(self, status: int, data: bytes, body: bytes) -> None:
        if status != 200:
            self.errors.append(f"HTTP {status}: {data[:200]!r}")
        elif body:
            response = json.loads(data)["response"]
            sent = json.loads(body)["request"]["uid"]
            if response["uid"] != sent or response["allowed"] is not True:
                self.errors.append(f"unexpected answer: {data[:300]!r}")


def body(base: dict[str, Any], index: int, distinct: bool) -> bytes:
    """A review of `base`; with `distinct`, an object no request sent before (a label of its
    own), so no policy result is cached for it (the model's verification still may be)."""
    if distinct:
        base = copy.deepcopy(base)
        base["metadata"].setdefault("labels", {})["bench/request"] = str(index)
    return json.dumps(review(base)).encode()


def load(
    server: Server, path: str, rate: float, seconds: float, *, distinct: bool = False
) -> dict[str, Any]:
    """Open loop at `rate` requests/s for `seconds`; latency percentiles in ms."""
    count = int(rate * seconds)
    base = llm()
    bodies = [body(base, i, distinct) if path == "/validate" else b"" for i in range(count)]
    clients = [
        Client(server, path, bodies[i::CLIENT_THREADS]) for i in range(CLIENT_THREADS)
    ]  # connected: the schedule starts once every connection is open and every body ready
    start = time.perf_counter() + 0.5
    slots = [start + i / rate for i in range(count)]
    for i, client in enumerate(clients):
        client.slots = slots[i::CLIENT_THREADS]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    latencies = [x for c in clients for x in c.latencies]
    late = [x for c in clients for x in c.late]
    errors = [e for c in clients for e in c.errors]
    return {
        "requests": count,
        "answered": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "mean_ms": round(statistics.fmean(latencies), 2),
        "max_ms": round(max(latencies), 2),
        "sent_late_p99_ms": round(percentile(late, 0.99) * 1000, 2),
    }


def start(world: ExampleWorld, tmp: Path, name: str, workers: int) -> Server:
    return Server(
        world.config, tmp / f"{name}.db", TLSFiles(tmp / f"tls-{name}"), tmp / f"{name}.log",
        workers=workers,
    )  # fmt: skip


def measure(
    server: Server, rates: list[float], seconds: float, kind: str, *, distinct: bool = False
) -> list[dict[str, Any]]:
    load(server, "/validate", 20, 1)  # warm: connections, caches, the policy worker
    rows = []
    for rate in rates:
        validate = load(server, "/validate", rate, seconds, distinct=distinct)
        healthz = load(server, "/healthz", rate, seconds)
        rows.append(
            {
                "variant": kind,
                "rate": rate,
                "validate": validate,
                "healthz": healthz,
                "p99_ratio_to_healthz": round(validate["p99_ms"] / healthz["p99_ms"], 2),
                "load_average": [round(x, 2) for x in os.getloadavg()],
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,200")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--variants", default="cached,new_objects,uncached")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    variants = set(args.variants.split(","))
    load_at_start = os.getloadavg()
    os.environ.setdefault("GIT_CONFIG_GLOBAL", os.devnull)
    with tempfile.TemporaryDirectory(prefix="auditor-bench-admission-") as name:
        tmp = Path(name)
        key = make_key(tmp / "keys", "p256", "impostor")
        cached_world = ExampleWorld(tmp / "cached", key)
        uncached_world = ExampleWorld(tmp / "uncached", key, cache_size=0)
        rows = []
        if variants & {"cached", "new_objects"}:
            server = start(cached_world, tmp, "cached", args.workers)
            try:
                if "cached" in variants:
                    rows += measure(server, rates, args.seconds, "cached")
                if "new_objects" in variants:
                    rows += measure(server, rates, args.seconds, "new_objects", distinct=True)
            finally:
                server.stop()
        if "uncached" in variants:
            server = start(uncached_world, tmp, "uncached", args.workers)
            try:
                rows += measure(server, rates, args.seconds, "uncached")
            finally:
                server.stop()
    print(
        json.dumps(
            {
                "cpus": os.cpu_count(),
                "load_average_at_start": load_at_start,
                "load_average": os.getloadavg(),
                "workers": args.workers,
                "seconds": args.seconds,
                "results": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

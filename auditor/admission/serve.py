"""Running the webhook: uvicorn over TLS, one or several worker processes.

uvicorn starts each worker from an import string (`APP`, a factory), so every worker builds
its own decider: policies compiled once per worker, its own Git reader, its own cache. Where
the system spreads connections over sockets bound to one address (Linux), each worker listens
on a socket of its own (`workers.py`: kept-alive connections would otherwise pile onto one
worker), under a supervisor even when there is one worker: SIGHUP then replaces it gracefully
and a worker that dies is replaced, whatever `--workers` says. With several workers the
Prometheus values of all of them are kept in one folder (PROMETHEUS_MULTIPROC_DIR) so
`/metrics` adds them up; the folder is made here, before the workers start, unless one is
given.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE, logger

from auditor.admission.tls import reloading_context
from auditor.admission.workers import SpreadWorkers, listeners, spreading_supported

# The factory each worker calls; it reads its settings from the environment.
APP = "auditor.admit:create_app"
# In-flight requests get this long to finish on SIGTERM before the worker exits; the
# Deployment's terminationGracePeriodSeconds leaves room for it and the store flush.
GRACEFUL_SHUTDOWN_SECONDS = 10


def serve(
    *,
    host: str,
    port: int,
    certfile: str,
    keyfile: str,
    workers: int,
    environment: dict[str, str],
    log_level: str = "warning",
) -> None:
    """Serves until SIGTERM/SIGINT. `environment` is what the app factory reads."""
    os.environ.update(environment)
    own_metrics_dir = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        own_metrics_dir = tempfile.mkdtemp(prefix="auditor-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_metrics_dir
    settings: dict[str, Any] = dict(
        factory=True,
        host=host,
        port=port,
        workers=workers,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        ssl_context_factory=reloading_context,
        lifespan="on",
        access_log=False,
        log_level=log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        server_header=False,
    )
    try:
        if spreading_supported():
            # what uvicorn.run does for several workers, with a socket per worker; for one
            # too: uvicorn's lone server process would end at once on SIGHUP (queued decisions
            # lost) and stay dead after a crash, where the supervisor replaces its worker
            config = uvicorn.Config(APP, **settings)
            try:
                sockets = listeners(host, port, workers)
            except OSError as exc:  # as uvicorn.run answers an address it cannot bind
                logger.error(exc)
                sys.exit(STARTUP_FAILURE)
            SpreadWorkers(config, sockets).run()
        else:
            uvicorn.run(APP, **settings)
    finally:
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)


__all__ = ["APP", "serve"]

"""The webhook's HTTP side: `POST /validate`, `/healthz`, `/readyz`, `/metrics` (Starlette).

The decision itself is a callable handed in (`auditor.admit.Decider`, built per worker by the
factory the server was given); this module only reads reviews, keeps the time budget, fails
closed, answers, and queues the decision for the store:

- a body over `max_body_bytes` is refused with 413 before it is all read; one that is not an
  AdmissionReview v1 with 400; neither reaches the decider, and the server keeps serving;
- the decider runs in a thread pool, so a slow verification never holds the event loop; one
  that does not finish within `admission.timeout_seconds`, or raises, is a denial naming why
  (`error`), or an allowance with a warning in a namespace configured to fail open;
- every decision is queued for the store (`DecisionWriter`), never waited for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Protocol

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from auditor.admission import metrics
from auditor.admission.forks import forks_without_sockets
from auditor.admission.review import ReviewError, parse_review, review_response
from auditor.admission.writer import DecisionWriter, Sink
from auditor.config import AdmissionSettings
from auditor.errors import AuditorError
from auditor.model import AdmissionDecision, AdmissionRequest, DecisionReason

log = logging.getLogger(__name__)

# Decisions made at once per worker: verification is mostly hashing and signature checks in
# C, so a few threads keep a core busy; more would only queue on the Git reader's lock.
DECIDING_THREADS = 4
ERROR_CHECK = "admission.error"


class Decider(Protocol):
    def __call__(self, request: AdmissionRequest) -> AdmissionDecision: ...

    @property
    def ready(self) -> tuple[bool, str]: ...

    def close(self) -> None: ...


class TooLarge(Exception):
    pass


@dataclasses.dataclass
class _State:
    settings: AdmissionSettings
    decider: Decider | None = None
    executor: ThreadPoolExecutor | None = None
    writer: DecisionWriter | None = None


def failed(
    request: AdmissionRequest, why: str, settings: AdmissionSettings, commit: str = ""
) -> AdmissionDecision:
    """The decision when none could be made: denied (fail closed), unless the request's
    namespace is one that `admission.fail_open_namespaces` lets through."""
    namespace = request.namespace
    if namespace and any(fnmatch.fnmatchcase(namespace, p) for p in settings.fail_open_namespaces):
        warning = f"auditor could not decide ({why}); allowed: namespace {namespace} fails open"
        return AdmissionDecision(request, "fail_open", warnings=(warning,), commit=commit)
    return AdmissionDecision(
        request,
        "error",
        (DecisionReason(ERROR_CHECK, f"{why}: denied (fail closed)"),),
        commit=commit,
    )


async def _body(request: Request, limit: int) -> bytes:
    """The body, refused past `limit` bytes, from the declared length or while streaming."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


async def _decide(state: _State, review: AdmissionRequest) -> AdmissionDecision:
    decider, executor = state.decider, state.executor
    assert decider is not None and executor is not None
    # A verdict the caches hold is answered here, on the event loop (well under a ms): no
    # hop to a thread, no wait behind verifications in progress.
    quick = getattr(decider, "cached", None)
    if quick is not None:
        try:
            found = quick(review)
        except Exception:  # whatever went wrong is met again, and handled, on the full path
            found = None
        if found is not None:
            return found  # type: ignore[no-any-return]
    budget = state.settings.timeout_seconds
    future = asyncio.get_running_loop().run_in_executor(executor, decider, review)
    try:
        return await asyncio.wait_for(future, budget)
    except TimeoutError:
        metrics.ERRORS.labels("timeout").inc()
        why = f"the decision did not finish within the time budget of {budget:g} s"
        log.warning("admission: %s: %s", review.display(), why)
        return failed(review, why, state.settings)
    except Exception as exc:
        metrics.ERRORS.labels("internal").inc()
        if isinstance(exc, AuditorError):
            why = f"verification could not finish: {exc.diagnostics()}"
        else:
            why = f"internal error: {type(exc).__name__}: {exc}"
            log.exception("admission: %s: internal error", review.display())
        return failed(review, why, state.settings)


def _bad(status: int, message: str, kind: str) -> JSONResponse:
    metrics.ERRORS.labels(kind).inc()
    return JSONResponse({"error": message}, status_code=status)


def _routes(state: _State) -> list[Route]:
    async def validate(request: Request) -> Response:
        started = time.perf_counter()
        try:
            body = await _body(request, state.settings.max_body_bytes)
        except TooLarge:
            limit = state.settings.max_body_bytes
            return _bad(
                413, f"the body is larger than admission.max_body_bytes ({limit})", "too_large"
            )
        except ClientDisconnect:
            return Response(status_code=400)
        try:
            review = parse_review(body)
        except ReviewError as exc:
            return _bad(400, str(exc), "bad_request")
        decision = await _decide(state, review)
        decision = dataclasses.replace(
            decision,
            latency_ms=(time.perf_counter() - started) * 1000,
            time=datetime.now(UTC),
        )
        metrics.observe(decision)
        if state.writer is not None:
            state.writer.submit(decision)
        return JSONResponse(review_response(decision))

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        if state.decider is None:
            return PlainTextResponse("starting\n", status_code=503)
        ready, why = state.decider.ready
        return PlainTextResponse("ok\n" if ready else f"{why}\n", status_code=200 if ready else 503)

    async def metrics_page(request: Request) -> Response:
        text, content_type = metrics.exposition()
        return Response(text, media_type=content_type)

    return [
        Route("/validate", validate, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
    ]


def create_app(
    decider_factory: Callable[[], Decider],
    *,
    settings: AdmissionSettings,
    sink_factory: Callable[[], Sink] | None = None,
) -> Starlette:
    """The ASGI app. `decider_factory` runs at startup (policies compiled, Git read: a worker
    that cannot do so never reports ready); `sink_factory` makes the store writer's sink in
    its own thread (None: decisions are not stored)."""
    state = _State(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # from here on, a process this one forks (the decider's policy worker) does not
        # keep the server's socket open
        with forks_without_sockets():
            state.decider = decider_factory()
            state.executor = ThreadPoolExecutor(
                DECIDING_THREADS, thread_name_prefix="auditor-decide"
            )
            if sink_factory is not None:
                state.writer = DecisionWriter(
                    sink_factory,
                    capacity=settings.queue_size,
                    on_error=lambda kind, n: metrics.ERRORS.labels(kind).inc(n),
                )
            try:
                yield
            finally:
                # SIGTERM: uvicorn stops accepting, finishes the requests in flight, then here
                # every decision still queued is written before the worker exits
                if state.writer is not None:
                    state.writer.close()
                state.executor.shutdown(wait=False, cancel_futures=True)
                state.decider.close()
                # let go of the decider here, in the thread that made it: its compiled
                # policies (a regorus engine) may only be freed by that thread, and the app
                # (full of reference cycles) would otherwise keep it until the garbage
                # collector frees it from whichever thread it runs in
                state.decider = state.executor = state.writer = None

    app = Starlette(routes=_routes(state), lifespan=lifespan)
    app.state.auditor = state
    return app


__all__ = ["ERROR_CHECK", "Decider", "create_app", "failed"]

"""GET from the API server: the raw body under a size cap, failures named, retries counted.

The `kubernetes` client authenticates and pools connections; the request and the reading of
the body are ours. Bodies are fetched raw for `json.loads`, because the client's model
deserialisation costs far more than the decoding itself and would lose fields its models do
not know (every custom resource field).
"""

from __future__ import annotations

import http.client
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from auditor.config import Limits

log = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try before a read becomes a `StageError`.

    Transient failures (5xx, timeouts, dropped or truncated responses) are retried
    `transient_retries` times. 429 is retried `throttle_retries` times, waiting what Retry-After
    asks, but never more than `max_retry_after_seconds` at once or `throttle_budget_seconds` in
    all for one request: an audit must finish even against a struggling API server.
    """

    transient_retries: int = 1
    transient_backoff_seconds: float = 0.2
    throttle_retries: int = 3
    max_retry_after_seconds: float = 2.0
    throttle_budget_seconds: float = 5.0


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP reply, its body read in full."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class TransportError(Exception):
    """No usable HTTP reply: `label` and `detail` become the StageError's words."""

    def __init__(self, label: str, detail: str, *, transient: bool = True) -> None:
        super().__init__(f"{label}: {detail}")
        self.label = label
        self.detail = detail
        self.transient = transient


class Failure(Exception):
    """A read that failed for good, retries spent."""

    def __init__(self, label: str, detail: str = "") -> None:
        super().__init__(f"{label}: {detail}")
        self.label = label
        self.detail = detail


class Unauthorized(Failure):
    """401: the credentials are rejected, so every further request would be too."""


class Transport:
    """GET with the client's auth and connection pool; the body read raw and size-capped."""

    def __init__(self, api_client: ApiClient, limits: Limits) -> None:
        self._api = api_client
        self._timeout = limits.request_timeout_seconds
        self._max_bytes = limits.max_response_bytes

    def get(self, path: str, query: Sequence[tuple[str, Any]] = ()) -> Reply:
        """One GET, no retries: a reply of any status, or `TransportError`."""
        method, url, headers, _, _ = self._api.param_serialize(
            "GET",
            path,
            query_params=list(query) or None,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        raw = None
        try:
            response = self._api.call_api(
                method, url, header_params=headers, _request_timeout=self._timeout
            )
            raw = response.response
            body = self._read_body(raw)
            raw.release_conn()
            raw = None
            return Reply(status=response.status, headers=dict(response.headers), body=body)
        except TransportError:
            raise
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            raise self._classify(exc) from None
        except ApiException as exc:  # the client turns TLS failures into status 0
            raise TransportError("connection error", str(exc.reason).strip()) from None
        finally:
            if raw is not None:  # a body not read to its end: the connection cannot be reused
                raw.close()

    def _read_body(self, raw: urllib3.BaseHTTPResponse) -> bytes:
        declared = raw.headers.get("Content-Length")
        if declared is not None and declared.isdigit():
            if int(declared) > self._max_bytes:
                raise self._too_large(int(declared))
            return raw.read()
        # chunked (large lists stream this way): accumulate under the cap
        chunks: list[bytes] = []
        size = 0
        for chunk in raw.stream(_CHUNK_BYTES):
            size += len(chunk)
            if size > self._max_bytes:
                raise self._too_large(size, at_least=True)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, size: int, *, at_least: bool = False) -> TransportError:
        amount = f"{'over ' if at_least else ''}{size} bytes"
        return TransportError(
            "response too large",
            f"{amount} is over limits.max_response_bytes ({self._max_bytes}); "
            "lower limits.page_size or raise the limit",
            transient=False,
        )

    def _classify(self, exc: BaseException) -> TransportError:
        causes = list(_causes(exc))
        for cause in causes:
            if isinstance(cause, urllib3.exceptions.IncompleteRead):
                return _truncated(cause.partial, cause.expected)
            if isinstance(cause, http.client.IncompleteRead):
                return _truncated(len(cause.partial), cause.expected)
        for cause in causes:
            # before timeouts: urllib3's NewConnectionError subclasses ConnectTimeoutError
            if isinstance(cause, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
                return TransportError("connection error", f"cannot connect: {_last_words(cause)}")
        for cause in causes:
            if isinstance(cause, urllib3.exceptions.TimeoutError | TimeoutError):
                return TransportError("timeout", f"no response within {self._timeout:g}s")
        for cause in causes:
            if isinstance(
                cause,
                http.client.RemoteDisconnected | ConnectionResetError | ConnectionAbortedError,
            ):
                return TransportError(
                    "connection closed", "the API server closed the connection without a response"
                )
        return TransportError("connection error", _last_words(exc))


def _truncated(received: int, missing: int | None) -> TransportError:
    if missing is None:
        return TransportError("truncated response", f"the body ended after {received} bytes")
    return TransportError(
        "truncated response",
        f"the body ended after {received} of {received + missing} bytes",
    )


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, the errors it wraps in its args, and its chained causes."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend(a for a in current.args if isinstance(a, BaseException))
        for linked in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(linked, BaseException):
                pending.append(linked)


def _last_words(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    # urllib3 prefixes its messages with the connection object's repr
    return text.split(": ", 1)[1] if text.startswith("<") and ": " in text else text


class Client:
    """GET with the retry policy: returns any reply but 401, 429 and 5xx, or raises `Failure`."""

    def __init__(self, transport: Transport, retry: RetryPolicy) -> None:
        self._transport = transport
        self._retry = retry

    def get(self, path: str, query: Sequence[tuple[str, Any]] = ()) -> Reply:
        """The reply once it is neither transient nor throttled; `Unauthorized` on 401."""
        attempts = 0
        throttled = 0
        waited = 0.0
        while True:
            attempts += 1
            try:
                reply = self._transport.get(path, query)
            except TransportError as exc:
                if exc.transient and attempts <= self._retry.transient_retries:
                    log.debug("GET %s: %s; retrying", path, exc)
                    time.sleep(self._retry.transient_backoff_seconds)
                    continue
                raise Failure(exc.label, exc.detail + _attempts(attempts)) from None
            if reply.status == 401:
                raise Unauthorized("unauthorized", status_text(reply))
            if reply.status == 429:
                attempts -= 1  # throttling has its own budget
                wait = min(_retry_after(reply), self._retry.max_retry_after_seconds)
                if (
                    throttled < self._retry.throttle_retries
                    and waited + wait <= self._retry.throttle_budget_seconds
                ):
                    throttled += 1
                    waited += wait
                    log.debug("GET %s: 429, waiting %.2fs as Retry-After asks", path, wait)
                    time.sleep(wait)
                    continue
                raise Failure(
                    "throttled",
                    f"{status_text(reply)} (still throttled after {throttled} retries "
                    f"honouring Retry-After)",
                )
            if reply.status >= 500:
                if attempts <= self._retry.transient_retries:
                    log.debug("GET %s: HTTP %d; retrying", path, reply.status)
                    time.sleep(self._retry.transient_backoff_seconds)
                    continue
                raise Failure("server error", status_text(reply) + _attempts(attempts))
            return reply


def _attempts(count: int) -> str:
    return f" ({count} attempts)" if count > 1 else ""


def _retry_after(reply: Reply) -> float:
    value = next((v for k, v in reply.headers.items() if k.lower() == "retry-after"), None)
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass  # an HTTP date: the API server never sends one; fall through
    try:
        details = json.loads(reply.body).get("details") or {}
        return max(0.0, float(details.get("retryAfterSeconds", 1)))
    except (ValueError, AttributeError, TypeError):
        return 1.0


def status_label(status: int) -> str:
    """The first words of a StageError for an HTTP status: `forbidden`, `HTTP 418`."""
    return {
        400: "bad request",
        401: "unauthorized",
        403: "forbidden",
        404: "not found",
        410: "gone",
    }.get(status, f"HTTP {status}")


def status_text(reply: Reply) -> str:
    """`HTTP 500 InternalError: Internal error occurred: ...` from a Status body or plain text."""
    try:
        body = json.loads(reply.body)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        reason = body.get("reason") or ""
        message = body.get("message") or ""
        head = f"HTTP {reply.status} {reason}".rstrip()
        return f"{head}: {message}" if message else head
    text = reply.body[:200].decode("utf-8", "replace").strip()
    return f"HTTP {reply.status}: {text}" if text else f"HTTP {reply.status}"


def decode(reply: Reply) -> dict[str, Any]:
    """The reply's body as a JSON object, or `Failure` saying why it is not one."""
    try:
        doc = json.loads(reply.body)
    except (ValueError, RecursionError) as exc:
        raise Failure("invalid response", f"the body is not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise Failure("invalid response", f"expected a JSON object, got {type(doc).__name__}")
    return doc

"""Reading the live cluster: discovery, then paginated lists of the kinds and namespaces in scope.

The `kubernetes` client connects and authenticates (kubeconfig contexts, exec plugins, in-cluster
service accounts); everything above the transport is ours. Responses are fetched raw and decoded
with `json.loads`, because the client's model deserialisation costs far more than the decoding
itself and would lose fields its models do not know (every custom resource field).

Nothing that goes wrong while reading is raised: it becomes a `StageError` naming exactly what
could not be read (`inferenceservices.serving.kserve.io in ml`), and reading carries on with
the other kinds, so the run is `incomplete` and says what is missing. Only a kubeconfig that
cannot be used at all raises `ConfigError`.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import urllib3
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.kube_config import KUBE_CONFIG_DEFAULT_LOCATION, KubeConfigMerger

from auditor.config import ClusterSource, Limits
from auditor.errors import ConfigError, InputError
from auditor.model import ClusterInfo, Resource, ResourceRef, StageError
from auditor.objects import to_resource
from auditor.scope import KindSelector, Scope

log = logging.getLogger(__name__)

STAGE = "live"
_CHUNK_BYTES = 1 << 20
_GLOB_CHARS = frozenset("*?[")


Unread = tuple[str | None, str | None, str | None]


@dataclass(frozen=True, slots=True)
class LiveRead:
    """What one cluster read produced: objects in scope, identity, and what could not be read."""

    resources: tuple[Resource, ...]
    info: ClusterInfo
    errors: tuple[StageError, ...]
    # (group, kind) -> namespaced, for every kind discovery described
    namespaced: Mapping[tuple[str, str], bool] = field(
        default_factory=dict, compare=False, hash=False
    )
    # What could not be read, as (group, kind, namespace) with None for "all": desired objects
    # there are unknown, not missing.
    unread: frozenset[Unread] = frozenset()

    def was_read(self, ref: ResourceRef) -> bool:
        """False when a failed read could have held this object."""
        return not any(
            (g is None or g == ref.group)
            and (k is None or k == ref.kind)
            and (ns is None or ns == ref.namespace)
            for g, k, ns in self.unread
        )


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
class ApiResource:
    """A listable resource as discovery describes it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`inferenceservices.serving.kserve.io`, `configmaps`: as kubectl and RBAC name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else "/api/v1"
        if namespace:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"


def read_cluster(
    source: ClusterSource,
    scope: Scope,
    *,
    limits: Limits,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> LiveRead:
    """Reads every object of the kinds and namespaces in `scope` from the cluster of `source`.

    Raises `ConfigError` when the kubeconfig (or in-cluster configuration) cannot be used;
    every other failure is returned in `LiveRead.errors`. Secret values are redacted before
    any `Resource` exists.
    """
    api_client, context = connect(source)
    try:
        reader = _Reader(api_client, source, limits, retry)
        return reader.read(scope, context)
    finally:
        api_client.close()


def connect(source: ClusterSource) -> tuple[ApiClient, str]:
    """An `ApiClient` for the source and the context it uses; global client state is untouched."""
    # type.__call__ bypasses the metaclass older clients use to copy the global default.
    configuration: Configuration = type.__call__(Configuration)
    # urllib3 would otherwise retry dropped connections and timeouts silently, three times;
    # retries are ours, counted and reported.
    configuration.retries = False
    if source.in_cluster:
        try:
            kube_config.load_incluster_config(client_configuration=configuration)
        except ConfigException as exc:
            raise ConfigError(
                f"cluster {source.name}: in-cluster configuration is unusable: {exc}",
                key="in_cluster",
                hint="in_cluster works only inside a pod with a service account token",
            ) from None
        return ApiClient(configuration=configuration), "in-cluster"
    path = os.path.expanduser(source.kubeconfig) if source.kubeconfig else None
    shown = path or os.environ.get("KUBECONFIG") or "~/.kube/config"
    if path is not None and not os.path.isfile(path):
        raise ConfigError(f"cluster {source.name}: kubeconfig file not found", file=path)
    try:
        # the library's own reader, so KUBECONFIG lists merge exactly as they will be loaded
        merged = KubeConfigMerger(path or KUBE_CONFIG_DEFAULT_LOCATION).config
    except Exception as exc:
        # it raises whatever its parsing hits (ConfigException, YAML errors, KeyError, ...)
        raise ConfigError(
            f"cluster {source.name}: kubeconfig is unusable: {exc}", file=shown
        ) from None
    document = getattr(merged, "value", None)
    if not isinstance(document, dict):
        raise ConfigError(f"cluster {source.name}: no kubeconfig found", file=shown)
    entries = [getattr(c, "value", c) for c in document.get("contexts") or ()]  # ConfigNodes
    names = [str(e["name"]) for e in entries if isinstance(e, dict) and e.get("name")]
    context = source.context or document.get("current-context")
    if not context:
        raise ConfigError(
            f"cluster {source.name}: the kubeconfig has no current-context",
            file=shown,
            hint="name one with `context:` in auditor.yaml or --context",
        )
    if context not in names:
        raise ConfigError(
            f"cluster {source.name}: context {context!r} not found in the kubeconfig "
            f"(it has: {', '.join(names) or 'none'})",
            file=shown,
            key="context",
        )
    try:
        api_client = kube_config.new_client_from_config(
            config_file=path,
            context=context,
            # a refreshed token must not be written back into the user's kubeconfig
            persist_config=False,
            client_configuration=configuration,
        )
    except Exception as exc:
        # exec plugins and auth providers run here; any failure means no usable credentials
        raise ConfigError(
            f"cluster {source.name}: context {context!r} is unusable: {exc}", file=shown
        ) from None
    return api_client, context


# transport


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


class _TransportError(Exception):
    """No usable HTTP reply: `label` and `detail` become the StageError's words."""

    def __init__(self, label: str, detail: str, *, transient: bool = True) -> None:
        super().__init__(f"{label}: {detail}")
        self.label = label
        self.detail = detail
        self.transient = transient


class _Failure(Exception):
    """A read that failed for good, retries spent."""

    def __init__(self, label: str, detail: str = "") -> None:
        super().__init__(f"{label}: {detail}")
        self.label = label
        self.detail = detail


class _Unauthorized(_Failure):
    """401: the credentials are rejected, so every further request would be too."""


class _Transport:
    """GET with the client's auth and connection pool; the body read raw and size-capped."""

    def __init__(self, api_client: ApiClient, limits: Limits) -> None:
        self._api = api_client
        self._timeout = limits.request_timeout_seconds
        self._max_bytes = limits.max_response_bytes

    def get(self, path: str, query: Sequence[tuple[str, Any]] = ()) -> _Reply:
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
            return _Reply(status=response.status, headers=dict(response.headers), body=body)
        except _TransportError:
            raise
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            raise self._classify(exc) from None
        except ApiException as exc:  # the client turns TLS failures into status 0
            raise _TransportError("connection error", str(exc.reason).strip()) from None
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

    def _too_large(self, size: int, *, at_least: bool = False) -> _TransportError:
        amount = f"{'over ' if at_least else ''}{size} bytes"
        return _TransportError(
            "response too large",
            f"{amount} is over limits.max_response_bytes ({self._max_bytes}); "
            "lower limits.page_size or raise the limit",
            transient=False,
        )

    def _classify(self, exc: BaseException) -> _TransportError:
        causes = list(_causes(exc))
        for cause in causes:
            if isinstance(cause, urllib3.exceptions.IncompleteRead):
                return _truncated(cause.partial, cause.expected)
            if isinstance(cause, http.client.IncompleteRead):
                return _truncated(len(cause.partial), cause.expected)
        for cause in causes:
            # before timeouts: urllib3's NewConnectionError subclasses ConnectTimeoutError
            if isinstance(cause, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
                return _TransportError("connection error", f"cannot connect: {_last_words(cause)}")
        for cause in causes:
            if isinstance(cause, urllib3.exceptions.TimeoutError | TimeoutError):
                return _TransportError("timeout", f"no response within {self._timeout:g}s")
        for cause in causes:
            if isinstance(
                cause,
                http.client.RemoteDisconnected | ConnectionResetError | ConnectionAbortedError,
            ):
                return _TransportError(
                    "connection closed", "the API server closed the connection without a response"
                )
        return _TransportError("connection error", _last_words(exc))


def _truncated(received: int, missing: int | None) -> _TransportError:
    if missing is None:
        return _TransportError("truncated response", f"the body ended after {received} bytes")
    return _TransportError(
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


def _status_text(reply: _Reply) -> str:
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


def _retry_after(reply: _Reply) -> float:
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


class _Client:
    """GET with the retry policy: returns any reply but 401, 429 and 5xx, or raises `_Failure`."""

    def __init__(self, transport: _Transport, retry: RetryPolicy) -> None:
        self._transport = transport
        self._retry = retry

    def get(self, path: str, query: Sequence[tuple[str, Any]] = ()) -> _Reply:
        attempts = 0
        throttled = 0
        waited = 0.0
        while True:
            attempts += 1
            try:
                reply = self._transport.get(path, query)
            except _TransportError as exc:
                if exc.transient and attempts <= self._retry.transient_retries:
                    log.debug("GET %s: %s; retrying", path, exc)
                    time.sleep(self._retry.transient_backoff_seconds)
                    continue
                raise _Failure(exc.label, exc.detail + _attempts(attempts)) from None
            if reply.status == 401:
                raise _Unauthorized("unauthorized", _status_text(reply))
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
                raise _Failure(
                    "throttled",
                    f"{_status_text(reply)} (still throttled after {throttled} retries "
                    f"honouring Retry-After)",
                )
            if reply.status >= 500:
                if attempts <= self._retry.transient_retries:
                    log.debug("GET %s: HTTP %d; retrying", path, reply.status)
                    time.sleep(self._retry.transient_backoff_seconds)
                    continue
                raise _Failure("server error", _status_text(reply) + _attempts(attempts))
            return reply


def _attempts(count: int) -> str:
    return f" ({count} attempts)" if count > 1 else ""


def _decode(reply: _Reply) -> dict[str, Any]:
    try:
        doc = json.loads(reply.body)
    except (ValueError, RecursionError) as exc:
        raise _Failure("invalid response", f"the body is not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise _Failure("invalid response", f"expected a JSON object, got {type(doc).__name__}")
    return doc


# discovery


@dataclass
class _Discovery:
    resources: dict[tuple[str, str], ApiResource] = field(default_factory=dict)
    namespaced: dict[tuple[str, str], bool] = field(default_factory=dict)
    served_versions: dict[str, list[str]] = field(default_factory=dict)  # group -> versions

    def learn(self, group: str, version: str, doc: Mapping[str, Any]) -> None:
        """Records a group version's APIResourceList; an earlier (preferred) version wins."""
        for entry in doc.get("resources") or ():
            if not isinstance(entry, dict):
                continue
            name, kind = entry.get("name"), entry.get("kind")
            if not isinstance(name, str) or not isinstance(kind, str) or "/" in name:
                continue  # subresources (deployments/scale) are not objects to list
            namespaced = bool(entry.get("namespaced"))
            self.namespaced.setdefault((group, kind), namespaced)
            if "list" not in (entry.get("verbs") or ()):
                continue  # create-only virtual resources (bindings, tokenreviews)
            self.resources.setdefault(
                (group, kind),
                ApiResource(
                    group=group, version=version, kind=kind, plural=name, namespaced=namespaced
                ),
            )


def _serves(doc: Mapping[str, Any], plural: str) -> bool:
    return any(isinstance(e, dict) and e.get("name") == plural for e in doc.get("resources") or ())


# reading


class _Reader:
    def __init__(
        self, api_client: ApiClient, source: ClusterSource, limits: Limits, retry: RetryPolicy
    ) -> None:
        self._api = api_client
        self._source = source
        self._limits = limits
        self._transport = _Transport(api_client, limits)
        self._client = _Client(self._transport, retry)
        self._errors: list[StageError] = []
        self._unread: set[Unread] = set()

    @property
    def host(self) -> str:
        return str(self._api.configuration.host)

    def _error(
        self, failure: _Failure, action: str, target: str, unread: Unread = (None, None, None)
    ) -> None:
        self._unread.add(unread)
        detail = f": {failure.detail}" if failure.detail else ""
        message = f"{failure.label}: cannot {action}{detail}"
        log.warning("cluster %s: %s", self._source.name, message)
        self._errors.append(
            StageError(stage=STAGE, message=message, target=target, cluster=self._source.name)
        )

    def read(self, scope: Scope, context: str) -> LiveRead:
        info = ClusterInfo(name=self._source.name, server=self.host, context=context)
        resources: list[Resource] = []
        namespaced: Mapping[tuple[str, str], bool] = {}
        try:
            discovery = self._discover(scope.kinds)
            namespaced = discovery.namespaced
            info = self._identity(info)
            for rtype in self._select(scope, discovery):
                resources.extend(self._read_kind(rtype, scope))
        except _Unauthorized as exc:
            self._unread.add((None, None, None))
            self._errors.append(
                StageError(
                    stage=STAGE,
                    message=(
                        f"unauthorized: the API server at {self.host} rejected the credentials "
                        f"of context {context} ({exc.detail})"
                    ),
                    target="cluster",
                    cluster=self._source.name,
                )
            )
        except _RootDiscoveryFailed:
            pass  # recorded; without core discovery nothing else can be trusted
        return LiveRead(
            resources=tuple(resources),
            info=info,
            errors=tuple(self._errors),
            namespaced=dict(namespaced),
            unread=frozenset(self._unread),
        )

    def _identity(self, info: ClusterInfo) -> ClusterInfo:
        """Version and kube-system uid: nice to record, never a reason to fail a read."""
        version = uid = ""
        try:
            reply = self._transport.get("/version")
            if reply.status == 200:
                version = str(json.loads(reply.body).get("gitVersion") or "")
        except (_TransportError, ValueError, AttributeError) as exc:
            log.debug("cluster %s: no version: %s", self._source.name, exc)
        try:
            reply = self._transport.get("/api/v1/namespaces/kube-system")
            if reply.status == 200:
                uid = str((json.loads(reply.body).get("metadata") or {}).get("uid") or "")
        except (_TransportError, ValueError, AttributeError) as exc:
            log.debug("cluster %s: no kube-system uid: %s", self._source.name, exc)
        return ClusterInfo(
            name=info.name, server=info.server, context=info.context, uid=uid, version=version
        )

    def _get_doc(self, path: str) -> dict[str, Any]:
        reply = self._client.get(path)
        if reply.status != 200:
            raise _Failure(_status_label(reply.status), _status_text(reply))
        return _decode(reply)

    def _discover(self, selectors: Sequence[KindSelector]) -> _Discovery:
        discovery = _Discovery()
        try:
            core_versions = self._get_doc("/api").get("versions") or ["v1"]
        except _Unauthorized:
            raise
        except _Failure as exc:
            self._error(exc, f"read discovery from the API server at {self.host}", "discovery")
            raise _RootDiscoveryFailed from None
        if "v1" in core_versions:
            self._discover_version(discovery, "", "v1", "/api/v1")
        groups = {s.group for s in selectors}
        if groups <= {""}:
            return discovery  # only core kinds in scope: the group list is not needed
        try:
            group_list = self._get_doc("/apis").get("groups") or []
        except _Unauthorized:
            raise
        except _Failure as exc:
            self._error(exc, "list the API groups", "discovery")
            return discovery
        for entry in group_list:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                continue
            group = entry["name"]
            if None not in groups and group not in groups:
                continue  # no kind in scope can live in this group
            discovery.served_versions[group] = _versions_preferred_first(entry)
            for version in _versions_preferred_first(entry):
                wanted = [s for s in selectors if s.group in (None, group)]
                if all((group, s.kind) in discovery.resources for s in wanted):
                    break  # every kind in scope this group could serve is found
                self._discover_version(discovery, group, version, f"/apis/{group}/{version}")
        return discovery

    def _discover_version(self, discovery: _Discovery, group: str, version: str, path: str) -> None:
        try:
            doc = self._get_doc(path)
        except _Unauthorized:
            raise
        except _Failure as exc:
            name = f"API group {group}" if group else "the core API"
            self._error(
                exc,
                f"read discovery of {name} ({path})",
                f"API group {group or 'core'}",
                (group, None, None),
            )
            return
        discovery.learn(group, version, doc)

    def _select(self, scope: Scope, discovery: _Discovery) -> list[ApiResource]:
        """The served resources each selector names, each once, in selector order, at the
        version Git declares when the cluster serves it (else the preferred one)."""
        chosen: dict[tuple[str, str], ApiResource] = {}
        for selector in scope.kinds:
            found = [
                rtype
                for (group, kind), rtype in discovery.resources.items()
                if selector.matches(group, kind)
            ]
            if not found:
                # not an error: its desired objects will be reported missing, which is the truth
                log.debug("cluster %s: %s is not served", self._source.name, selector)
            for rtype in found:
                wanted = scope.version_for(rtype.group, rtype.kind)
                if wanted and wanted in discovery.served_versions.get(rtype.group, ()):
                    rtype = dataclasses.replace(rtype, version=wanted)
                chosen.setdefault((rtype.group, rtype.kind), rtype)
        return list(chosen.values())

    def _read_kind(self, rtype: ApiResource, scope: Scope) -> list[Resource]:
        if (rtype.group, rtype.kind) == ("", "Namespace"):
            # a Namespace object belongs to the namespace it names: kube-system's is not in a
            # scope of ("ml",), or every run would report it unmanaged
            namespaces = self._read_list(rtype, None, None)
            return [r for r in namespaces if scope.includes_namespace(r.ref.name)]
        if not rtype.namespaced:
            return self._read_list(rtype, None, None)
        namespaces_to_list = _namespaces_to_list(scope)
        if namespaces_to_list is None:  # every namespace, or patterns: list once and filter
            return self._read_list(rtype, None, scope)
        out: list[Resource] = []
        for namespace in namespaces_to_list:
            out.extend(self._read_list(rtype, namespace, None))
        return out

    def _read_list(
        self, rtype: ApiResource, namespace: str | None, filter_scope: Scope | None
    ) -> list[Resource]:
        """One kind in one namespace (or cluster-wide), all pages, or nothing and an error.

        A partial list would make the objects not read look deleted, so a failure keeps none.
        """
        if namespace:
            where, target = f"in namespace {namespace}", f"{rtype.qualified} in {namespace}"
        elif rtype.namespaced:
            where, target = "in all namespaces", f"{rtype.qualified} in all namespaces"
        else:
            where, target = "at the cluster scope", rtype.qualified
        action = f"list {rtype.qualified} {where}"
        try:
            items = self._list_items(rtype, namespace)
        except _Unauthorized:
            raise
        except _Failure as exc:
            self._error(exc, action, target, (rtype.group, rtype.kind, namespace))
            return []
        except _NoLongerServed:
            log.debug("cluster %s: %s is no longer served", self._source.name, rtype.qualified)
            return []
        return self._to_resources(rtype, items, filter_scope, action, target)

    def _list_items(self, rtype: ApiResource, namespace: str | None) -> list[Any]:
        path = rtype.path(namespace)
        for attempt in (1, 2):
            items: list[Any] = []
            token: str | None = None
            seen_tokens: set[str] = set()
            while True:
                query: list[tuple[str, Any]] = [("limit", self._limits.page_size)]
                if token:
                    query.append(("continue", token))
                reply = self._client.get(path, query)
                if reply.status == 410 and token:
                    if attempt == 1:
                        # the snapshot the token pointed at was compacted away: start over
                        log.debug("GET %s: continue token expired; relisting", path)
                        break
                    raise _Failure(
                        "expired",
                        "the continue token expired (410 Gone) again after a fresh relist",
                    )
                if reply.status == 403:
                    raise _Failure("forbidden")
                if reply.status == 404:
                    if not self._still_served(rtype):
                        raise _NoLongerServed
                    raise _Failure(
                        "not found", f"{_status_text(reply)}, though discovery serves it"
                    )
                if reply.status != 200:
                    raise _Failure(_status_label(reply.status), _status_text(reply))
                doc = _decode(reply)
                page = doc.get("items")
                if page is None:
                    page = []
                if not isinstance(page, list):
                    raise _Failure("invalid response", "`items` is not a list")
                items.extend(page)
                metadata = doc.get("metadata")
                token = metadata.get("continue") if isinstance(metadata, dict) else None
                if not token:
                    return items
                if token in seen_tokens:
                    raise _Failure("invalid response", "the server repeated a continue token")
                seen_tokens.add(token)
        raise AssertionError("unreachable")  # pragma: no cover

    def _still_served(self, rtype: ApiResource) -> bool:
        """After a 404 on a list: was the resource removed (a CRD deleted) since discovery?"""
        base = f"/apis/{rtype.group}/{rtype.version}" if rtype.group else "/api/v1"
        try:
            reply = self._client.get(base)
        except _Unauthorized:
            raise
        except _Failure:
            return True  # cannot tell: report the 404
        if reply.status == 404:
            return False
        try:
            return reply.status != 200 or _serves(_decode(reply), rtype.plural)
        except _Failure:
            return True

    def _to_resources(
        self,
        rtype: ApiResource,
        items: list[Any],
        filter_scope: Scope | None,
        action: str,
        target: str,
    ) -> list[Resource]:
        out: list[Resource] = []
        bad = 0
        origin = self._source.name
        where = f"{self.host}{rtype.path(None)}"  # names the list in an InputError
        for item in items:
            if not isinstance(item, dict):
                bad += 1
                continue
            if filter_scope is not None:
                metadata = item.get("metadata")
                namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
                if not isinstance(namespace, str) or not filter_scope.includes_namespace(namespace):
                    continue
            # list items carry no apiVersion/kind on built-in types; the list's type is theirs
            body = {**item, "apiVersion": rtype.api_version, "kind": rtype.kind}
            try:
                out.append(
                    to_resource(
                        body,
                        source=where,
                        line=0,
                        side="live",
                        cluster=origin,
                        origin=origin,
                    )
                )
            except InputError as exc:
                bad += 1
                log.debug("cluster %s: skipping an object: %s", origin, exc.message)
        if bad:
            self._error(
                _Failure("invalid response", f"{bad} item(s) are not objects with a name"),
                action,
                target,
                (rtype.group, rtype.kind, None),
            )
        return out


class _RootDiscoveryFailed(Exception):
    """`/api` could not be read: the API server is unreachable or not one."""


class _NoLongerServed(Exception):
    """A list 404'd and discovery no longer lists the resource: nothing to read, no error."""


def _status_label(status: int) -> str:
    return {
        400: "bad request",
        401: "unauthorized",
        403: "forbidden",
        404: "not found",
        410: "gone",
    }.get(status, f"HTTP {status}")


def _versions_preferred_first(group: Mapping[str, Any]) -> list[str]:
    versions = [
        v["version"]
        for v in group.get("versions") or ()
        if isinstance(v, dict) and isinstance(v.get("version"), str)
    ]
    preferred = (group.get("preferredVersion") or {}).get("version")
    if preferred in versions:
        versions.remove(preferred)
        versions.insert(0, preferred)
    return versions


def _namespaces_to_list(scope: Scope) -> tuple[str, ...] | None:
    """Literal namespaces to list one by one, or None to list all namespaces and filter.

    Per-namespace lists need only namespaced RBAC, which is what an auditor usually has.
    """
    if scope.namespaces is None or any(_GLOB_CHARS & set(ns) for ns in scope.namespaces):
        return None
    return tuple(ns for ns in dict.fromkeys(scope.namespaces) if scope.includes_namespace(ns))

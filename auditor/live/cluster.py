"""Reading the live cluster: discovery, then paginated lists of the kinds and namespaces in scope.

Nothing that goes wrong while reading is raised: it becomes a `StageError` naming exactly what
could not be read (`inferenceservices.serving.kserve.io in ml`), and reading carries on with
the other kinds, so the run is `incomplete` and says what is missing. Only a kubeconfig that
cannot be used at all raises `ConfigError`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kubernetes.client import ApiClient

from auditor.config import ClusterSource, Limits
from auditor.errors import InputError
from auditor.live.connect import connect, identify
from auditor.live.discovery import (
    ApiResource,
    RootDiscoveryFailed,
    discover,
    select,
    still_served,
)
from auditor.live.transport import (
    DEFAULT_RETRY,
    Client,
    Failure,
    RetryPolicy,
    Transport,
    Unauthorized,
    decode,
    status_label,
    status_text,
)
from auditor.model import ClusterInfo, LiveRead, Resource, StageError, Unread
from auditor.objects import to_resource
from auditor.scope import Scope

__all__ = ["read_cluster"]

log = logging.getLogger(__name__)

STAGE = "live"


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


class _NoLongerServed(Exception):
    """A list 404'd and discovery no longer lists the resource: nothing to read, no error."""


class _Reader:
    def __init__(
        self, api_client: ApiClient, source: ClusterSource, limits: Limits, retry: RetryPolicy
    ) -> None:
        self._api = api_client
        self._source = source
        self._limits = limits
        self._transport = Transport(api_client, limits)
        self._client = Client(self._transport, retry)
        self._errors: list[StageError] = []
        self._unread: set[Unread] = set()

    @property
    def host(self) -> str:
        return str(self._api.configuration.host)

    def _error(
        self, failure: Failure, action: str, target: str, unread: Unread = (None, None, None)
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
            discovery = discover(self._client, scope.kinds, host=self.host, report=self._error)
            namespaced = discovery.namespaced
            info = identify(self._transport, info)
            for rtype in select(discovery, scope, cluster=self._source.name):
                resources.extend(self._read_kind(rtype, scope))
        except Unauthorized as exc:
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
        except RootDiscoveryFailed:
            pass  # recorded; without core discovery nothing else can be trusted
        return LiveRead(
            resources=tuple(resources),
            info=info,
            errors=tuple(self._errors),
            namespaced=dict(namespaced),
            unread=frozenset(self._unread),
        )

    def _read_kind(self, rtype: ApiResource, scope: Scope) -> list[Resource]:
        if (rtype.group, rtype.kind) == ("", "Namespace"):
            # a Namespace object belongs to the namespace it names: kube-system's is not in a
            # scope of ("ml",), or every run would report it unmanaged
            namespaces = self._read_list(rtype, None, None)
            return [r for r in namespaces if scope.includes_namespace(r.ref.name)]
        if not rtype.namespaced:
            return self._read_list(rtype, None, None)
        namespaces_to_list = scope.namespaces_to_list()
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
        except Unauthorized:
            raise
        except Failure as exc:
            self._error(exc, action, target, (rtype.group, rtype.kind, namespace))
            return []
        except _NoLongerServed:
            log.debug("cluster %s: %s is no longer served", self._source.name, rtype.qualified)
            return []
        log.info("cluster %s: %s: %d objects", self._source.name, action, len(items))
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
                    raise Failure(
                        "expired",
                        "the continue token expired (410 Gone) again after a fresh relist",
                    )
                if reply.status == 403:
                    raise Failure("forbidden")
                if reply.status == 404:
                    if not still_served(self._client, rtype):
                        raise _NoLongerServed
                    raise Failure("not found", f"{status_text(reply)}, though discovery serves it")
                if reply.status != 200:
                    raise Failure(status_label(reply.status), status_text(reply))
                doc = decode(reply)
                page = doc.get("items")
                if page is None:
                    page = []
                if not isinstance(page, list):
                    raise Failure("invalid response", "`items` is not a list")
                items.extend(page)
                metadata = doc.get("metadata")
                token = metadata.get("continue") if isinstance(metadata, dict) else None
                if not token:
                    return items
                if token in seen_tokens:
                    raise Failure("invalid response", "the server repeated a continue token")
                seen_tokens.add(token)
        raise AssertionError("unreachable")  # pragma: no cover

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
                Failure("invalid response", f"{bad} item(s) are not objects with a name"),
                action,
                target,
                (rtype.group, rtype.kind, None),
            )
        return out

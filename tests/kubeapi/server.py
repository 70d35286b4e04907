"""A Kubernetes API server for tests: real discovery, lists, pagination, Status errors, faults.

It speaks the wire format of kube-apiserver closely enough that the unmodified `kubernetes`
client works against it, so live-reading code is tested end to end instead of against mocks
of the client. Only reads are served (GET); objects are put in place with `add()`.

    with KubeAPIServer() as server:
        server.add({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {...}})
        server.inject(Fault(status=403, plural="secrets", namespace="ml"))
        server.deny(Denial(resource="secrets"))  # RBAC: 403s, and SelfSubjectAccessReview says no
        server.write_kubeconfig(tmp_path / "kubeconfig")
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
import socket
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

import yaml

from tests.kubeapi.registry import BUILTIN_TYPES, PREFERRED_VERSIONS, ResourceType
from tests.kubeapi.selectors import SelectorError, field_selector, label_selector
from tests.loopback import LoopbackHandler, LoopbackServer

DEFAULT_USER = "system:serviceaccount:auditor:auditor"
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
EXPIRED_MESSAGE = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter."
)
VERSION_INFO = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.4",
    "gitCommit": "a78aa47129b8539636eb86a9d00e31b2720fe06b",
    "gitTreeState": "clean",
    "buildDate": "2024-12-10T18:51:20Z",
    "goVersion": "go1.22.9",
    "compiler": "gc",
    "platform": "linux/amd64",
}
REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
NOT_FOUND_MESSAGE = "the server could not find the requested resource"
SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


class Request(NamedTuple):
    """One request the server received: `(method, path, query)`."""

    method: str
    path: str
    query: dict[str, str]


@dataclass
class Fault:
    """A misbehaviour to inject, for requests matching every matcher that is set.

    Matchers: `path` (a regex searched in the URL path), `plural`, `group`, `namespace` ("" means
    a cluster-wide request), `method`. Effects, in order: `latency` seconds of delay, then one of
    `drop` (close without answering), `truncate` (announce the full length, send half),
    `expire_continue_on_page` (410 Expired for page N, N >= 2, of a paginated list) or `status`
    (that code with a real Status body). `skip`: let that many matching requests through first;
    `times`: then apply it that many times, None for always.
    """

    status: int | None = None
    path: str | None = None
    plural: str | None = None
    group: str | None = None
    namespace: str | None = None
    method: str | None = "GET"
    message: str | None = None
    retry_after: int = 1
    latency: float = 0.0
    drop: bool = False
    truncate: bool = False
    expire_continue_on_page: int | None = None
    skip: int = 0
    times: int | None = None
    applied: int = field(default=0, init=False)
    skipped: int = field(default=0, init=False)

    def exhausted(self) -> bool:
        return self.times is not None and self.applied >= self.times


@dataclass(frozen=True)
class Denial:
    """Access the server's user lacks, as RBAC would leave it out: matching requests are
    forbidden (403 with kube-apiserver's message) and a SelfSubjectAccessReview asking about it
    answers `allowed: false`. A matcher left None matches anything; `namespace=""` matches
    cluster-wide requests only."""

    resource: str | None = None
    group: str | None = None
    namespace: str | None = None
    verbs: tuple[str, ...] | None = None

    def covers(self, verb: str, group: str, resource: str, namespace: str) -> bool:
        return (
            (self.verbs is None or verb in self.verbs)
            and (self.group is None or self.group == group)
            and (self.resource is None or self.resource == resource)
            and (self.namespace is None or self.namespace == namespace)
        )


@dataclass(frozen=True)
class _Target:
    """What a resource URL names."""

    rtype: ResourceType
    namespace: str  # "" when the URL has no namespace
    name: str | None
    subresource: str | None

    @property
    def verb(self) -> str:
        return "get" if self.name else "list"


def status_body(
    code: int, message: str, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A metav1.Status as kube-apiserver encodes it (empty fields omitted)."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or REASONS.get(code, ""),
    }
    if details:
        body["details"] = dict(details)
    body["code"] = code
    return body


def _resource_details(target: _Target) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if target.name:
        details["name"] = target.name
    if target.rtype.group:
        details["group"] = target.rtype.group
    details["kind"] = target.rtype.plural
    return details


class _HTTPError(Exception):
    def __init__(
        self, code: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(code)
        self.code = code
        self.body = body
        self.headers = dict(headers or {})


class _PageNotFound(Exception):
    """A path no handler serves: answered like the Go mux, in plain text."""


class KubeAPIServer(LoopbackServer):
    """The test API server. Thread-safe; objects and faults may change while it serves."""

    def __init__(
        self,
        *,
        token: str | None = None,
        user: str = DEFAULT_USER,
        types: Iterable[ResourceType] = BUILTIN_TYPES,
        namespaces: Iterable[str] = DEFAULT_NAMESPACES,
        version: Mapping[str, str] | None = None,
    ) -> None:
        self.token = token
        self.user = user
        self.version = dict(version or VERSION_INFO)
        self.requests: list[Request] = []
        self._types: list[ResourceType] = []
        self._objects: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self._faults: list[Fault] = []
        self._denials: list[Denial] = []
        self._revision = 1
        self._compacted = 0
        self._lock = threading.RLock()
        super().__init__()
        for rtype in types:
            self.register(rtype)
        for name in namespaces:
            self.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    # lifecycle

    def handler_class(self) -> type[LoopbackHandler]:
        return _Handler

    def write_kubeconfig(
        self,
        path: str | Path,
        context: str = "test",
        token: str | None = None,
        namespace: str = "default",
    ) -> Path:
        """A kubeconfig whose `context` (also the current one) points at this server.

        `token` defaults to the server's own, so pass a different one to test rejection.
        """
        user: dict[str, Any] = {}
        if (token or self.token) is not None:
            user["token"] = token if token is not None else self.token
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": f"{context}-cluster", "cluster": {"server": self.url}}],
            "users": [{"name": f"{context}-user", "user": user}],
            "contexts": [
                {
                    "name": context,
                    "context": {
                        "cluster": f"{context}-cluster",
                        "user": f"{context}-user",
                        "namespace": namespace,
                    },
                }
            ],
            "current-context": context,
        }
        target = Path(path)
        target.write_text(yaml.safe_dump(doc, sort_keys=False))
        return target

    # types and objects

    def register(self, rtype: ResourceType) -> None:
        """Serves another type (a CRD, say) from now on."""
        with self._lock:
            self._types = [
                t
                for t in self._types
                if (t.group, t.version, t.plural) != (rtype.group, rtype.version, rtype.plural)
            ]
            self._types.append(rtype)
            self._objects.setdefault((rtype.group, rtype.plural), {})

    def resource_type(self, api_version: str, kind: str) -> ResourceType:
        group, _, version = api_version.rpartition("/")
        with self._lock:
            candidates = [t for t in self._types if t.group == group and t.kind == kind]
        for rtype in candidates:
            if rtype.version == version:
                return rtype
        if candidates:  # another version of a served kind: stored once, served at every version
            return candidates[0]
        raise ValueError(f"the test server does not serve {kind} in {api_version!r}")

    def add(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Stores (or replaces) an object with server-side metadata filled in; returns a copy."""
        rtype = self.resource_type(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        stored = copy.deepcopy(dict(obj))
        metadata = stored.setdefault("metadata", {})
        if not metadata.get("name"):
            raise ValueError(f"{rtype.kind} has no metadata.name")
        if rtype.namespaced:
            metadata.setdefault("namespace", "default")
        else:
            metadata.pop("namespace", None)  # the API server clears it on cluster-scoped kinds
        with self._lock:
            self._revision += 1
            metadata.setdefault("uid", str(uuid.uuid4()))
            metadata.setdefault(
                "creationTimestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            )
            metadata["resourceVersion"] = str(self._revision)
            if "spec" in stored:
                metadata.setdefault("generation", 1)
            key = (metadata.get("namespace", ""), metadata["name"])
            self._objects[(rtype.group, rtype.plural)][key] = stored
        return copy.deepcopy(stored)

    def add_all(self, objs: Iterable[Mapping[str, Any]]) -> None:
        for obj in objs:
            self.add(obj)

    def remove(self, api_version: str, kind: str, name: str, namespace: str = "") -> bool:
        rtype = self.resource_type(api_version, kind)
        with self._lock:
            removed = self._objects[(rtype.group, rtype.plural)].pop(
                (namespace if rtype.namespaced else "", name), None
            )
            if removed is not None:
                self._revision += 1
        return removed is not None

    def get(self, api_version: str, kind: str, name: str, namespace: str = "") -> dict[str, Any]:
        rtype = self.resource_type(api_version, kind)
        with self._lock:
            obj = self._objects[(rtype.group, rtype.plural)][
                (namespace if rtype.namespaced else "", name)
            ]
            return copy.deepcopy(obj)

    def compact(self) -> None:
        """Like an etcd compaction: continue tokens issued before now expire (410)."""
        with self._lock:
            self._revision += 1
            self._compacted = self._revision

    # faults and request log

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def deny(self, denial: Denial) -> Denial:
        with self._lock:
            self._denials.append(denial)
        return denial

    def allows(self, verb: str, group: str, resource: str, namespace: str = "") -> bool:
        """What the authorizer answers for the server's user."""
        with self._lock:
            return not any(d.covers(verb, group, resource, namespace) for d in self._denials)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def list_requests(self, plural: str, namespace: str | None = None) -> list[Request]:
        """Requests that listed `plural` (in `namespace`, "" for cluster-wide, None for any)."""
        out = []
        for request in list(self.requests):
            target = self._parse_quietly(request.path)
            if target is None or target.name or target.rtype.plural != plural:
                continue
            if namespace is None or target.namespace == namespace:
                out.append(request)
        return out

    # request handling (called from handler threads)

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _authorized(self, header: str | None) -> bool:
        return self.token is None or header == f"Bearer {self.token}"

    def _find_fault(self, request: Request, target: _Target | None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.exhausted() or not self._fault_matches(fault, request, target):
                    continue
                if fault.skipped < fault.skip:
                    fault.skipped += 1
                    continue
                fault.applied += 1
                return fault
        return None

    def _fault_matches(self, fault: Fault, request: Request, target: _Target | None) -> bool:
        if fault.method is not None and fault.method != request.method:
            return False
        if fault.path is not None and not re.search(fault.path, request.path):
            return False
        if fault.plural is not None or fault.group is not None or fault.namespace is not None:
            if target is None:
                return False
            if fault.plural is not None and fault.plural != target.rtype.plural:
                return False
            if fault.group is not None and fault.group != target.rtype.group:
                return False
            if fault.namespace is not None and fault.namespace != target.namespace:
                return False
        if fault.expire_continue_on_page is not None:
            token = request.query.get("continue")
            if not token:
                return False
            try:
                page = int(_decode_continue(token).get("page", 0))
            except _HTTPError:
                return False
            return page == fault.expire_continue_on_page
        return True

    def _fault_response(
        self, fault: Fault, target: _Target | None, path: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if fault.expire_continue_on_page is not None:
            return 410, status_body(410, EXPIRED_MESSAGE, "Expired"), {}
        code = fault.status or 500
        return (
            code,
            self._error_body(code, fault.message, target, path),
            ({"Retry-After": str(fault.retry_after)} if code == 429 else {}),
        )

    def _error_body(
        self, code: int, message: str | None, target: _Target | None, path: str
    ) -> dict[str, Any]:
        details = _resource_details(target) if target is not None else None
        if code == 403:
            if target is None:
                text = f'forbidden: User "{self.user}" cannot get path "{path}"'
            else:
                rtype = target.rtype
                subject = rtype.qualified + (f' "{target.name}"' if target.name else "")
                where = (
                    f'in the namespace "{target.namespace}"'
                    if target.namespace
                    else "at the cluster scope"
                )
                text = (
                    f'{subject} is forbidden: User "{self.user}" cannot {target.verb} resource '
                    f'"{rtype.plural}" in API group "{rtype.group}" {where}'
                )
            return status_body(403, message or text, "Forbidden", details)
        if code == 404:
            if target is not None and target.name:
                text = f'{target.rtype.qualified} "{target.name}" not found'
                return status_body(404, message or text, "NotFound", details)
            return status_body(404, message or NOT_FOUND_MESSAGE, "NotFound", {})
        if code == 401:
            return status_body(401, message or "Unauthorized", "Unauthorized")
        if code == 429:
            return status_body(
                429,
                message or "Too many requests, please try again later.",
                "TooManyRequests",
                {"retryAfterSeconds": 1},
            )
        if code == 500:
            cause = message or "injected fault"
            return status_body(
                500,
                f"Internal error occurred: {cause}",
                "InternalError",
                {"causes": [{"message": cause}]},
            )
        if code == 503:
            return status_body(
                503, message or "the server is currently unable to handle the request"
            )
        return status_body(code, message or f"injected {code}")

    def _review_access(self, method: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        """POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews, as kube-apiserver
        answers it: 201 with the spec echoed and `status.allowed`, 400/422 for a bad body."""
        if method != "POST":
            return 405, status_body(
                405,
                "the server does not allow this method on the requested resource",
                "MethodNotAllowed",
            )
        try:
            review = json.loads(raw)
        except ValueError as exc:
            return 400, status_body(400, f"the body of the request was in an unknown format: {exc}")
        # absent apiVersion and kind default to the URL's, as the API server's decoder does
        if not isinstance(review, dict) or (
            review.get("apiVersion", "authorization.k8s.io/v1"),
            review.get("kind", "SelfSubjectAccessReview"),
        ) != ("authorization.k8s.io/v1", "SelfSubjectAccessReview"):
            return 400, status_body(400, "the body is not a v1 SelfSubjectAccessReview")
        spec = review.get("spec") or {}
        resource = spec.get("resourceAttributes")
        if (resource is None) == (spec.get("nonResourceAttributes") is None):
            message = (
                'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: '
                "spec.resourceAttributes: Invalid value: exactly one of nonResourceAttributes "
                "and resourceAttributes must be specified"
            )
            return 422, status_body(422, message, "Invalid")
        allowed = resource is None or self.allows(
            str(resource.get("verb") or ""),
            str(resource.get("group") or ""),
            str(resource.get("resource") or ""),
            str(resource.get("namespace") or ""),
        )
        status: dict[str, Any] = {"allowed": allowed}
        if allowed:
            status["reason"] = f'RBAC: allowed by ClusterRoleBinding "test" to User "{self.user}"'
        body = {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }
        return 201, body

    def _parse_quietly(self, path: str) -> _Target | None:
        try:
            return self._parse_target(path)
        except (_PageNotFound, _HTTPError):
            return None

    def _parse_target(self, path: str) -> _Target | None:
        """The resource a URL names; None for discovery and other non-resource URLs."""
        segments = [s for s in path.split("/") if s]
        if segments[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", segments[2:]
        elif len(segments) >= 3 and segments[0] == "apis":
            group, version, rest = segments[1], segments[2], segments[3:]
        else:
            return None
        if not rest:
            return None
        with self._lock:
            served = {t.plural: t for t in self._types if (t.group, t.version) == (group, version)}
        if not served:
            raise _PageNotFound(path)
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] in served:
            namespace, rest = rest[1], rest[2:]
        rtype = served.get(rest[0])
        if rtype is None or len(rest) > 3:
            raise _HTTPError(404, status_body(404, NOT_FOUND_MESSAGE, "NotFound", {}))
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if (namespace and not rtype.namespaced) or (rtype.namespaced and name and not namespace):
            raise _HTTPError(404, status_body(404, NOT_FOUND_MESSAGE, "NotFound", {}))
        return _Target(rtype=rtype, namespace=namespace, name=name, subresource=sub)

    def _serve(self, path: str, query: dict[str, str], target: _Target | None) -> dict[str, Any]:
        if target is not None:
            return self._serve_resource(target, query)
        return self._serve_discovery(path)

    def _serve_discovery(self, path: str) -> dict[str, Any]:
        segments = [s for s in path.split("/") if s]
        with self._lock:
            types = list(self._types)
        groups = _group_versions(types)
        if segments == ["version"]:
            return dict(self.version)
        if segments == ["api"]:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}
                ],
            }
        if segments == ["api", "v1"]:
            return _resource_list(types, "", "v1", core=True)
        if segments == ["apis"]:
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [_api_group(g, vs) for g, vs in groups.items() if g],
            }
        if len(segments) == 2 and segments[0] == "apis" and segments[1] in groups:
            return {
                "kind": "APIGroup",
                "apiVersion": "v1",
                **_api_group(segments[1], groups[segments[1]]),
            }
        if (
            len(segments) == 3
            and segments[0] == "apis"
            and segments[2] in groups.get(segments[1], ())
        ):
            return _resource_list(types, segments[1], segments[2], core=False)
        raise _PageNotFound(path)

    def _serve_resource(self, target: _Target, query: dict[str, str]) -> dict[str, Any]:
        rtype = target.rtype
        with self._lock:
            bucket = self._objects[(rtype.group, rtype.plural)]
            if target.name is None:
                if target.subresource is not None:
                    raise _HTTPError(404, status_body(404, NOT_FOUND_MESSAGE, "NotFound", {}))
                if "list" not in rtype.verbs:
                    raise _HTTPError(
                        405,
                        status_body(
                            405,
                            "the server does not allow this method on the requested resource",
                            "MethodNotAllowed",
                        ),
                    )
                return self._list(target, bucket, query)
            obj = bucket.get((target.namespace, target.name))
            if obj is None:
                raise _HTTPError(404, self._error_body(404, None, target, ""))
            obj = copy.deepcopy(obj)
        obj["apiVersion"] = rtype.group_version
        obj["kind"] = rtype.kind
        if target.subresource in (None, "status"):
            return obj
        if target.subresource == "scale" and any(s.name == "scale" for s in rtype.subresources):
            replicas = (obj.get("spec") or {}).get("replicas", 1)
            meta = obj["metadata"]
            return {
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": {
                    k: meta[k]
                    for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                    if k in meta
                },
                "spec": {"replicas": replicas},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0)},
            }
        raise _HTTPError(404, status_body(404, NOT_FOUND_MESSAGE, "NotFound", {}))

    def _list(
        self,
        target: _Target,
        bucket: dict[tuple[str, str], dict[str, Any]],
        query: dict[str, str],
    ) -> dict[str, Any]:
        rtype = target.rtype
        try:
            selectors = []
            if query.get("labelSelector"):
                selectors.append(label_selector(query["labelSelector"]))
            if query.get("fieldSelector"):
                selectors.append(field_selector(query["fieldSelector"]))
        except SelectorError as exc:
            raise _HTTPError(400, status_body(400, str(exc), "BadRequest")) from None
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise _HTTPError(
                400, status_body(400, f"invalid limit: {query['limit']!r}", "BadRequest")
            ) from None
        revision, start, page = self._revision, None, 1
        if query.get("continue"):
            token = _decode_continue(query["continue"])
            revision, start, page = int(token["rv"]), tuple(token["start"]), int(token["page"])
            if revision < self._compacted:
                raise _HTTPError(410, status_body(410, EXPIRED_MESSAGE, "Expired"))
        keys = sorted(k for k in bucket if not target.namespace or k[0] == target.namespace)
        if start is not None:
            keys = [k for k in keys if k > start]
        matching = [k for k in keys if all(s(bucket[k]) for s in selectors)]
        chosen = matching[:limit] if limit > 0 else matching
        items = []
        for key in chosen:
            item = copy.deepcopy(bucket[key])
            if rtype.custom:  # unstructured: items keep their type, at the requested version
                item["apiVersion"] = rtype.group_version
                item["kind"] = rtype.kind
            else:
                item.pop("apiVersion", None)
                item.pop("kind", None)
            items.append(item)
        metadata: dict[str, Any] = {"resourceVersion": str(revision)}
        remaining = len(matching) - len(chosen)
        if remaining > 0:
            metadata["continue"] = _encode_continue(revision, chosen[-1], page + 1)
            if not selectors:  # as kube-apiserver: unknown when a selector filters the list
                metadata["remainingItemCount"] = remaining
        return {
            "kind": f"{rtype.kind}List",
            "apiVersion": rtype.group_version,
            "metadata": metadata,
            "items": items,
        }


def _encode_continue(revision: int, last: tuple[str, str], page: int) -> str:
    # kube-apiserver's token is base64 JSON of the list's resourceVersion and the key to resume
    # after; "page" is ours, so a fault can target the Nth page.
    token = {"v": "meta.k8s.io/v1", "rv": revision, "start": list(last), "page": page}
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode().rstrip("=")


def _decode_continue(text: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        token = json.loads(raw)
        if token.get("v") != "meta.k8s.io/v1":
            raise ValueError("unknown version")
        int(token["rv"])
        int(token["page"])
        if not isinstance(token["start"], list):
            raise ValueError("bad start key")
        return dict(token)
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _HTTPError(
            400, status_body(400, f"continue key is not valid: {exc}", "BadRequest")
        ) from None


def _group_versions(types: Iterable[ResourceType]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for rtype in types:
        versions = groups.setdefault(rtype.group, [])
        if rtype.version not in versions:
            versions.append(rtype.version)
    for group, versions in groups.items():
        preferred = PREFERRED_VERSIONS.get(group)
        if preferred in versions:  # discovery lists the preferred version first
            versions.remove(preferred)
            versions.insert(0, preferred)
    return groups


def _api_group(group: str, versions: list[str]) -> dict[str, Any]:
    return {
        "name": group,
        "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
        "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]},
    }


def _resource_list(
    types: Iterable[ResourceType], group: str, version: str, *, core: bool
) -> dict[str, Any]:
    resources = [
        entry for t in types if (t.group, t.version) == (group, version) for entry in t.discovery()
    ]
    body: dict[str, Any] = {"kind": "APIResourceList"}
    if not core:
        body["apiVersion"] = "v1"
    body["groupVersion"] = f"{group}/{version}" if group else version
    body["resources"] = resources
    return body


class _Handler(LoopbackHandler):
    server_version = "kube-apiserver-test"

    @property
    def api(self) -> KubeAPIServer:
        return self.server.owner  # type: ignore[attr-defined,no-any-return]

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        api = self.api
        request = Request(self.command, path, query)
        api._record(request)

        if not api._authorized(self.headers.get("Authorization")):
            self._send_json(401, api._error_body(401, None, None, path))
            return
        if path == SSAR_PATH:
            self._send_json(*api._review_access(self.command, raw))
            return
        try:
            target = api._parse_target(path)
        except _PageNotFound:
            target = None
            not_found = True
        except _HTTPError as exc:
            self._send_json(exc.code, exc.body, exc.headers)
            return
        else:
            not_found = False
        if target is not None and not api.allows(
            target.verb, target.rtype.group, target.rtype.plural, target.namespace
        ):
            self._send_json(403, api._error_body(403, None, target, path))
            return

        fault = api._find_fault(request, target)
        if fault is not None and fault.latency and api._stopping.wait(fault.latency):
            self.close_connection = True  # the server is stopping: abandon the request
            return
        if fault is not None and fault.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and (fault.status is not None or fault.expire_continue_on_page):
            code, body, headers = api._fault_response(fault, target, path)
            self._send_json(code, body, headers)
            return

        if not_found:
            self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
            return
        if self.command != "GET":
            body = status_body(
                405,
                "the test server only serves reads",
                "MethodNotAllowed",
            )
            self._send_json(405, body)
            return
        try:
            payload = api._serve(path, query, target)
        except _PageNotFound:
            self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
            return
        except _HTTPError as exc:
            self._send_json(exc.code, exc.body, exc.headers)
            return
        self._send_json(200, payload, truncate=fault is not None and fault.truncate)

    def _send_json(
        self,
        code: int,
        body: Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
        *,
        truncate: bool = False,
    ) -> None:
        raw = json.dumps(body, separators=(",", ":")).encode()
        self._send(code, raw, "application/json", headers, truncate=truncate)

    def _send(
        self,
        code: int,
        raw: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
        *,
        truncate: bool = False,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Cache-Control", "no-cache, private")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if truncate:
            # the full length was announced: the client must notice the body is short
            self.wfile.write(raw[: len(raw) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(raw)

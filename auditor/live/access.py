"""What a cluster lets us do, asked rather than tried: reachability (`/version`) and
SelfSubjectAccessReviews for the kinds an audit lists, with the audit's own credentials.
`auditor doctor` asks; the live read itself never needs to."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Self

from kubernetes.client import (
    ApiClient,
    ApiException,
    AuthorizationV1Api,
    V1ResourceAttributes,
    V1SelfSubjectAccessReview,
    V1SelfSubjectAccessReviewSpec,
    VersionApi,
)
from urllib3.exceptions import HTTPError

from auditor.config import ClusterSource
from auditor.errors import first_line
from auditor.live.connect import connect
from auditor.rbac import ReadAccess

# what a failed connection looks like through the client (urllib3's errors, socket errors)
_UNREACHABLE: tuple[type[BaseException], ...] = (HTTPError, OSError, ValueError)


@dataclass(frozen=True, slots=True)
class Answer:
    ok: bool
    detail: str


class AccessReviewer:
    """One cluster, through its configured credentials (kubeconfig context or in-cluster)."""

    def __init__(self, client: ApiClient, cluster: ClusterSource, context: str, timeout: float):
        self._client = client
        self._cluster = cluster
        self._context = context
        self._timeout = timeout

    @classmethod
    def connect(cls, cluster: ClusterSource, *, timeout: float) -> AccessReviewer:
        """Raises ConfigError when the kubeconfig or context cannot be used."""
        client, context = connect(cluster)
        return cls(client, cluster, context, timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    @property
    def host(self) -> str:
        return str(self._client.configuration.host)

    def reach(self) -> Answer:
        """The API server answers `/version` to our credentials."""
        try:
            info = VersionApi(self._client).get_code(_request_timeout=self._timeout)
        except ApiException as exc:
            return Answer(False, f"{self.host} (context {self._context}): {_status(exc)}")
        except _UNREACHABLE as exc:
            return Answer(False, f"{self.host} unreachable: {first_line(exc)}")
        return Answer(True, f"{self.host} (context {self._context}): {info.git_version}")

    def may_list(self, kind: ReadAccess, namespace: str) -> Answer:
        """Whether the credentials may list `kind` in `namespace` ("" cluster-wide), as the
        API server's authorizer answers a SelfSubjectAccessReview."""
        review = V1SelfSubjectAccessReview(
            spec=V1SelfSubjectAccessReviewSpec(
                resource_attributes=V1ResourceAttributes(
                    verb="list",
                    group=kind.group,
                    resource=kind.resource,
                    namespace=namespace or None,
                )
            )
        )
        try:
            reply: Any = AuthorizationV1Api(self._client).create_self_subject_access_review(
                review, _request_timeout=self._timeout
            )
        except ApiException as exc:
            return Answer(False, f"access review failed: {_status(exc)}")
        except _UNREACHABLE as exc:
            return Answer(False, f"access review failed: {first_line(exc)}")
        status = reply.status
        if status is not None and status.allowed:
            return Answer(True, "allowed" + (f": {status.reason}" if status.reason else ""))
        why = (status.reason or status.evaluation_error or "") if status is not None else ""
        return Answer(
            False,
            "forbidden: grant get/list/watch on it (auditor deploy rbac)"
            + (f": {why}" if why else ""),
        )


def _status(exc: ApiException) -> str:
    """The API server's Status message, else the HTTP status."""
    try:
        message = json.loads(exc.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return f"HTTP {exc.status}: {message or exc.reason}"


__all__ = ["AccessReviewer", "Answer"]

"""API discovery: which resources the cluster serves, at which versions, and which are in scope.

Only the groups a kind in scope can live in are discovered, and a group's versions only until
every kind in scope it could serve is found: discovery of a cluster with a hundred CRDs must not
cost a hundred requests per run.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from auditor.live.transport import Client, Failure, Unauthorized, decode, status_label, status_text
from auditor.model import Unread
from auditor.scope import KindSelector, Scope

log = logging.getLogger(__name__)

# records a failure as a StageError: (failure, action, target, what it left unread)
Report = Callable[[Failure, str, str, Unread], None]
_EVERYTHING: Unread = (None, None, None)


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
        """`serving.kserve.io/v1beta1`, `v1`: as objects of this resource spell it."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`inferenceservices.serving.kserve.io`, `configmaps`: as kubectl and RBAC name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None) -> str:
        """The URL path that lists this resource in `namespace`, or everywhere when None."""
        base = f"/apis/{self.group}/{self.version}" if self.group else "/api/v1"
        if namespace:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"


@dataclass
class Discovery:
    """What discovery learned: listable resources, scope of every kind, versions per group."""

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


class RootDiscoveryFailed(Exception):
    """`/api` could not be read: the API server is unreachable or not one."""


def discover(
    client: Client, selectors: Sequence[KindSelector], *, host: str, report: Report
) -> Discovery:
    """The resources the groups of `selectors` serve; failures go to `report`.

    Raises `RootDiscoveryFailed` (already reported) when `/api` cannot be read, and lets
    `Unauthorized` through: nothing else could be read either.
    """
    discovery = Discovery()
    try:
        core_versions = _get_doc(client, "/api").get("versions") or ["v1"]
    except Unauthorized:
        raise
    except Failure as exc:
        report(exc, f"read discovery from the API server at {host}", "discovery", _EVERYTHING)
        raise RootDiscoveryFailed from None
    if "v1" in core_versions:
        _discover_version(client, discovery, "", "v1", "/api/v1", report)
    groups = {s.group for s in selectors}
    if groups <= {""}:
        return discovery  # only core kinds in scope: the group list is not needed
    try:
        group_list = _get_doc(client, "/apis").get("groups") or []
    except Unauthorized:
        raise
    except Failure as exc:
        report(exc, "list the API groups", "discovery", _EVERYTHING)
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
            _discover_version(client, discovery, group, version, f"/apis/{group}/{version}", report)
    return discovery


def _discover_version(
    client: Client, discovery: Discovery, group: str, version: str, path: str, report: Report
) -> None:
    try:
        doc = _get_doc(client, path)
    except Unauthorized:
        raise
    except Failure as exc:
        name = f"API group {group}" if group else "the core API"
        report(
            exc,
            f"read discovery of {name} ({path})",
            f"API group {group or 'core'}",
            (group, None, None),
        )
        return
    discovery.learn(group, version, doc)


def _get_doc(client: Client, path: str) -> dict[str, Any]:
    reply = client.get(path)
    if reply.status != 200:
        raise Failure(status_label(reply.status), status_text(reply))
    return decode(reply)


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


def select(discovery: Discovery, scope: Scope, *, cluster: str) -> list[ApiResource]:
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
            log.debug("cluster %s: %s is not served", cluster, selector)
        for rtype in found:
            wanted = scope.version_for(rtype.group, rtype.kind)
            if wanted and wanted in discovery.served_versions.get(rtype.group, ()):
                rtype = dataclasses.replace(rtype, version=wanted)
            chosen.setdefault((rtype.group, rtype.kind), rtype)
    return list(chosen.values())


def still_served(client: Client, rtype: ApiResource) -> bool:
    """After a 404 on a list: was the resource removed (a CRD deleted) since discovery?"""
    base = f"/apis/{rtype.group}/{rtype.version}" if rtype.group else "/api/v1"
    try:
        reply = client.get(base)
    except Unauthorized:
        raise
    except Failure:
        return True  # cannot tell: report the 404
    if reply.status == 404:
        return False
    try:
        return reply.status != 200 or _serves(decode(reply), rtype.plural)
    except Failure:
        return True


def _serves(doc: Mapping[str, Any], plural: str) -> bool:
    return any(isinstance(e, dict) and e.get("name") == plural for e in doc.get("resources") or ())

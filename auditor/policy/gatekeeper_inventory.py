"""Gatekeeper's `data.inventory`: the other objects in scope, keyed as Gatekeeper keys them.

Gatekeeper's sync writes each object at `cluster/<groupVersion>/<kind>/<name>` when it has no
namespace and `namespace/<ns>/<groupVersion>/<kind>/<name>` when it has one, where
groupVersion is the apiVersion string (`v1`, `apps/v1`). Templates such as "unique ingress
host" walk exactly these paths, so the keying is part of the contract.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from auditor.model import Resource
from auditor.policy.gatekeeper_match import is_namespace

ObjectLike = Resource | Mapping[str, Any]


def object_body(item: ObjectLike) -> dict[str, Any]:
    """The object as Gatekeeper sees it: for a `Resource`, its body with the namespace the
    reading stage resolved (Git manifests often leave it to `kubectl apply -n`)."""
    if isinstance(item, Resource):
        body = dict(item.body)
        metadata = body.get("metadata")
        if (
            item.ref.namespace
            and isinstance(metadata, Mapping)
            and metadata.get("namespace") != item.ref.namespace
        ):
            body["metadata"] = {**metadata, "namespace": item.ref.namespace}
        return body
    return dict(item)


def _identity(obj: Mapping[str, Any]) -> tuple[str, str, str, str] | None:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    name, namespace = metadata.get("name"), metadata.get("namespace") or ""
    if not all(isinstance(v, str) and v for v in (api_version, kind, name)):
        return None  # Gatekeeper's sync refuses objects without version, kind or name too
    return str(api_version), str(kind), str(namespace), str(name)


def build_inventory(objects: Iterable[ObjectLike]) -> dict[str, Any]:
    """`data.inventory` for the objects in scope: `{"cluster": {gv: {kind: {name: obj}}},
    "namespace": {ns: {gv: {kind: {name: obj}}}}}`. Both keys are always present, so a
    template's `data.inventory.namespace[ns]` walk is merely empty, never undefined at the top.
    A later object with the same identity replaces an earlier one (the live copy, passed last,
    wins over Git's)."""
    cluster: dict[str, Any] = {}
    namespaced: dict[str, Any] = {}
    for item in objects:
        obj = object_body(item)
        identity = _identity(obj)
        if identity is None:
            continue
        api_version, kind, namespace, name = identity
        root = namespaced.setdefault(namespace, {}) if namespace else cluster
        root.setdefault(api_version, {}).setdefault(kind, {})[name] = obj
    return {"cluster": cluster, "namespace": namespaced}


def namespaces_from(objects: Iterable[ObjectLike]) -> dict[str, dict[str, Any]]:
    """The Namespace objects among `objects`, by name: what `namespaceSelector` reads."""
    found: dict[str, dict[str, Any]] = {}
    for item in objects:
        obj = object_body(item)
        if is_namespace(obj):
            metadata = obj.get("metadata")
            name = metadata.get("name") if isinstance(metadata, Mapping) else None
            if isinstance(name, str) and name:
                found[name] = obj
    return found


def namespaces_in_inventory(inventory: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The Namespace objects of an inventory built by `build_inventory`."""
    by_name = (inventory.get("cluster") or {}).get("v1", {}).get("Namespace", {})
    return dict(by_name)

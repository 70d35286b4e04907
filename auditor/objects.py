"""Turning parsed documents into `Resource`s: shared by Git manifests and live snapshots."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from auditor.errors import InputError
from auditor.model import Resource, ResourceRef, Side
from auditor.redact import redact
from auditor.safeyaml import Document


def _is_list_kind(data: dict[str, Any]) -> bool:
    kind = data.get("kind")
    return isinstance(kind, str) and kind.endswith("List") and isinstance(data.get("items"), list)


def flatten(docs: Iterable[Document], source: str) -> Iterator[tuple[dict[str, Any], int]]:
    """Each object in the documents with the line it starts on; `List` kinds unpacked."""
    for doc in docs:
        data = doc.data
        if data is None:
            continue
        if isinstance(data, list):  # a bare JSON array of objects
            for item in data:
                yield _require_mapping(item, source, doc.line), doc.line
            continue
        mapping = _require_mapping(data, source, doc.line)
        if _is_list_kind(mapping):
            for item in mapping["items"]:
                yield _require_mapping(item, source, doc.line), doc.line
        else:
            yield mapping, doc.line


def _require_mapping(data: Any, source: str, line: int) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InputError(
            f"expected a Kubernetes object (a mapping), found {type(data).__name__}",
            file=source,
            line=line,
        )
    return data


def is_object(data: dict[str, Any]) -> bool:
    """A document that is a Kubernetes object at all (has apiVersion and kind)."""
    return "apiVersion" in data or "kind" in data


def to_resource(
    data: dict[str, Any],
    *,
    source: str,
    line: int,
    side: Side,
    cluster: str,
    origin: str,
    namespace: str | None = None,
) -> Resource:
    """Validates the identifying fields and builds the `Resource`, Secret values redacted.

    `namespace` overrides the object's own (the caller applies defaulting rules).
    """
    api_version = data.get("apiVersion")
    kind = data.get("kind")
    metadata = data.get("metadata")
    if not isinstance(api_version, str) or not api_version:
        raise InputError("object has no apiVersion", file=source, line=line, key="apiVersion")
    if not isinstance(kind, str) or not kind:
        raise InputError("object has no kind", file=source, line=line, key="kind")
    if not isinstance(metadata, dict):
        raise InputError(f"{kind} has no metadata", file=source, line=line, key="metadata")
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        if metadata.get("generateName"):
            raise InputError(
                f"{kind} uses generateName: it has no stable name to compare",
                file=source,
                line=line,
                key="metadata.generateName",
            )
        raise InputError(
            f"{kind} has no metadata.name", file=source, line=line, key="metadata.name"
        )
    ns = metadata.get("namespace") if namespace is None else namespace
    if ns is not None and not isinstance(ns, str):
        raise InputError(
            f"{kind} {name}: metadata.namespace is not a string",
            file=source,
            line=line,
            key="metadata.namespace",
        )
    ref = ResourceRef(
        cluster=cluster, api_version=api_version, kind=kind, namespace=ns or "", name=name
    )
    return Resource(ref=ref, body=redact(data), side=side, origin=origin, line=line)

"""Live objects from files: `kubectl get -o json|yaml` output, one object, or multi-doc YAML.

A snapshot stands in for the cluster (offline audits, tests, the benchmark), so it yields
exactly what the cluster reader does: `Resource`s on the live side, Secret values redacted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from auditor.bounded import read_bounded
from auditor.config import Limits
from auditor.errors import InputError
from auditor.model import Resource
from auditor.objects import flatten, is_object, to_resource
from auditor.safeyaml import Document, decode_text, load_documents

__all__ = ["read_snapshots"]

DEFAULT_LIMITS = Limits()  # frozen, so one shared default is safe


def read_snapshots(
    paths: Sequence[str], *, cluster: str, limits: Limits = DEFAULT_LIMITS
) -> tuple[Resource, ...]:
    """Every object in the snapshot files, in file order; objects keep their own namespace.

    The same object in two files is kept once when both copies agree (overlapping
    `kubectl get` runs) and is an InputError naming both files when they do not.
    """
    seen: dict[tuple[str, str, str, str], tuple[Resource, str]] = {}
    resources: list[Resource] = []
    for path in paths:
        for resource, where in _read_file(path, cluster=cluster, limits=limits):
            key = resource.ref.match_key
            if key not in seen:
                seen[key] = (resource, where)
                resources.append(resource)
            elif seen[key][0].body != resource.body:
                raise InputError(
                    f"{resource.ref.display()} appears twice with different content: "
                    f"{seen[key][1]} and {where}",
                    file=path,
                    hint="take each snapshot file from the same point in time",
                )
    return tuple(resources)


def _read_file(path: str, *, cluster: str, limits: Limits) -> Iterator[tuple[Resource, str]]:
    # decoded at once, the bytes never kept: a large snapshot is held as text only while it is
    # parsed, not twice over beside the objects parsed from it
    text = decode_text(_read_bytes(path, limits.max_snapshot_bytes), path)
    if not text or text.isspace():
        raise _holds_nothing(path, "the file is empty")
    docs = load_documents(text, source=path, max_bytes=limits.max_snapshot_bytes)
    del text
    found = list(flatten(_typed_items(docs), path))
    # `kubectl get` always prints a List or an object, a List with `items: []` when nothing
    # matched: a file with neither is a failed or interrupted export
    if not found and not any(isinstance(d.data, dict) for d in docs):
        empty = all(d.data is None for d in docs)
        raise _holds_nothing(
            path, "only comments or empty documents" if empty else "an empty array"
        )
    origin = f"snapshot:{path}"
    for data, line in found:
        if not is_object(data):
            # a snapshot holds nothing but objects: anything else is the wrong file, and
            # reading it as "nothing live" would report every object as missing
            raise InputError(
                "not a Kubernetes object (no apiVersion or kind): is this a snapshot file?",
                file=path,
                line=line,
            )
        resource = to_resource(
            data, source=path, line=line, side="live", cluster=cluster, origin=origin
        )
        yield resource, f"{path}:{line}"


def _holds_nothing(path: str, why: str) -> InputError:
    # Read as "nothing is live", such a file would report every object in Git missing, or,
    # with nothing in Git either, a clean run: an interrupted or failed export is neither.
    return InputError(
        f"snapshot holds no objects ({why}): it is not `kubectl get` output, and an empty "
        "cluster is not assumed from it",
        file=path,
        hint="`kubectl get KINDS -A -o yaml > FILE` writes a List, with `items: []` when the "
        "cluster has none of those objects",
    )


def _read_bytes(path: str, max_bytes: int) -> bytes:
    """The file's bytes, its size checked before a byte is read; pipes and devices refused."""
    return read_bounded(
        path,
        max_bytes=max_bytes,
        what="snapshot file",
        hint="raise limits.max_snapshot_bytes in auditor.yaml if this file is legitimate",
    )


def _typed_items(docs: list[Document]) -> list[Document]:
    """Typed lists (`DeploymentList` from the raw API) omit kind/apiVersion on their items.

    They are filled in from the list, so a raw API response reads like `kubectl get` output.
    """
    return [Document(_fill_item_types(d.data), d.line, d.index) for d in docs]


def _fill_item_types(data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    kind, items = data.get("kind"), data.get("items")
    if not (isinstance(kind, str) and kind.endswith("List") and kind != "List"):
        return data
    if not isinstance(items, list):
        return data
    item_kind = kind.removesuffix("List")
    filled = [
        {"apiVersion": data.get("apiVersion"), "kind": item_kind, **item}
        if isinstance(item, dict) and "kind" not in item and "apiVersion" not in item
        else item
        for item in items
    ]
    return {**data, "items": filled}

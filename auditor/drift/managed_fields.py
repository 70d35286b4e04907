"""metadata.managedFields: who owns which field, in structured-merge-diff's fieldsV1 format.

fieldsV1 is a trie: `f:<name>` a field, `k:<json>` a list element by its key fields,
`v:<json>` an element of a set (a list of scalars), `i:<n>` an element by index, and `.`
the node itself. A node is owned when it is a leaf (`{}`) or holds `.`; an inner node
without `.` only leads to owned descendants.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditor.drift.normalize import int_or_string
from auditor.drift.pointer import Step

Fields = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ManagedEntry:
    """One entry of an object's metadata.managedFields, its field set parsed."""

    manager: str
    operation: str  # "Apply" (server-side apply) or "Update"
    time: str | None
    fields: Fields
    subresource: str = ""


def managed_entries(body: Mapping[str, Any]) -> tuple[ManagedEntry, ...]:
    """The object's managedFields entries that carry a fieldsV1 set."""
    out = []
    for item, fields in _field_sets(body):
        time = item.get("time")
        out.append(
            ManagedEntry(
                manager=str(item.get("manager", "")),
                operation=str(item.get("operation", "")),
                time=str(time) if time is not None else None,
                fields=fields,
                subresource=str(item.get("subresource", "")),
            )
        )
    return tuple(out)


def has_managed_entries(body: Mapping[str, Any]) -> bool:
    """Whether `managed_entries` would find any, without building them."""
    return next(_field_sets(body), None) is not None


def _field_sets(body: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], Fields]]:
    metadata = body.get("metadata")
    raw = metadata.get("managedFields") if isinstance(metadata, Mapping) else None
    if not isinstance(raw, list):
        return
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        fields = item.get("fieldsV1")
        if isinstance(fields, Mapping) and item.get("fieldsType", "FieldsV1") == "FieldsV1":
            yield item, fields


@functools.lru_cache(maxsize=8192)
def parse_token_value(token: str) -> Any:
    """The JSON after `k:` or `v:`; None when it does not parse."""
    try:
        return json.loads(token[2:])
    except ValueError:
        return None


def key_matches(element: Any, key: Any, defaults: Mapping[str, Any] | None = None) -> bool:
    """Whether a list element carries the `k:` key (every key field equal)."""
    if not isinstance(element, Mapping) or not isinstance(key, Mapping):
        return False
    for name, want in key.items():
        have = element.get(name)
        if have is None and defaults:
            have = defaults.get(name)
        if int_or_string(have) != int_or_string(want):
            return False
    return True


def child(node: Fields, step: Step) -> Any:
    """The fieldsV1 node for one step below `node`, or None.

    Elements are found by the live element's key (`k:`) or value (`v:`); lists owned by
    position (`i:`, rare) are left to their list node's ownership.
    """
    if isinstance(step, str):
        return node.get("f:" + step)
    element = step.live
    if element is None:
        return None
    for token, sub in node.items():
        prefix = token[:2]
        if prefix == "k:":
            if key_matches(element, parse_token_value(token)):
                return sub
        elif prefix == "v:" and parse_token_value(token) == element:
            return sub
    return None


def owned_depth(fields: Fields, steps: Sequence[Step]) -> int:
    """How far down `steps` this field set owns: the index of the deepest owned step, or -1."""
    node: Any = fields
    deepest = -1
    for i, step in enumerate(steps):
        node = child(node, step)
        if not isinstance(node, Mapping):
            break
        if not node or "." in node:
            deepest = i
    return deepest

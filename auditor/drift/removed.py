"""drift.removed: fields Git stopped setting that the GitOps tool had set, still live.

Two witnesses say what the GitOps tool set:
- managedFields entries of a GitOps manager with operation `Apply` (server-side apply:
  Argo CD with ServerSideApply, Flux, `kubectl apply --server-side`). Only `Apply` sets
  are exactly what was applied; an `Update` entry written at create time also owns every
  server default, so trusting it would report each default as removed.
- the `kubectl.kubernetes.io/last-applied-configuration` annotation of client-side apply.
Either way, only fields that live still has are reported, once, at the highest path.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from auditor.drift.managed_fields import ManagedEntry, owned_depth
from auditor.drift.merge_keys import index_by_key, list_key
from auditor.drift.owned import (
    SKIPPED_TOP,
    Unset,
    has_value,
    highest_once,
    metadata_view,
    unset_fields,
)
from auditor.drift.pointer import ElementStep, Step
from auditor.redact import LAST_APPLIED

MANAGED_FIELDS = "managedFields"
LAST_APPLIED_SOURCE = "last-applied"

Removal = Unset  # source: the witness, `managedFields` or `last-applied`, or both joined by +


def last_applied_value(live: Mapping[str, Any], tokens: Sequence[str]) -> Any:
    """The value at `tokens` (map keys only) in the last-applied annotation, or None."""
    node: Any = _last_applied(live)
    for token in tokens:
        if not isinstance(node, Mapping):
            return None
        node = node.get(token)
    return node


def find_removed(
    desired_body: Mapping[str, Any],
    live: Mapping[str, Any],
    entries: Sequence[ManagedEntry],
    gitops_managers: Collection[str],
) -> list[Removal]:
    """Removed fields, each once, at the highest removed path (sources merged)."""
    found: list[Removal] = []
    # the walks use plain dict checks
    desired = desired_body if isinstance(desired_body, dict) else dict(desired_body)
    for entry in entries:
        if entry.operation == "Apply" and entry.manager in gitops_managers:
            found += unset_fields(entry.fields, desired, live, MANAGED_FIELDS)
    applied = _last_applied(live)
    if applied is not None and _applied_by_gitops(entries, gitops_managers):
        _AppliedWalk(found).top(applied, desired, live)
    return highest_once(found)


def _applied_by_gitops(entries: Sequence[ManagedEntry], gitops_managers: Collection[str]) -> bool:
    """Whether the last-applied annotation is the GitOps tool's, so a witness of what Git set.

    `kubectl apply` run by a person rewrites it with their own copy: what that copy has and
    Git does not was added, not removed (added.py). Without managedFields (a snapshot taken
    without them) nobody can tell, and the annotation is trusted as before.
    """
    path = ("metadata", "annotations", LAST_APPLIED)
    writers = [e.manager for e in entries if owned_depth(e.fields, path) == len(path) - 1]
    return not writers or any(m in gitops_managers for m in writers)


def _last_applied(live: Mapping[str, Any]) -> Mapping[str, Any] | None:
    metadata = live.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    text = annotations.get(LAST_APPLIED) if isinstance(annotations, Mapping) else None
    if not isinstance(text, str) or not text:
        return None
    try:
        applied = json.loads(text)
    except ValueError:
        return None
    return applied if isinstance(applied, Mapping) else None


class _AppliedWalk:
    """Walks the last-applied configuration against desired and live."""

    def __init__(self, found: list[Removal]) -> None:
        self.found = found
        self.stack: list[Step] = []

    def report(self, steps: tuple[Step, ...], actual: Any) -> None:
        if has_value(actual):
            self.found.append(Removal(steps, actual, LAST_APPLIED_SOURCE))

    def top(
        self, applied: Mapping[str, Any], desired: Mapping[str, Any], live: Mapping[str, Any]
    ) -> None:
        for name, av in applied.items():
            if name in SKIPPED_TOP:
                continue
            if name == "metadata":
                lm, dm = live.get("metadata"), desired.get("metadata")
                if isinstance(av, Mapping) and isinstance(lm, Mapping):
                    self.stack.append("metadata")
                    self.mapping(
                        metadata_view(av),
                        dm if isinstance(dm, Mapping) else {},
                        metadata_view(lm),
                        None,
                    )
                    self.stack.pop()
                continue
            self.mapping({name: av}, desired, live, None)

    def mapping(
        self, applied: Mapping[str, Any], desired: Any, live: Mapping[str, Any], parent: str | None
    ) -> None:
        for name, av in applied.items():
            lv = live.get(name)
            if av is None or lv is None:
                continue
            dv = desired.get(name) if isinstance(desired, dict) else None
            if dv is None:
                self.report((*self.stack, name), _project_applied(lv, av))
            elif av == dv:
                continue  # Git unchanged here since the last apply: nothing removed below
            elif isinstance(av, dict) and isinstance(dv, dict) and isinstance(lv, dict):
                self.stack.append(name)
                self.mapping(av, dv, lv, name)
                self.stack.pop()
            elif isinstance(av, list) and isinstance(dv, list) and isinstance(lv, list):
                self.stack.append(name)
                self.sequence(av, dv, lv, name, parent)
                self.stack.pop()

    def sequence(
        self,
        applied: list[Any],
        desired: list[Any],
        live: list[Any],
        field: str,
        parent: str | None,
    ) -> None:
        key = list_key(field, applied, parent)
        if key is None:
            return  # positional lists are atomic: Git's whole list is compared as changed
        desired_index = index_by_key(desired, key)
        live_index = index_by_key(live, key)
        for ae in applied:
            k = key.of(ae)
            if k is None or (j := live_index.get(k)) is None:
                continue
            i = desired_index.get(k)
            if i is None:
                step = ElementStep(str(j), live[j], live[j], key.fields)
                self.report((*self.stack, step), _project_applied(live[j], ae))
            elif isinstance(ae, dict) and ae != desired[i]:
                self.stack.append(ElementStep(str(i), live[j], desired[i], key.fields))
                self.mapping(ae, desired[i], live[j], None)
                self.stack.pop()


def _project_applied(live: Any, applied: Any) -> Any:
    """The part of a live value that last-applied set."""
    if isinstance(live, Mapping) and isinstance(applied, Mapping):
        return {
            k: _project_applied(live[k], v)
            for k, v in applied.items()
            if v is not None and live.get(k) is not None
        }
    return live

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
from typing import Any, NamedTuple

from auditor.drift.managed_fields import ManagedEntry, key_matches, parse_token_value
from auditor.drift.merge_keys import index_by_key, key_for_fields, list_key
from auditor.drift.pointer import ElementStep, Step, tokens_of
from auditor.redact import LAST_APPLIED

# Metadata the GitOps tools add to what they apply (tracking labels and annotations); they
# are theirs, not Git's, so their absence from Git is not a removal.
TRACKING_METADATA: frozenset[str] = frozenset(
    {
        LAST_APPLIED,
        "argocd.argoproj.io/tracking-id",
        "argocd.argoproj.io/installation-id",
        "app.kubernetes.io/instance",  # Argo CD's default tracking label
        "kustomize.toolkit.fluxcd.io/name",
        "kustomize.toolkit.fluxcd.io/namespace",
        "helm.toolkit.fluxcd.io/name",
        "helm.toolkit.fluxcd.io/namespace",
        "meta.helm.sh/release-name",
        "meta.helm.sh/release-namespace",
    }
)
# Only these metadata fields are Git's to remove; the rest is identity or server state.
_METADATA_FIELDS: frozenset[str] = frozenset({"labels", "annotations"})
_SKIPPED_TOP: frozenset[str] = frozenset({"apiVersion", "kind", "status"})

MANAGED_FIELDS = "managedFields"
LAST_APPLIED_SOURCE = "last-applied"


class Removal(NamedTuple):
    steps: tuple[Step, ...]
    actual: Any  # the live value, restricted to what the witness says was applied
    source: str


def is_tracking_metadata(tokens: Sequence[str]) -> bool:
    """A label or annotation the GitOps tools write themselves (see TRACKING_METADATA)."""
    return (
        len(tokens) == 3
        and tokens[0] == "metadata"
        and tokens[1] in _METADATA_FIELDS
        and tokens[2] in TRACKING_METADATA
    )


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
            _ManagedWalk(found).top(entry.fields, desired, live)
    applied = _last_applied(live)
    if applied is not None:
        _AppliedWalk(found).top(applied, desired, live)
    return _highest_once(found)


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


def _highest_once(found: list[Removal]) -> list[Removal]:
    by_path: dict[tuple[str, ...], Removal] = {}
    sources: dict[tuple[str, ...], set[str]] = {}
    for removal in found:
        path = tokens_of(removal.steps)
        by_path.setdefault(path, removal)
        sources.setdefault(path, set()).add(removal.source)
    out = []
    for path, removal in by_path.items():
        if any(path[:n] in by_path for n in range(len(path))):
            continue  # an ancestor is reported: Git dropped the whole map
        source = "+".join(sorted(sources[path]))
        out.append(removal._replace(source=source))
    return out


def _metadata_view(value: Mapping[str, Any]) -> dict[str, Any]:
    """labels/annotations of a metadata map, without the GitOps tools' own keys."""
    out: dict[str, Any] = {}
    for name in _METADATA_FIELDS:
        sub = value.get(name)
        if isinstance(sub, Mapping):
            out[name] = {k: v for k, v in sub.items() if k not in TRACKING_METADATA}
    return out


class _Walk:
    def __init__(self, found: list[Removal]) -> None:
        self.found = found
        self.stack: list[Step] = []

    def report(self, steps: tuple[Step, ...], actual: Any, source: str) -> None:
        # what the witness applied may all be gone live (only other writers' keys remain);
        # "" is what Go structs without omitempty write for a field nobody set (KServe's
        # webhook writes `name: ""` into every model), not something Git used to say
        if actual not in ({}, [], ""):
            self.found.append(Removal(steps, actual, source))


class _ManagedWalk(_Walk):
    """Walks one GitOps manager's applied field set against desired and live."""

    def top(
        self, fields: Mapping[str, Any], desired: dict[str, Any], live: Mapping[str, Any]
    ) -> None:
        for token, sub in fields.items():
            if not token.startswith("f:") or token[2:] in _SKIPPED_TOP:
                continue
            name = token[2:]
            if name == "metadata":
                dm, lm = desired.get("metadata"), live.get("metadata")
                if isinstance(lm, Mapping) and isinstance(sub, Mapping):
                    self.stack.append("metadata")
                    kept = {t: s for t, s in sub.items() if t[2:] in _METADATA_FIELDS}
                    self.mapping(kept, dm if isinstance(dm, dict) else {}, _metadata_view(lm))
                    self.stack.pop()
                continue
            self.mapping({token: sub}, desired, live)

    def mapping(
        self, node: Mapping[str, Any], desired: dict[str, Any], live: Mapping[str, Any]
    ) -> None:
        # hot path (every owned field of every object): plain dict checks, no ABCs
        for token, sub in node.items():
            if token[:2] != "f:":
                continue
            name = token[2:]
            lv = live.get(name)
            if lv is None:
                continue  # gone live too: nothing to report
            dv = desired.get(name)
            if dv is None:
                self.report((*self.stack, name), _project(lv, sub), MANAGED_FIELDS)
            elif sub:
                if isinstance(dv, dict):
                    if isinstance(lv, dict):
                        self.stack.append(name)
                        self.mapping(sub, dv, lv)
                        self.stack.pop()
                elif isinstance(dv, list) and isinstance(lv, list):
                    self.stack.append(name)
                    self.sequence(sub, dv, lv)
                    self.stack.pop()

    def sequence(self, node: Mapping[str, Any], desired: list[Any], live: list[Any]) -> None:
        indexes: dict[tuple[str, ...], tuple[dict[Any, int], dict[Any, int]]] = {}
        for token, sub in node.items():
            prefix = token[:2]
            if prefix == "k:":
                want = parse_token_value(token)
                if not isinstance(want, dict):
                    continue
                key = key_for_fields(tuple(want))
                if key.fields not in indexes:
                    indexes[key.fields] = (index_by_key(live, key), index_by_key(desired, key))
                live_index, desired_index = indexes[key.fields]
                k = key.of(want)
                j = live_index.get(k)
                if j is None:
                    continue
                i = desired_index.get(k)
                if i is None:
                    step = ElementStep(str(j), live[j], live[j], key.fields)
                    self.report((*self.stack, step), _project(live[j], sub), MANAGED_FIELDS)
                elif sub and isinstance(desired[i], dict) and isinstance(live[j], dict):
                    self.stack.append(ElementStep(str(i), live[j], desired[i], key.fields))
                    self.mapping(sub, desired[i], live[j])
                    self.stack.pop()
            elif prefix == "v:":
                value = parse_token_value(token)
                if value in live and value not in desired:
                    j = live.index(value)
                    step = ElementStep(str(j), value, value, ())
                    self.report((*self.stack, step), value, MANAGED_FIELDS)


def _project(live: Any, node: Any) -> Any:
    """The part of a live value a field set owns: `{a, b}` live, only `f:a` owned -> `{a}`."""
    if not isinstance(node, Mapping) or not node:
        return live
    if isinstance(live, Mapping):
        owned = {t[2:]: s for t, s in node.items() if t.startswith("f:")}
        if not owned:
            return live
        return {k: _project(live[k], s) for k, s in owned.items() if live.get(k) is not None}
    if isinstance(live, list):
        items = []
        for token, sub in node.items():
            if token.startswith("k:"):
                want = parse_token_value(token)
                items += [_project(e, sub) for e in live if key_matches(e, want)][:1]
            elif token.startswith("v:"):
                value = parse_token_value(token)
                if value in live:
                    items.append(value)
        return items if items else live
    return live


class _AppliedWalk(_Walk):
    """Walks the last-applied configuration against desired and live."""

    def top(
        self, applied: Mapping[str, Any], desired: Mapping[str, Any], live: Mapping[str, Any]
    ) -> None:
        for name, av in applied.items():
            if name in _SKIPPED_TOP:
                continue
            if name == "metadata":
                lm, dm = live.get("metadata"), desired.get("metadata")
                if isinstance(av, Mapping) and isinstance(lm, Mapping):
                    self.stack.append("metadata")
                    self.mapping(
                        _metadata_view(av),
                        dm if isinstance(dm, Mapping) else {},
                        _metadata_view(lm),
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
                self.report((*self.stack, name), _project_applied(lv, av), LAST_APPLIED_SOURCE)
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
                self.report((*self.stack, step), _project_applied(live[j], ae), LAST_APPLIED_SOURCE)
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

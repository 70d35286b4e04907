"""Fields a field manager owns that live still has and Git does not set.

One walk over one managedFields entry (fieldsV1) against the desired and live bodies, used
twice: over the GitOps tool's applied sets it finds what Git stopped setting
(`removed.py`), over the sets of managers people drive it finds what someone added by hand
(`added.py`). It reports the highest path Git does not set, with the part of the live value
the entry owns. Only labels and annotations are looked at in metadata, and never the GitOps
tools' own tracking keys; status is never Git's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from auditor.drift.managed_fields import key_matches, parse_token_value
from auditor.drift.merge_keys import index_by_key, key_for_fields
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
# Only these metadata fields are Git's to set or remove; the rest is identity or server state.
METADATA_FIELDS: frozenset[str] = frozenset({"labels", "annotations"})
SKIPPED_TOP: frozenset[str] = frozenset({"apiVersion", "kind", "status"})


class Unset(NamedTuple):
    """A live field Git does not set, and who says it was set (a witness, or a manager)."""

    steps: tuple[Step, ...]
    actual: Any  # the live value, restricted to what the witness owns
    source: str


def is_tracking_metadata(tokens: Sequence[str]) -> bool:
    """A label or annotation the GitOps tools write themselves (see TRACKING_METADATA)."""
    return (
        len(tokens) == 3
        and tokens[0] == "metadata"
        and tokens[1] in METADATA_FIELDS
        and tokens[2] in TRACKING_METADATA
    )


def metadata_view(value: Mapping[str, Any]) -> dict[str, Any]:
    """labels/annotations of a metadata map, without the GitOps tools' own keys."""
    out: dict[str, Any] = {}
    for name in METADATA_FIELDS:
        sub = value.get(name)
        if isinstance(sub, Mapping):
            out[name] = {k: v for k, v in sub.items() if k not in TRACKING_METADATA}
    return out


def has_value(actual: Any) -> bool:
    """Whether what a witness owns is still something live.

    All of it may be gone (only other writers' keys remain); and "" is what Go structs
    without omitempty write for a field nobody set (KServe's webhook writes `name: ""` into
    every model), not something anyone said.
    """
    return actual not in ({}, [], "")


def highest_once(found: Sequence[Unset]) -> list[Unset]:
    """Each path once (witnesses joined), and only the highest: a map Git dropped whole is one
    finding, not one per key."""
    by_path: dict[tuple[str, ...], Unset] = {}
    sources: dict[tuple[str, ...], set[str]] = {}
    for unset in found:
        path = tokens_of(unset.steps)
        by_path.setdefault(path, unset)
        sources.setdefault(path, set()).update(unset.source.split("+"))
    out = []
    for path, unset in by_path.items():
        if any(path[:n] in by_path for n in range(len(path))):
            continue
        out.append(unset._replace(source="+".join(sorted(sources[path]))))
    return out


def unset_fields(
    fields: Mapping[str, Any], desired: Mapping[str, Any], live: Mapping[str, Any], source: str
) -> list[Unset]:
    """What the field set owns that live has and `desired` does not set, highest paths."""
    walk = _FieldSetWalk(source)
    # the walk uses plain dict checks
    walk.top(fields, desired if isinstance(desired, dict) else dict(desired), live)
    return walk.found


def owned_part(live: Any, node: Any) -> Any:
    """The part of a live value a field set owns: `{a, b}` live, only `f:a` owned -> `{a}`."""
    if not isinstance(node, Mapping) or not node:
        return live
    if isinstance(live, Mapping):
        owned = {t[2:]: s for t, s in node.items() if t.startswith("f:")}
        if not owned:
            return live
        return {k: owned_part(live[k], s) for k, s in owned.items() if live.get(k) is not None}
    if isinstance(live, list):
        items = []
        for token, sub in node.items():
            if token.startswith("k:"):
                want = parse_token_value(token)
                items += [owned_part(e, sub) for e in live if key_matches(e, want)][:1]
            elif token.startswith("v:"):
                value = parse_token_value(token)
                if value in live:
                    items.append(value)
        return items if items else live
    return live


class _FieldSetWalk:
    """Walks one field set against desired and live; `stack` is the path being walked."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[Unset] = []
        self.stack: list[Step] = []

    def report(self, steps: tuple[Step, ...], actual: Any) -> None:
        if has_value(actual):
            self.found.append(Unset(steps, actual, self.source))

    def top(
        self, fields: Mapping[str, Any], desired: dict[str, Any], live: Mapping[str, Any]
    ) -> None:
        for token, sub in fields.items():
            if not token.startswith("f:") or token[2:] in SKIPPED_TOP:
                continue
            name = token[2:]
            if name == "metadata":
                dm, lm = desired.get("metadata"), live.get("metadata")
                if isinstance(lm, Mapping) and isinstance(sub, Mapping):
                    self.stack.append("metadata")
                    kept = {t: s for t, s in sub.items() if t[2:] in METADATA_FIELDS}
                    self.mapping(kept, dm if isinstance(dm, dict) else {}, metadata_view(lm))
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
                self.report((*self.stack, name), owned_part(lv, sub))
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
                    self.report((*self.stack, step), owned_part(live[j], sub))
                elif sub and isinstance(desired[i], dict) and isinstance(live[j], dict):
                    self.stack.append(ElementStep(str(i), live[j], desired[i], key.fields))
                    self.mapping(sub, desired[i], live[j])
                    self.stack.pop()
            elif prefix == "v:":
                value = parse_token_value(token)
                if value in live and value not in desired:
                    j = live.index(value)
                    self.report((*self.stack, ElementStep(str(j), value, value, ())), value)

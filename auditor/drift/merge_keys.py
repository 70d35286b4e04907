"""Which lists are matched by key rather than by position, and on which key.

The table follows the `patchMergeKey` / `listMapKeys` of the Kubernetes API types, as
strategic merge and server-side apply use them: a webhook-injected sidecar or a
reordered env list then is not drift, as it is not for Argo CD.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditor.drift.normalize import int_or_string


@dataclass(frozen=True, slots=True)
class ListKey:
    """A merge key: its fields, and the value the API server defaults a missing one to.

    `closed`: nothing injects elements into the list, so a live element Git does not list is
    drift too (open lists, like containers and env, get sidecars and injected variables).
    """

    fields: tuple[str, ...]
    defaults: tuple[Any, ...] = ()
    closed: bool = False

    def of(self, element: Any) -> tuple[Any, ...] | None:
        """The element's key, normalized ("8080" == 8080); None if it has no key."""
        if not isinstance(element, dict):
            return None
        if len(self.fields) == 1:  # the common case (name, mountPath), kept cheap
            value = element.get(self.fields[0])
            if value is None:
                return None
            if isinstance(value, (dict, list)):
                return (repr(value),)  # malformed, but must not make the key unhashable
            return (int_or_string(value) if isinstance(value, str) else value,)
        out = []
        for i, name in enumerate(self.fields):
            value = element.get(name)
            if value is None:
                value = self.defaults[i] if i < len(self.defaults) else None
                if value is None:
                    return None
            out.append(int_or_string(value) if not isinstance(value, (dict, list)) else repr(value))
        return tuple(out)


class MetricKey(ListKey):
    """An HPA metric, by what it measures: its type and its source's name (and container,
    object or selector). HPAs take the largest recommendation of all their metrics, so their
    order means nothing; and before Kubernetes 1.28 the autoscaling/v1 storage round trip
    moved the CPU metric last (kubernetes/kubernetes#74099, argoproj/argo-cd#11328). The
    metrics list is atomic in managedFields: no key fields to name."""

    def of(self, element: Any) -> tuple[Any, ...] | None:
        if not isinstance(element, dict) or not isinstance(element.get("type"), str):
            return None
        kind: str = element["type"]
        source = element.get(kind[:1].lower() + kind[1:])  # Resource -> resource
        if not isinstance(source, dict):
            return None
        metric = source.get("metric")
        name = source.get("name") or (metric.get("name") if isinstance(metric, dict) else None)
        if not isinstance(name, str):
            return None
        extra = (source.get("container"), source.get("describedObject"), metric)
        return (kind, name, json.dumps(extra, sort_keys=True, default=str))


# What the API server fills in for a key field Git may omit (ports default to TCP).
KEY_DEFAULTS: Mapping[str, Any] = {"protocol": "TCP"}

BY_NAME = ListKey(("name",))
HPA_METRIC = MetricKey((), closed=True)
CONTAINER_PORT = ListKey(("containerPort", "protocol"), (None, "TCP"))
SERVICE_PORT = ListKey(("port", "protocol"), (None, "TCP"))

MERGE_KEYS: Mapping[str, ListKey] = {
    "containers": BY_NAME,
    "initContainers": BY_NAME,
    "ephemeralContainers": BY_NAME,
    "env": BY_NAME,
    "volumes": BY_NAME,
    "imagePullSecrets": BY_NAME,
    "resourceClaims": BY_NAME,
    "volumeMounts": ListKey(("mountPath",)),
    "volumeDevices": ListKey(("devicePath",)),
    "hostAliases": ListKey(("ip",)),
    "conditions": ListKey(("type",)),
    "topologySpreadConstraints": ListKey(("topologyKey", "whenUnsatisfiable")),
}


def list_key(field: str, elements: Sequence[Any], parent: str | None) -> ListKey | None:
    """The key to match a list's elements by, or None for a positional list.

    `elements` are the elements the choice is made on (the desired ones); `parent` is the
    name of the map holding the list (None when that map is itself a list element).
    """
    if not elements:
        # nothing to match: keyed lists then only need the key for removed elements
        return MERGE_KEYS.get(field) or (CONTAINER_PORT if field == "ports" else None)
    if not all(isinstance(e, dict) for e in elements):
        return None
    chosen = MERGE_KEYS.get(field)
    if chosen is None and field == "metrics" and parent == "spec":
        chosen = HPA_METRIC  # elements without a metric's shape fall back to positions below
    if chosen is None and field == "ports":
        if all("containerPort" in e for e in elements):
            chosen = CONTAINER_PORT
        elif parent == "spec" and all("port" in e for e in elements):
            # Service spec.ports; ports lists elsewhere (NetworkPolicy) are atomic
            chosen = SERVICE_PORT
    if chosen is not None:
        return chosen if all(chosen.of(e) is not None for e in elements) else None
    # CRDs (KServe containers, Seldon predictors): a list of uniquely named maps
    names = [e.get("name") for e in elements]
    if all(isinstance(n, str) for n in names) and len(set(names)) == len(names):
        return BY_NAME
    return None


@functools.lru_cache(maxsize=256)
def key_for_fields(fields: tuple[str, ...]) -> ListKey:
    """The key of a managedFields `k:` token's fields, with the API server's defaults."""
    return ListKey(fields, tuple(KEY_DEFAULTS.get(f) for f in fields))


def index_by_key(elements: Sequence[Any], key: ListKey) -> dict[tuple[Any, ...], int]:
    """Key -> index of the first element with that key."""
    out: dict[tuple[Any, ...], int] = {}
    for i, element in enumerate(elements):
        k = key.of(element)
        if k is not None and k not in out:
            out[k] = i
    return out

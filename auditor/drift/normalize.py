"""Value normalization: when two differently written values mean the same thing.

Only called once plain `==` has already said "different", so the common, equal case
never pays for it. Which rule applies depends on the field (its key, and the key of the
map it sits in), the way the Kubernetes schema types it: quantities, int-or-string.
"""

from __future__ import annotations

import datetime
import functools
import re
from decimal import Decimal, InvalidOperation
from typing import Any

# Maps whose values are resource quantities: resources.requests/limits (Pods, Deployments,
# KServe predictors, PVC spec.resources), RuntimeClass/Pod overhead, ResourceQuota hard,
# PV capacity, Node allocatable.
QUANTITY_PARENTS: frozenset[str] = frozenset(
    {"requests", "limits", "overhead", "hard", "capacity", "allocatable"}
)
# LimitRange spec.limits[*] maps; only in LimitRange, where they are known to hold quantities.
LIMIT_RANGE_PARENTS: frozenset[str] = QUANTITY_PARENTS | frozenset(
    {"max", "min", "default", "defaultRequest", "maxLimitRequestRatio"}
)
# Fields that are quantities themselves (emptyDir.sizeLimit).
QUANTITY_FIELDS: frozenset[str] = frozenset({"sizeLimit"})
# IntOrString fields: probe/handler ports, Service targetPort, rollout and PDB budgets.
# containerPort/hostPort/nodePort/port are plain ints in the schema; YAML authors still
# quote them, so "8080" == 8080 there too.
INT_OR_STRING_FIELDS: frozenset[str] = frozenset(
    {
        "targetPort",
        "port",
        "containerPort",
        "hostPort",
        "nodePort",
        "maxSurge",
        "maxUnavailable",
        "minAvailable",
    }
)

# Typed (built-in, or re-serialized from Go structs by a webhook) objects lose the zero value
# of an `omitempty` int or bool: the API server stores `minReadySeconds: 0` or
# `hostNetwork: false` from Git as no field at all, as Argo CD's typed re-marshal does before
# diffing. Ints first: only these fields are non-pointer omitempty ints (probe timings, the
# rollout's minReadySeconds, ports the server allocates); pointer ints (replicas,
# runAsUser, ttlSecondsAfterFinished) keep a 0, and there 0 and absent differ.
OMITTED_ZERO_INTS: frozenset[str] = frozenset(
    {
        "minReadySeconds",
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
        "hostPort",
        "nodePort",
        "healthCheckNodePort",
        "maxReplicas",  # KServe components: `int` omitempty, 0 means no maximum
    }
)
# A false bool and an absent one mean the same, except where absent means true.
ABSENT_MEANS_TRUE: frozenset[str] = frozenset(
    {"automountServiceAccountToken", "allowPrivilegeEscalation", "hostUsers", "enableServiceLinks"}
)
# What the API server fills in for a zero or empty value Git sets: allocated addresses and
# ports (any value), probe timings (their defaults). Git's zero there asked for exactly that.
SERVER_FILLED: dict[str, Any] = {
    "clusterIP": ...,  # "" -> an allocated address
    "nodePort": ...,  # 0 -> an allocated port
    "healthCheckNodePort": ...,
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "successThreshold": 1,
    "failureThreshold": 3,
}

_DECIMAL_SUFFIX: dict[str, Decimal] = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_BINARY_SUFFIX: dict[str, Decimal] = {
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
# The apimachinery grammar: <signedNumber><suffix>, suffix binarySI | decimalSI | exponent.
_QUANTITY = re.compile(
    r"([+-]?(?:\d+\.?\d*|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE]([+-]?\d+))?"
)


@functools.lru_cache(maxsize=4096)
def _parse_quantity_text(text: str) -> Decimal | None:
    match = _QUANTITY.fullmatch(text.strip())
    if match is None:
        return None
    number, suffix, exponent = match.groups()
    try:
        value = Decimal(number)
    except InvalidOperation:  # pragma: no cover - the regex only lets numbers through
        return None
    if exponent is not None:
        return value.scaleb(int(exponent))
    if suffix in _BINARY_SUFFIX:
        return value * _BINARY_SUFFIX[suffix]
    return value * _DECIMAL_SUFFIX[suffix or ""]


def parse_quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity as a number: "1000m" -> 1, "1Gi" -> 1073741824; None if not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        return _parse_quantity_text(value)
    return None


def quantities_equal(a: Any, b: Any) -> bool:
    """Equal as quantities ("1" == "1000m" == 1); values that are not quantities compare as-is."""
    qa, qb = parse_quantity(a), parse_quantity(b)
    if qa is None or qb is None:
        return bool(a == b)
    return qa == qb


def int_or_string(value: Any) -> Any:
    """`"8080"` -> 8080; named ports ("http") and percentages ("25%") stay strings."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def is_unset(value: Any) -> bool:
    """Whether a desired value means "not set": null, "", {} or [], or a map of only those.

    The API server drops empty strings, maps and lists of omitempty fields, so these in
    Git and an absent field live are the same thing. Only used when live lacks the field:
    an explicit "" in Git against a live value is still drift.
    """
    if value is None or value == "" or value == [] or value == {}:
        return True
    if isinstance(value, dict):
        return all(is_unset(v) for v in value.values())
    return False


def zero_is_unset(key: str, desired: Any, live: Any) -> bool:
    """Whether a zero Git value of a typed object's field is "not set" given the live value.

    `live` is None when the live object lacks the field. Only called for typed objects
    (see OMITTED_ZERO_INTS); a non-zero Git value is never unset.
    """
    if desired is False:
        return live is None and key not in ABSENT_MEANS_TRUE
    if type(desired) is int and desired == 0 and key in OMITTED_ZERO_INTS:
        if live is None:
            return True
        filled = SERVER_FILLED.get(key)
        return filled is ... or (filled is not None and live == filled)
    if desired == "" and SERVER_FILLED.get(key) is ...:
        return live is not None  # allocated by the server
    return False


def _same_timestamp(desired: datetime.date, live: Any) -> bool:
    """A YAML timestamp PyYAML parsed (kubectl keeps it as the string it was written as)."""
    if not isinstance(live, str):
        return False
    try:
        if isinstance(desired, datetime.datetime):
            return datetime.datetime.fromisoformat(live.replace("t", "T")) == desired
        return datetime.date.fromisoformat(live) == desired
    except ValueError:
        return False


def scalars_equal(
    desired: Any, live: Any, key: str | None, parent: str | None, quantity_parents: frozenset[str]
) -> bool:
    """Whether a desired scalar and a live value mean the same, given where they sit.

    `key` is the field's name, `parent` the name of the map holding it (None in lists).
    """
    if type(desired) is bool or type(live) is bool:
        # True == 1 in Python; a boolean only ever equals the same boolean
        return type(desired) is type(live) and desired == live
    if desired == live:
        return True
    if key in INT_OR_STRING_FIELDS:
        return bool(int_or_string(desired) == int_or_string(live))
    if parent in quantity_parents or key in QUANTITY_FIELDS:
        return quantities_equal(desired, live)
    if isinstance(desired, datetime.date):
        return _same_timestamp(desired, live)
    return False


# Groups served by CustomResourceDefinitions although their names end in .k8s.io: stored as
# written (no Go round trip), so their zero values stay.
_CRD_K8S_GROUPS: frozenset[str] = frozenset(
    {"gateway.networking.k8s.io", "snapshot.storage.k8s.io", "policy.networking.k8s.io"}
)


def is_typed(group: str, kind: str) -> bool:
    """Whether the stored object went through Go structs, so omitempty zero values are dropped.

    Built-in kinds (core, `apps`, `*.k8s.io`), and KServe InferenceServices, which KServe's
    mutating webhook decodes and re-encodes. Custom resources are stored as written.
    """
    if group == "" or "." not in group:
        return True
    if group.endswith(".k8s.io"):
        return group not in _CRD_K8S_GROUPS
    return group == "serving.kserve.io" and kind == "InferenceService"


def quantity_parents_for(group: str, kind: str) -> frozenset[str]:
    """The quantity-holding map names of a kind."""
    if group == "" and kind == "LimitRange":
        return LIMIT_RANGE_PARENTS
    return QUANTITY_PARENTS

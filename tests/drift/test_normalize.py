"""Normalization rules: when two differently written values are the same value."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest

from auditor.drift.normalize import (
    LIMIT_RANGE_PARENTS,
    QUANTITY_PARENTS,
    int_or_string,
    is_typed,
    is_unset,
    parse_quantity,
    quantities_equal,
    scalars_equal,
    zero_is_unset,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", Decimal(1)),
        ("1000m", Decimal(1)),
        ("500m", Decimal("0.5")),
        ("100n", Decimal("1e-7")),
        ("250u", Decimal("0.00025")),
        ("1k", Decimal(1000)),
        ("1M", Decimal(10**6)),
        ("1G", Decimal(10**9)),
        ("1T", Decimal(10**12)),
        ("1P", Decimal(10**15)),
        ("1E", Decimal(10**18)),
        ("1Ki", Decimal(1024)),
        ("1Mi", Decimal(2**20)),
        ("1Gi", Decimal(2**30)),
        ("1Ti", Decimal(2**40)),
        ("1Pi", Decimal(2**50)),
        ("1Ei", Decimal(2**60)),
        ("1e3", Decimal(1000)),
        ("1E3", Decimal(1000)),
        ("2.5e-3", Decimal("0.0025")),
        (".5", Decimal("0.5")),
        ("+2", Decimal(2)),
        (2, Decimal(2)),
        (0.25, Decimal("0.25")),
    ],
)
def test_parse_quantity(text: Any, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1Gb", "1.2.3", "Gi", "1 Gi x", True, None, [1]])
def test_parse_quantity_rejects_what_is_not_a_quantity(text: Any) -> None:
    assert parse_quantity(text) is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1000m", "1"),
        ("1000m", 1),
        ("1", 1.0),
        ("0.5", "500m"),
        ("1Gi", "1024Mi"),
        ("1Mi", "1024Ki"),
        ("1e3", "1k"),
        ("1G", "1000M"),
        ("2Gi", "2147483648"),
        ("100m", "0.1"),
        ("1.5Gi", "1536Mi"),
    ],
)
def test_quantities_equal(a: Any, b: Any) -> None:
    assert quantities_equal(a, b)
    assert quantities_equal(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1", "2"),
        ("1Gi", "1G"),
        ("500m", "5"),
        ("1Mi", "1M"),
        ("1k", "1Ki"),
        ("100m", "100"),
        ("1e3", "1e4"),
        ("nvidia", "1"),
    ],
)
def test_quantities_not_equal(a: Any, b: Any) -> None:
    assert not quantities_equal(a, b)


def test_quantity_1000m_equals_1_is_not_drift() -> None:
    assert scalars_equal("1000m", "1", "cpu", "limits", QUANTITY_PARENTS)


def test_quantity_rule_applies_only_in_quantity_maps() -> None:
    # a ConfigMap value "1000m" is text, not a quantity
    assert not scalars_equal("1000m", "1", "threshold", "data", QUANTITY_PARENTS)
    assert scalars_equal("1Gi", "1024Mi", "sizeLimit", "emptyDir", QUANTITY_PARENTS)
    assert scalars_equal("1Gi", "1024Mi", "requests.memory", "hard", QUANTITY_PARENTS)


def test_limit_range_maps_hold_quantities_only_in_limit_ranges() -> None:
    assert scalars_equal("0.5", "500m", "cpu", "max", LIMIT_RANGE_PARENTS)
    assert not scalars_equal("0.5", "500m", "cpu", "max", QUANTITY_PARENTS)


@pytest.mark.parametrize(
    ("key", "a", "b", "equal"),
    [
        ("targetPort", "8080", 8080, True),
        ("port", 8080, "8080", True),
        ("containerPort", "9000", 9000, True),
        ("targetPort", "http", "http", True),
        ("targetPort", "http", 8080, False),
        ("targetPort", "8080", 8081, False),
        ("maxSurge", "25%", "25%", True),
        ("maxSurge", "1", 1, True),
        ("maxUnavailable", "25%", 1, False),
        ("minAvailable", "2", 2, True),
        ("replicas", "2", 2, False),  # not int-or-string: the API server would reject "2"
    ],
)
def test_int_or_string_fields(key: str, a: Any, b: Any, equal: bool) -> None:
    assert scalars_equal(a, b, key, None, QUANTITY_PARENTS) is equal


def test_int_or_string_keeps_names_and_percentages() -> None:
    assert int_or_string("http") == "http"
    assert int_or_string("25%") == "25%"
    assert int_or_string("8080") == 8080


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (1, 1.0, True),
        (0.5, 0.5, True),
        (1, 2, False),
        (True, 1, False),
        (False, 0, False),
        (True, True, True),
        ("true", True, False),
        ("a", "b", False),
    ],
)
def test_plain_scalars(a: Any, b: Any, equal: bool) -> None:
    assert scalars_equal(a, b, "field", "spec", QUANTITY_PARENTS) is equal


@pytest.mark.parametrize(
    ("value", "unset"),
    [
        (None, True),
        ("", True),
        ({}, True),
        ([], True),
        ({"limits": {}, "requests": None}, True),
        ({"a": ""}, True),
        ("x", False),
        (0, False),
        (False, False),
        ([{}], False),
        ({"a": 1}, False),
    ],
)
def test_is_unset(value: Any, unset: bool) -> None:
    assert is_unset(value) is unset


# -- zero values of typed objects, timestamps ------------------------------------------


@pytest.mark.parametrize(
    ("key", "desired", "live", "unset"),
    [
        ("minReadySeconds", 0, None, True),  # omitempty int32: stored as no field
        ("hostNetwork", False, None, True),  # omitempty bool
        ("readOnly", False, None, True),
        ("nodePort", 0, 31080, True),  # allocated
        ("healthCheckNodePort", 0, 32015, True),
        ("clusterIP", "", "10.96.0.12", True),
        ("periodSeconds", 0, 10, True),  # defaulted
        ("periodSeconds", 0, 30, False),  # not the default: someone set it
        ("minReadySeconds", 5, None, False),  # only zero values
        ("replicas", 0, None, False),  # a pointer: 0 is kept, and means something
        ("runAsUser", 0, None, False),
        ("automountServiceAccountToken", False, None, False),  # absent means true
        ("allowPrivilegeEscalation", False, None, False),
        ("hostNetwork", False, True, False),  # a different value is drift
        ("clusterIP", "", None, False),  # handled by is_unset, not here
    ],
)
def test_zero_is_unset(key: str, desired: Any, live: Any, unset: bool) -> None:
    assert zero_is_unset(key, desired, live) is unset


@pytest.mark.parametrize(
    ("group", "kind", "typed"),
    [
        ("", "Service", True),
        ("apps", "Deployment", True),
        ("networking.k8s.io", "Ingress", True),
        ("rbac.authorization.k8s.io", "ClusterRole", True),
        ("gateway.networking.k8s.io", "HTTPRoute", False),  # CRDs stored as written
        ("serving.kserve.io", "InferenceService", True),  # KServe's webhook re-encodes it
        ("serving.kserve.io", "ClusterServingRuntime", False),
        ("machinelearning.seldon.io", "SeldonDeployment", False),
    ],
)
def test_is_typed(group: str, kind: str, typed: bool) -> None:
    assert is_typed(group, kind) is typed


def test_yaml_timestamps_equal_the_string_kubectl_kept() -> None:
    # PyYAML reads an unquoted 2024-01-01 as a date; kubectl sends the text as written
    assert scalars_equal(datetime.date(2024, 1, 1), "2024-01-01", "released", None, frozenset())
    assert not scalars_equal(datetime.date(2024, 1, 1), "2024-01-02", "released", None, frozenset())
    moment = datetime.datetime(2001, 12, 14, 21, 59, 43, tzinfo=datetime.UTC)
    assert scalars_equal(moment, "2001-12-14T21:59:43+00:00", "at", None, frozenset())
    assert not scalars_equal(moment, "not a time", "at", None, frozenset())

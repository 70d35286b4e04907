"""The API server's canonical forms: Endpoints repacked, binaryData re-encoded, HPA metrics."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.drift.canonical import canonical_base64, canonical_view, repack
from tests.drift.builders import run
from tests.drift.fixtures import desired, drift, find, live


def ip(value: str, uid: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"ip": value}
    if uid:
        out["targetRef"] = {"kind": "Pod", "name": "p", "uid": uid}
    return out


@pytest.mark.parametrize(
    ("subsets", "repacked"),
    [
        (  # one subset per address, same port: merged, addresses sorted by IP text
            [
                {"addresses": [ip("10.0.0.9")], "ports": [{"port": 1}]},
                {"addresses": [ip("10.0.0.10")], "ports": [{"port": 1}]},
            ],
            [
                {
                    "addresses": [ip("10.0.0.10"), ip("10.0.0.9")],
                    "ports": [{"port": 1, "protocol": "TCP"}],
                }
            ],
        ),
        (  # the same address listed twice is kept once
            [{"addresses": [ip("10.0.0.1"), ip("10.0.0.1")], "ports": [{"port": 80}]}],
            [{"addresses": [ip("10.0.0.1")], "ports": [{"port": 80, "protocol": "TCP"}]}],
        ),
        (  # not ready wins over ready for the same address and port
            [
                {"addresses": [ip("10.0.0.1")], "ports": [{"port": 80}]},
                {"notReadyAddresses": [ip("10.0.0.1")], "ports": [{"port": 80}]},
            ],
            [{"notReadyAddresses": [ip("10.0.0.1")], "ports": [{"port": 80, "protocol": "TCP"}]}],
        ),
        (  # ports that reach different addresses stay in different subsets
            [
                {
                    "addresses": [ip("10.0.0.1")],
                    "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}],
                },
                {"addresses": [ip("10.0.0.2")], "ports": [{"port": 80}]},
            ],
            [
                {
                    "addresses": [ip("10.0.0.1"), ip("10.0.0.2")],
                    "ports": [{"port": 80, "protocol": "TCP"}],
                },
                {"addresses": [ip("10.0.0.1")], "ports": [{"port": 53, "protocol": "UDP"}]},
            ],
        ),
        (  # same IP, other pods: both kept, the one without a targetRef first
            [{"addresses": [ip("10.0.0.1", "b"), ip("10.0.0.1")], "ports": [{"port": 80}]}],
            [
                {
                    "addresses": [ip("10.0.0.1"), ip("10.0.0.1", "b")],
                    "ports": [{"port": 80, "protocol": "TCP"}],
                }
            ],
        ),
    ],
    ids=["merged", "deduplicated", "not-ready-wins", "split-by-ports", "by-uid"],
)
def test_endpoints_subsets_repack_as_the_api_server_stores_them(
    subsets: list[dict[str, Any]], repacked: list[dict[str, Any]]
) -> None:
    assert repack(subsets) == repacked


def test_repacked_subsets_follow_the_live_order_of_the_same_ports() -> None:
    want = {
        "subsets": [
            {
                "addresses": [ip("10.0.0.1")],
                "ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}],
            },
            {"addresses": [ip("10.0.0.2")], "ports": [{"port": 80}]},
        ]
    }
    have = {
        "subsets": [
            {"addresses": [ip("10.0.0.1")], "ports": [{"port": 53, "protocol": "UDP"}]},
            {
                "addresses": [ip("10.0.0.1"), ip("10.0.0.2")],
                "ports": [{"port": 80, "protocol": "TCP"}],
            },
        ]
    }
    view = canonical_view("", "Endpoints", want, have)
    assert [s["ports"][0]["port"] for s in view["subsets"]] == [53, 80]
    assert want["subsets"][0]["ports"][0] == {"port": 80}  # Git's body is never mutated


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("AAECdG9r\nZW5pemVy\n", "AAECdG9rZW5pemVy"),  # line breaks are not data
        ("AAECdG9rZW5pemVy\r\n", "AAECdG9rZW5pemVy"),
        ("", ""),
        ("not base64!", "not base64!"),  # refused by the API server: compared as written
        (None, None),
    ],
)
def test_binary_data_is_compared_as_its_bytes(written: Any, canonical: Any) -> None:
    assert canonical_base64(written) == canonical


def test_other_kinds_and_groups_are_left_as_git_wrote_them() -> None:
    body = {"binaryData": {"a": "YQ==\n"}, "subsets": []}
    assert canonical_view("", "Secret", body, {}) is body
    assert canonical_view("example.com", "ConfigMap", body, {}) is body


# -- HPA metrics: a set, keyed by what each one measures --------------------------------------

HPA = "argocd-hpa-metrics-order.yaml"


def metrics(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = find(objects, "HorizontalPodAutoscaler", "example")["spec"][
        "metrics"
    ]
    return found


def test_a_metric_added_live_is_drift_on_the_list() -> None:
    have = live(HPA)
    metrics(have).append(
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "queue_depth"},
                "target": {"type": "AverageValue", "averageValue": "30"},
            },
        }
    )
    [finding] = drift(desired(HPA), have).findings
    assert (finding.path, finding.drift_class) == ("/spec/metrics", "scale")
    assert len(finding.actual) == 3


def test_a_metric_gone_live_is_drift_at_its_git_index() -> None:
    have = live(HPA)
    del metrics(have)[1]  # cpu, Git's first metric
    [finding] = drift(desired(HPA), have).findings
    assert (finding.path, finding.actual) == ("/spec/metrics/0", None)
    assert finding.expected["resource"]["name"] == "cpu"


def test_metrics_of_another_shape_are_compared_by_position() -> None:
    want = {
        "apiVersion": "example.com/v1",
        "kind": "Report",
        "metadata": {"name": "r", "namespace": "ml"},
    }
    have = {**want, "spec": {"metrics": ["f1", "auc"]}}
    want = {**want, "spec": {"metrics": ["auc", "f1"]}}
    [finding] = run([want], [have]).findings
    assert finding.path == "/spec/metrics"

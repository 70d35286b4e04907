"""Which known findings the three readers return: the same findings, in the same order, for
every filter (`auditor findings --open --cluster C --namespace 'GLOB'`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from auditor.model import Finding, ResourceRef
from auditor.store import Store
from tests.conftest import run_cli
from tests.store.factories import make_finding, make_run


def placed(name: str, cluster: str, namespace: str, check: str = "drift.changed") -> Finding:
    finding = make_finding(name)
    ref = ResourceRef(cluster, finding.ref.api_version, finding.ref.kind, namespace, name)
    message = f"{cluster} {namespace}/{name}"
    return dataclasses.replace(finding, ref=ref, message=message, check=check)


EU_ML = placed("fraud", "prod-eu", "ml")
EU_SHADOW = placed("fraud", "prod-eu", "ml-shadow", check="drift.missing")
US_ML = placed("ranker", "prod-us", "ml")
US_TEAM = placed("churn", "prod-us", "team-a")
EVERY = (EU_ML, EU_SHADOW, US_ML, US_TEAM)


@pytest.fixture
def placed_store(store: Store) -> Store:
    store.record_run(make_run("r1"), findings=list(EVERY), exit_code=1)
    return store


def read_three_ways(store: Store, **filters: object) -> list[str]:
    """The fingerprints each reader returns, held to be the same list."""
    models = [item.finding.fingerprint for item in store.known_findings(**filters)]  # type: ignore[arg-type]
    lines = [line.fingerprint for line in store.known_finding_lines(**filters)]  # type: ignore[arg-type]
    texts = [json.loads(t)["fingerprint"] for t in store.known_findings_json(**filters)]  # type: ignore[arg-type]
    assert models == lines == texts
    return models


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, EVERY),
        ({"cluster": "prod-us"}, (US_ML, US_TEAM)),
        ({"namespace": "ml"}, (EU_ML, US_ML)),  # a glob without wildcards is the name itself
        ({"namespace": "ml*"}, (EU_ML, EU_SHADOW, US_ML)),
        ({"namespace": "ml-*"}, (EU_SHADOW,)),
        ({"cluster": "prod-eu", "namespace": "ml*"}, (EU_ML, EU_SHADOW)),
        ({"cluster": "prod-us", "namespace": "ml-*", "open_only": True}, ()),
        ({"cluster": "nowhere"}, ()),
        ({"check": "drift.missing"}, (EU_SHADOW,)),
        ({"check": "drift.*", "namespace": "ml"}, (EU_ML, US_ML)),
        ({"check": "policy.*"}, ()),
    ],
)
def test_cluster_namespace_and_check_keep_the_findings_they_name(
    placed_store: Store, filters: dict[str, object], expected: tuple[Finding, ...]
) -> None:
    found = read_three_ways(placed_store, **filters)
    assert sorted(found) == sorted(f.fingerprint for f in expected)


def test_a_misspelt_filter_is_refused_rather_than_ignored(placed_store: Store) -> None:
    with pytest.raises(TypeError, match="unknown filter 'namspace'"):
        placed_store.known_finding_lines(namspace="ml")  # type: ignore[call-arg]


def test_findings_cli_filters_by_check_cluster_and_namespace_glob(
    placed_store: Store, store_path: Path
) -> None:
    args = ("findings", "--store", str(store_path), "--open")
    shown = run_cli(*args, "--cluster", "prod-eu", "--namespace", "ml-*", "-o", "json")
    assert shown.code == 0, shown.err
    assert [f["fingerprint"] for f in json.loads(shown.out)["findings"]] == [EU_SHADOW.fingerprint]
    text = run_cli(*args, "--namespace", "ml")
    assert text.code == 0, text.err
    assert {EU_ML.fingerprint, US_ML.fingerprint} == {
        f.fingerprint for f in EVERY if f.fingerprint in text.out
    }
    assert "2 findings" in text.err
    missing = run_cli(*args, "--check", "drift.missing", "-o", "json")
    assert [f["check"] for f in json.loads(missing.out)["findings"]] == ["drift.missing"]

    refused = run_cli(*args[:3], "--admission", "--cluster", "prod-eu")
    assert refused.code == 2 and "--cluster" in refused.err and "Traceback" not in refused.err

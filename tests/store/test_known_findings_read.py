"""`auditor findings` reads only what it shows: the lines' values and the JSON SQLite makes
are exactly what the model values of `known_findings` give."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from auditor.model import ChangedBy, Finding, ResourceRef
from auditor.store import Store
from tests.reports import builders
from tests.store.factories import make_run

ODD = [
    # no cluster (the audited commit), unicode, a time with microseconds, who changed it,
    # printf directives
    Finding(
        category="drift",
        check="drift.unmanaged",
        severity="info",
        ref=ResourceRef("", "v1", "ConfigMap", "", "größe-\u2603"),
        path="",
        # a value is never read as a format: SQLite's format() puts the JSON together
        message="ConfigMap größe-\u2603: not in Git \u2603 100%s %d %%",
        expected=None,
        actual={"a": [1, 2.5, None, True], "ü": '"quoted" \\ back'},
        drift_class="unmanaged",
        changed_by=ChangedBy("kubectl-edit", "Update", "2026-11-23T16:50:00Z"),
    ),
    Finding(
        category="provenance",
        check="provenance.digest_mismatch",
        severity="critical",
        ref=builders.ref("ranker"),
        path="/spec",
        message="",
        expected=[],
        actual={},
        controls=("A-1", "B-2"),
        details={"nested": {"x": [1, {"y": None}]}, "n": 1e100},
    ),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    path = Path(tmp_path_factory.mktemp("known")) / "audit.db"
    builders.record_runs(path)
    with Store.open(path) as opened:
        run = make_run("r5", minutes=300)
        run = dataclasses.replace(run, started=run.started + timedelta(microseconds=123456))
        opened.record_run(run, findings=[*ODD, builders.HOSTILE], exit_code=1)
    return Store.open(path)


FILTERS: list[dict[str, Any]] = [
    {},
    {"open_only": True},
    {"severity": "high"},
    {"category": "drift", "open_only": True},
    {"since": builders.make_run("x", minutes=120).started},
]


@pytest.mark.parametrize("filters", FILTERS)
def test_the_json_sqlite_makes_is_the_model_values_json(
    store: Store, filters: dict[str, Any]
) -> None:
    expected = [item.to_json() for item in store.known_findings(**filters)]
    made = [json.loads(text) for text in store.known_findings_json(**filters)]
    assert made == expected
    # key for key in the same order, too
    assert [list(m) for m in made] == [list(e) for e in expected]


def test_every_kind_of_value_is_covered(store: Store) -> None:
    known = [item.to_json() for item in store.known_findings()]
    assert {"cluster", "controls", "details"} <= {k for item in known for k in item}
    assert any(item["changed_by"] for item in known)
    assert any("cluster" not in item for item in known)
    assert {item["status"] for item in known} == {"open", "resolved"}
    assert any(".123456+00:00" in item["first_seen"] for item in known)


@pytest.mark.parametrize("filters", FILTERS)
def test_the_lines_are_the_model_values(store: Store, filters: dict[str, Any]) -> None:
    known = store.known_findings(**filters)
    lines = store.known_finding_lines(**filters)
    assert [
        (
            line.severity, line.check, line.cluster, line.kind, line.namespace, line.name,
            line.path, line.message, line.fingerprint, line.first_seen, line.runs_seen,
            line.open_since, line.resolved_at, line.status,
        )
        for line in lines
    ] == [
        (
            f.severity, f.check, f.ref.cluster, f.ref.kind, f.ref.namespace, f.ref.name,
            f.path, f.message, f.fingerprint, h.first_seen, h.runs_seen, h.open_since,
            h.resolved_at, h.status,
        )
        for f, h in ((item.finding, item.history) for item in known)
    ]  # fmt: skip
    assert lines


def test_json_columns_that_are_not_json_read_as_the_lenient_reader_reads_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.db"
    builders.record_runs(path)
    with Store.open(path) as opened:
        opened.db.execute("UPDATE finding_contents SET actual = 'not json' WHERE id = 1")
        expected = [item.to_json() for item in opened.known_findings()]
        assert [json.loads(t) for t in opened.known_findings_json()] == expected

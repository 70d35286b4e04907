"""Reading rows back builds model values without their `__init__` (auditor.store.values.builder):
what it builds must be exactly what the class's own constructor builds."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from auditor.model import ChangedBy, Finding, FindingHistory, ReportFinding, ResourceRef
from auditor.store.values import (
    FINDING_COLUMNS,
    builder,
    finding_from,
    history_from,
    report_finding,
)


def _fields(value: object) -> dict[str, object]:
    # every field, the ones left out of == (details, recorded_fingerprint) included
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}  # type: ignore[arg-type]


@pytest.mark.parametrize("by_setters", [False, True], ids=["class swapped", "slot by slot"])
@pytest.mark.parametrize("cls", [ResourceRef, Finding, FindingHistory, ReportFinding])
def test_a_built_value_has_every_field_its_constructor_sets(cls: type, by_setters: bool) -> None:
    values = [object() for _ in dataclasses.fields(cls)]
    built = builder(cls, by_setters=by_setters)(*values)
    assert type(built) is cls
    assert [getattr(built, f.name) for f in dataclasses.fields(cls)] == values
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, dataclasses.fields(cls)[0].name, 1)  # still frozen
    with pytest.raises(TypeError):
        builder(cls, by_setters=by_setters)(*values[:-1])  # never a field left unset


def test_a_finding_read_back_is_the_finding_its_constructor_makes() -> None:
    row = dict.fromkeys(FINDING_COLUMNS)
    row.update(
        category="drift",
        check_id="drift.changed",
        severity="high",
        cluster="prod",
        api_version="apps/v1",
        kind="Deployment",
        namespace="ml",
        name="scorer",
        path="/spec/replicas",
        message="Deployment ml/scorer: replicas",
        expected="2",
        actual='"x\\u00e9"',
        **{"class": "scale"},
        changed_by_manager="kubectl",
        changed_by_operation="Update",
        changed_by_time="2026-11-20T02:13:00Z",
        details='{"k": [1, null]}',
        controls='["CIS-1"]',
        fingerprint="f" * 32,
    )
    read = finding_from([row[c] for c in FINDING_COLUMNS])
    made = Finding(
        category="drift",
        check="drift.changed",
        severity="high",
        ref=ResourceRef("prod", "apps/v1", "Deployment", "ml", "scorer"),
        path="/spec/replicas",
        message="Deployment ml/scorer: replicas",
        expected=2,
        actual="x\u00e9",
        drift_class="scale",
        changed_by=ChangedBy("kubectl", "Update", "2026-11-20T02:13:00Z"),
        details={"k": [1, None]},
        controls=("CIS-1",),
        recorded_fingerprint="f" * 32,
    )
    assert _fields(read) == _fields(made)
    assert read == made and hash(read) == hash(made) and read.fingerprint == "f" * 32
    assert _fields(read.ref) == _fields(made.ref)

    history = history_from(
        ["2026-11-01T02:00:00.000000Z", "2026-11-03T02:00:00.000000Z", 3, None, None]
    )
    day = datetime(2026, 11, 1, 2, tzinfo=UTC)
    assert _fields(history) == _fields(
        FindingHistory(day, day.replace(day=3), 3, open_since=None, resolved_at=None)
    )
    assert _fields(report_finding(read, history)) == _fields(ReportFinding(made, history))

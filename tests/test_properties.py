"""Properties that hold for every object, not only the ones we thought of (hypothesis).

- The drift of an object against itself is empty.
- Rewriting an object into an equivalent form the API server could return (quantities in
  another unit, keyed lists in another order, a port as a number or a string, an empty map
  dropped) is never drift.
- A real change is always found, at its path: the two properties above are not vacuous.
- The store gives back every finding exactly as it was written, whatever its text and values.
"""

from __future__ import annotations

import copy
import random
import sqlite3
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.model import Finding, ResourceRef
from auditor.store import Store
from tests.drift.builders import run
from tests.store.factories import make_run

NAME = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
# Quantities and an equivalent spelling of each, as Kubernetes canonicalises them.
CPU = st.sampled_from([("1", "1000m"), ("500m", "0.5"), ("250m", "0.25"), ("2", "2000m")])
MEMORY = st.sampled_from(
    [("1Gi", "1024Mi"), ("512Mi", "524288Ki"), ("2G", "2000M"), ("1Mi", "1024Ki")]
)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)


@st.composite
def deployments(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Deployment as Git writes it, and an equivalent one as a server could return it."""
    names = draw(st.lists(NAME, min_size=1, max_size=4, unique=True))
    containers, equivalent = [], []
    for name in names:
        cpu, memory = draw(CPU), draw(MEMORY)
        env_names = draw(st.lists(NAME.map(str.upper), max_size=4, unique=True))
        env = [{"name": e.replace("-", "_"), "value": draw(TEXT)} for e in env_names]
        port = draw(st.integers(1, 65535))
        containers.append(
            {
                "name": name,
                "image": f"registry.example.com/{name}:{draw(st.integers(1, 99))}",
                "env": env,
                "ports": [{"containerPort": port, "name": "http"}],
                "resources": {"requests": {"cpu": cpu[0], "memory": memory[0]}},
            }
        )
        shuffled_env = copy.deepcopy(env)
        random.Random(draw(st.integers())).shuffle(shuffled_env)
        equivalent.append(
            {
                "name": name,
                "image": containers[-1]["image"],
                "env": shuffled_env,
                "ports": [{"containerPort": port, "name": "http", "protocol": "TCP"}],
                "resources": {"requests": {"cpu": cpu[1], "memory": memory[1]}},
            }
        )
    random.Random(draw(st.integers())).shuffle(equivalent)
    labels = draw(st.dictionaries(NAME, NAME, max_size=3))
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": draw(NAME), "namespace": "ml", "labels": labels},
        "spec": {
            "replicas": draw(st.integers(0, 10)),
            "template": {"spec": {"containers": containers}},
        },
    }
    live = copy.deepcopy(body)
    live["spec"]["template"]["spec"]["containers"] = equivalent
    live["metadata"]["annotations"] = {}  # an empty map the server may add or drop
    return body, live


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deployments())
def test_an_object_never_drifts_from_itself(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    body, _ = pair
    assert run([body], [copy.deepcopy(body)]).findings == ()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deployments())
def test_an_equivalent_form_is_never_drift(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    body, live = pair
    findings = run([body], [live]).findings
    assert findings == (), [f.to_json() for f in findings]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deployments(), st.data())
def test_a_real_change_is_always_found_at_its_path(
    pair: tuple[dict[str, Any], dict[str, Any]], data: st.DataObject
) -> None:
    body, live = pair
    containers = live["spec"]["template"]["spec"]["containers"]
    changed = data.draw(st.sampled_from(containers))
    changed["image"] += "-hotfix"
    (finding,) = run([body], [live]).findings
    index = [c["name"] for c in body["spec"]["template"]["spec"]["containers"]].index(
        changed["name"]
    )
    assert finding.check == "drift.changed"
    assert finding.path == f"/spec/template/spec/containers/{index}/image"
    assert finding.actual == changed["image"]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)


@st.composite
def findings(draw: st.DrawFn) -> Finding:
    ref = ResourceRef("prod", "v1", "ConfigMap", draw(NAME), draw(NAME))
    return Finding(
        category="drift",
        check="drift.changed",
        severity=draw(st.sampled_from(["critical", "high", "medium", "low", "info"])),
        ref=ref,
        path="/data/" + draw(NAME),
        message=draw(TEXT),
        expected=draw(JSON),
        actual=draw(JSON),
        drift_class="config",
        details={"note": draw(TEXT)},
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(findings(), max_size=5, unique_by=lambda f: f.fingerprint))
def test_the_store_gives_back_every_finding_as_written(
    tmp_path_factory: Any, written: list[Finding]
) -> None:
    path = Path(tmp_path_factory.mktemp("roundtrip")) / "audit.db"
    with Store.open(path) as store:
        store.record_run(make_run("r1"), findings=written, exit_code=1)
        rows = store.findings("r1")
    assert len(rows) == len(written)
    by_fingerprint = {r["fingerprint"]: r for r in rows}
    for finding in written:
        row = by_fingerprint[finding.fingerprint]
        assert (row["message"], row["severity"], row["path"]) == (
            finding.message,
            finding.severity,
            finding.path,
        )
        assert (row["expected"], row["actual"]) == (finding.expected, finding.actual)
        assert row["details"] == dict(finding.details)
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"

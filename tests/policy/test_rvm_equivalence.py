"""The shipped library through regorus's compiled VM (RVM) gives exactly what the interpreter
gives.

Every shipped module compiled (with regorus directly) with every policy's rules and every rule
of the library as entry points; on the equivalence corpus (the seeded inputs
test_library_equivalence.py uses, with and without parameters), the shipped example, Seldon
graphs around the depth the library reads, and the input and data of every `with input as`
in the shipped `*_test.rego` cases, every entry point must have the same value, undefined and
errors included. docs/rvm.md says which constructs the library avoids for the VM and why.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from auditor.policy.loader import load_policy_files
from tests.conftest import PROJECT
from tests.policy.library_equivalence import SHIPPED
from tests.policy.rvm_compare import SideBySide, case_inputs, shipped, with_overrides
from tests.policy.serving_corpus import SERVING_PARAMS, Corpus, deep_graph_inputs


@pytest.fixture(scope="module")
def both() -> SideBySide:
    modules, data, entry_points = shipped()
    return SideBySide(modules, data, entry_points)


def _differences(both: SideBySide, docs: list[Any], data: dict[str, Any]) -> list[str]:
    both.set_data(data)
    out = []
    for i, doc in enumerate(docs):
        out.extend(both.differences(doc, f"input {i}: "))
    return out


def test_every_policy_and_library_rule_is_an_entry_point(both: SideBySide) -> None:
    packages = {
        line.split()[1]
        for path in SHIPPED.rglob("*.rego")
        if not path.name.endswith("_test.rego") and path.parent.name != "lib"
        for line in path.read_text().splitlines()
        if line.startswith("package ")
    }
    assert len(packages) == 12
    entered = {rule.rsplit(".", 1)[0].removeprefix("data.") for rule in both.entry_points}
    assert entered == {*packages, "auditor.lib.serving"}
    for rule in ("deny", "lib.serving.containers", "lib.serving.model_uris", "lib.serving.class"):
        assert any(p.endswith(rule) for p in both.entry_points), rule


def test_same_on_the_corpus(both: SideBySide) -> None:
    _, data, _ = shipped()
    assert _differences(both, Corpus(seed=13).inputs(200), data) == []


def test_same_with_every_parameter_set_otherwise(both: SideBySide) -> None:
    _, data, _ = shipped()
    assert _differences(both, Corpus(seed=1313).inputs(80), {**data, **SERVING_PARAMS}) == []


def test_same_on_the_example_nothing_and_deep_seldon_graphs(both: SideBySide) -> None:
    _, data, _ = shipped()
    example = json.loads((SHIPPED / "examples" / "input.json").read_text())
    no_resource = {**copy.deepcopy(example), "resource": None}
    docs = [example, {}, no_resource, *deep_graph_inputs(example)]
    assert _differences(both, docs, data) == []
    # and with the bundled example audit's parameters (examples/policy-params.yaml)
    params = load_policy_files(
        [str(SHIPPED)], data_files=[str(PROJECT / "examples" / "policy-params.yaml")], hooks=()
    ).data
    assert params != data
    assert _differences(both, docs, dict(params)) == []


def test_same_on_the_input_of_every_policy_test_case(both: SideBySide) -> None:
    _, data, _ = shipped()
    cases = case_inputs(SHIPPED)
    sites = sum(path.read_text().count(" with input as ") for path in SHIPPED.rglob("*_test.rego"))
    # every `with input as` of the cases was reached and read back (some in loops, more)
    assert sites > 200
    assert len(cases) >= sites
    out = []
    by_data: dict[str, list[tuple[int, Any]]] = {}
    for i, (doc, overrides) in enumerate(cases):
        by_data.setdefault(json.dumps(overrides, sort_keys=True), []).append((i, doc))
    for overrides, docs in by_data.items():
        both.set_data(with_overrides(data, json.loads(overrides)))
        for i, doc in docs:
            out.extend(both.differences(doc, f"case {i} {overrides}: "))
    assert out == []


def test_the_comparison_sees_a_difference() -> None:
    # the shipped library with one more rule that binds an undefined value with `:=`: the VM
    # keeps it (test_rvm_divergences.py), and the comparison must say so
    modules, data, entry_points = shipped()
    probe = "package probe\n\nimport rego.v1\n\nr contains x if x := input.resource.nope\n"
    both = SideBySide([*modules, ("probe.rego", probe)], data, [*entry_points, "data.probe.r"])
    found = both.differences({"resource": {"kind": "Pod"}})
    assert found == ['data.probe.r: rvm ["<undefined>"], interpreter []']

"""The shipped serving library gives exactly what the reference library gives.

policies/lib/serving.rego is written for speed; tests/policy/reference/lib/serving.rego is the
plain form it replaced. Over a seeded corpus of serving objects (every kind the library models,
the values that decide each of its branches, and values of the wrong type), every shipped
policy must reach the same result with the same messages and details under either, and every
rule of the library must have the same value.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT
from tests.policy.library_equivalence import library_rules, mismatches, reference_tree
from tests.policy.serving_corpus import SERVING_PARAMS, Corpus, deep_graph_inputs


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return reference_tree(tmp_path_factory.mktemp("reference"))


def test_the_reference_library_is_complete_and_differs_from_the_shipped_one() -> None:
    # the comparison reads every rule of the reference library, the hot ones among them
    rules = library_rules()
    for name in ("containers", "pod_specs", "model_uris", "workload_server_reasons", "class"):
        assert name in rules
    shipped = (PROJECT / "policies" / "lib" / "serving.rego").read_text()
    reference = (Path(__file__).parent / "reference" / "lib" / "serving.rego").read_text()
    assert shipped != reference


def test_same_results_messages_and_library_values_on_the_corpus(reference: Path) -> None:
    docs = Corpus(seed=13).inputs(200)
    assert mismatches(reference, docs, {}) == []


def test_same_with_every_parameter_set_otherwise(reference: Path) -> None:
    docs = Corpus(seed=1313).inputs(80)
    assert mismatches(reference, docs, SERVING_PARAMS) == []


def test_same_on_the_shipped_example_and_on_nothing_at_all(reference: Path) -> None:
    example = json.loads((PROJECT / "policies" / "examples" / "input.json").read_text())
    empty: dict[str, Any] = {}
    no_resource = copy.deepcopy(example)
    no_resource["resource"] = None
    assert mismatches(reference, [example, empty, no_resource], {}) == []


def test_same_on_seldon_graphs_at_and_beyond_the_depth_the_library_reads(
    reference: Path,
) -> None:
    example = json.loads((PROJECT / "policies" / "examples" / "input.json").read_text())
    assert mismatches(reference, deep_graph_inputs(example), {}) == []


def test_the_comparison_sees_a_difference(tmp_path: Path) -> None:
    # the same comparison against a reference with one branch changed: it must report it
    broken = reference_tree(tmp_path)
    library = broken / "lib" / "serving.rego"
    text = library.read_text()
    rule = "is_model_server_workload if count(workload_server_reasons) > 0"
    assert rule in text
    library.write_text(text.replace(rule, rule.replace("> 0", "> 1")))
    found = mismatches(broken, Corpus(seed=13).inputs(60), {})
    assert any("is_model_server_workload" in line for line in found), found
    assert any("auditor.model.uri_annotation" in line for line in found), found

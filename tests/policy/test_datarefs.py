"""Which documents under `data` and which keys of `input` a policy may read; `data.inventory`
loaded only when something may read it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import regorus

from auditor.policy import gatekeeper
from auditor.policy.datarefs import ANY, input_keys, module_data_keys
from auditor.policy.engine import RegoModule
from auditor.policy.loader import load_policy_files, with_inventory
from tests.policy.rego import write

ROOT = Path(__file__).resolve().parents[2]
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}}


def keys(body: str, *, v0: bool = False) -> set[str | None]:
    header = "package t\n" if v0 else "package t\n\nimport rego.v1\n\n"
    return module_data_keys(RegoModule(source="t.rego", package="t", text=header + body, v0=v0))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("x := data.inventory.namespace", {"inventory"}),
        ('x := data["inventory"]', {"inventory"}),
        ("import data.inventory as inv\n\nx := inv", {"inventory"}),
        ("x := data.auditor.params.a", {"auditor"}),
        ("x := data.a[data.b]", {"a", "b"}),
        ("x := 1", set()),
    ],
)
def test_a_reference_reads_the_document_it_names(body: str, expected: set[str]) -> None:
    assert keys(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        "x := data",
        "x := walk(data)",
        'x := data[k] if k := "inventory"',
        "x := {k | some k, _ in data}",
        "f(d) := 1\n\nx := f(data)",
        "import data\n\nx := 1",
    ],
)
def test_data_whole_or_by_a_computed_key_may_read_any_document(body: str) -> None:
    assert ANY in keys(body)


def test_v0_modules_are_read_in_their_own_syntax() -> None:
    assert keys('deny[msg] { data.inventory.cluster[_]; msg := "m" }\n', v0=True) == {"inventory"}


def test_the_shipped_library_reads_only_its_parameters() -> None:
    policy_set = load_policy_files([str(ROOT / "policies")], hooks=(gatekeeper.HOOKS,))
    assert set().union(*(module_data_keys(m) for m in policy_set.modules)) == {"auditor"}


def test_inventory_is_left_out_when_no_policy_may_read_it(tmp_path: Path) -> None:
    write(tmp_path, "p.rego", 'package p\nimport rego.v1\ndeny contains "x" if data.auditor.on\n')
    policy_set = load_policy_files([str(tmp_path)], hooks=(gatekeeper.HOOKS,))
    assert "inventory" not in with_inventory(policy_set, [CONFIGMAP]).data


@pytest.mark.parametrize(
    "rule",
    [
        'deny contains "x" if count(data.inventory.namespace) > 0',
        'deny contains "x" if { some k, _ in data; k == "inventory" }',
    ],
)
def test_inventory_is_loaded_for_a_plain_policy_that_may_read_it(tmp_path: Path, rule: str) -> None:
    write(tmp_path, "p.rego", f"package p\nimport rego.v1\n{rule}\n")
    policy_set = load_policy_files([str(tmp_path)], hooks=(gatekeeper.HOOKS,))
    inventory = with_inventory(policy_set, [CONFIGMAP]).data["inventory"]
    assert inventory["namespace"]["n"]["v1"]["ConfigMap"]["c"] == CONFIGMAP


def read_of_input(body: str) -> frozenset[str] | None:
    engine = regorus.Engine()
    engine.add_policy("t.rego", "package t\n\nimport rego.v1\n\n" + body)
    return input_keys(json.loads(engine.get_ast_as_json()))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("x := input.resource.kind", {"resource"}),
        ('x := input["model"].uri', {"model"}),
        ('x := object.get(input, "drift", [])', {"drift"}),
        ('x := object.get(input, ["cluster", "name"], "")', {"cluster"}),
        ("import input.git\n\nx := git.commit", {"git"}),
        ("x := input.a[input.b]", {"a", "b"}),
        ("x := 1", set()),
        # the input whole, or a key computed at run time: any key may be read
        ("x := input", None),
        ("x := count(input)", None),
        ("x := [k | some k, _ in input]", None),
        ("x := input[input.key]", None),
        ('x := object.get(input, input.path, "")', None),
        ('x := object.get(input, [], "")', None),
        ("f(doc) := doc.a\n\nx := f(input)", None),
        ("x := walk(input)", None),
        ("x := json.marshal(input)", None),
    ],
)
def test_the_input_keys_a_module_may_read(body: str, expected: set[str] | None) -> None:
    assert read_of_input(body) == (None if expected is None else frozenset(expected))


def test_the_shipped_library_reads_five_keys_of_an_audit_input() -> None:
    # what an audit input carries besides them (the live object again as `live`, `desired`,
    # `git`, ...) is not given to the engine: a third of the JSON text of a Deployment's input
    engine = regorus.Engine()
    for path in sorted((ROOT / "policies").rglob("*.rego")):
        if not path.name.endswith("_test.rego"):
            engine.add_policy(str(path), path.read_text())
    assert input_keys(json.loads(engine.get_ast_as_json())) == {
        "resource",
        "model",
        "provenance",
        "drift",
        "cluster",
    }

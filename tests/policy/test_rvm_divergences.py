"""Where regorus's compiled VM (RVM) and its interpreter disagree, each pinned small.

Each defect is a test that asserts what the VM does today next to what the interpreter does
(which is what OPA does), so a regorus upgrade that fixes one fails its test: then the test
and docs/rvm.md are updated, and the library's workaround (named in the test) may go. The
constructs the library uses instead are pinned too: they must agree. Found by running the
shipped library's policies over the equivalence corpus, the inputs of the `*_test.rego`
cases and the benchmark's 10,000 audit inputs through both (test_rvm_equivalence.py,
bench/policy/equivalence.py --rvm), then cutting each difference down.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.policy.rvm_compare import SideBySide, program

UNDEFINED = "<undefined>"  # how both answer for an undefined rule


def run(rules: str, input_doc: Any = None) -> tuple[Any, Any]:
    """(RVM, interpreter) value of `r` in a module of `rules`."""
    text = f"package probe\n\nimport rego.v1\n\n{rules}\n"
    both = SideBySide([("probe.rego", text)], {}, ["data.probe.r"])
    [(_, vm, interp)] = both.values({} if input_doc is None else input_doc)
    return vm, interp


# -- what the VM cannot compile


def test_walk_does_not_compile() -> None:
    # lib/serving.rego read Seldon graphs with walk; it now reads them level by level
    # (graph_below), to graph_depth, and model/allowed_sources denies a deeper graph
    text = "package probe\n\nimport rego.v1\n\nr contains p if walk(input, [p, _])\n"
    with pytest.raises(RuntimeError, match="walk loops are not yet supported"):
        program([("probe.rego", text)], {}, ["data.probe.r"])


def test_with_does_not_compile() -> None:
    # so the `*_test.rego` cases cannot run on the VM; their inputs are compared instead
    text = 'package probe\n\nimport rego.v1\n\nq := input.x\n\nr if q with input as {"x": 1}\n'
    with pytest.raises(RuntimeError, match="`with` keyword is not supported"):
        program([("probe.rego", text)], {}, ["data.probe.r"])


def test_only_rego_v1_modules_compile() -> None:
    # the Python binding has no v0 switch: v0 modules (most Gatekeeper templates) do not parse
    text = "package probe\n\nr[x] {\n\tx := input.x\n}\n"
    with pytest.raises(RuntimeError, match="`if` keyword is required"):
        program([("probe.rego", text)], {}, ["data.probe.r"])


# -- an undefined value is kept where Rego drops it


def test_assigning_undefined_does_not_fail_the_body() -> None:
    # `x := <undefined>` binds it and the body goes on
    assert run("r contains 1 if x := input.missing") == ([1], [])
    assert run("r := 1 if x := input.missing.deeper") == (1, UNDEFINED)
    assert run('r := 1 if x := sprintf("%v", [input.missing])') == (1, UNDEFINED)
    # lib/serving.rego class, canary_bounds' seldon_main, allowed_sources' longest_allowed:
    # the else is never reached, so a rule with a default is undefined
    assert run("r := x if { x := input.missing } else := 0") == (UNDEFINED, 0)
    assert run("m := {}\n\nr := m.b if { true } else := 0") == (UNDEFINED, 0)
    # the form a generated batch rule takes (one value per rule, null for an undefined one)
    assert run("q := 1 if input.x == 2\n\nr := x if { x := q } else := null") == (UNDEFINED, None)


def test_an_undefined_head_is_added() -> None:
    # a set or object rule gains "<undefined>": runtime/resources' deny had one for every
    # InferenceService, lib/serving's workload_arg_uris (and so model_uris) one for many
    # workloads, model_signed's authorities one for a signer of the wrong type
    assert run("r contains x if x := input.missing") == ([UNDEFINED], [])
    assert run("f(x) := 1 if x == 1\n\nr contains y if y := f(2)") == ([UNDEFINED], [])
    ps = {"ps": [{"n": "a"}, {"n": "b", "t": 7}]}
    assert run("r[p.n] := x if {\n\tsome p in input.ps\n\tx := p.t\n}", ps) == (
        {"a": UNDEFINED, "b": 7},
        {"b": 7},
    )


def test_an_else_chain_where_no_branch_holds_is_a_value() -> None:
    # runtime/resources gpu_reason(c): the brief's "<undefined>" in deny; the same defect as
    # above (a function's undefined result bound with `:=`), not one of else chains
    chain = "f(x) := 1 if x == 1\n\nelse := 2 if x == 2"
    assert run(f"{chain}\n\nr contains y if y := f(3)") == ([UNDEFINED], [])
    assert run(f"{chain}\n\nr contains y if y := f(2)") == ([2], [2])


def test_an_undefined_comprehension_term_is_kept() -> None:
    # canary_bounds' traffics: a predictor without traffic was an element, so the main
    # predictor (the most traffic) became undefined and no canary was checked
    ps = {"ps": [{"n": "a"}, {"n": "b", "t": 7}]}
    assert run("r := [p.t | some p in input.ps]", ps) == ([UNDEFINED, 7], [7])
    assert run("r := {p.t | some p in input.ps}", ps) == ([7, UNDEFINED], [7])
    assert run("r := {p.n: p.t | some p in input.ps}", ps) == ({"a": UNDEFINED, "b": 7}, {"b": 7})
    assert run("r := [x | some p in input.ps; x := p.t]", ps) == ([UNDEFINED, 7], [7])


# -- a failed loop ends an else chain


def test_an_else_after_a_body_whose_loop_finds_nothing_is_not_taken() -> None:
    # runtime/resources gpu_reason(c): a container whose runtime matched no keyword never
    # reached the image branch; the library's branches now call a function that iterates
    assert run("r := 1 if {\n\tsome k in [1, 2]\n\tk == 3\n} else := 0") == (UNDEFINED, 0)
    assert run('r := 1 if {\n\tsome k, v in {"a": 1}\n\tv == 3\n} else := 0') == (UNDEFINED, 0)
    assert run("s := {1, 2}\n\nr := 1 if {\n\ts[x]\n\tx > 5\n} else := 0") == (UNDEFINED, 0)
    looping = "f(x) := 1 if {\n\tsome k in [1, 2]\n\tk == x\n} else := 0"
    assert run(f"{looping}\n\nr := [f(1), f(3)]") == (UNDEFINED, [1, 0])
    assert run(f"{looping}\n\nr := f(1)") == (1, 1)


# -- an undefined argument for a `_` parameter


def test_an_undefined_argument_for_a_wildcard_parameter_does_not_make_the_call_undefined() -> None:
    # the VM runs the function (found in gatekeeper-library's psp users template,
    # `not accept_value(rule, value, params.ranges)` with accept_value("RunAsAny", _, _)); the
    # library's `_` parameters (model_format, arg_model_uri) always get defined arguments
    assert run("f(_) := true\n\nr := 1 if not f(input.missing)") == (UNDEFINED, 1)
    assert run("f(x, _) := true\n\nr := 1 if not f(1, input.missing)") == (UNDEFINED, 1)
    assert run("f(_, _) := true\n\nr := 2 if not f(1, input.missing)\n\nelse := 3") == (3, 2)
    # a named parameter is fine
    assert run("f(_, y) := true\n\nr := 1 if not f(1, input.missing)") == (1, 1)


# -- the interpreter's own: a head reference that is undefined for some element


def test_the_interpreter_errors_on_an_undefined_reference_in_a_set_rule_head() -> None:
    # OPA gives [7]; not a VM defect, but one reason the library binds head values first
    ps = {"ps": [{"n": "a"}, {"n": "b", "t": 7}]}
    assert run("r contains p.t if some p in input.ps", ps) == ([7, UNDEFINED], ("error",))


# -- what the library writes instead, which both evaluate alike


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        # unification fails on undefined as it should: allowed_sources, model_signed,
        # canary_bounds and lib/serving bind a value that may be undefined with `=`
        ("r contains x if x = input.missing", []),
        ("f(x) := 1 if x == 1\n\nr contains y if y = f(2)", []),
        ("r := x if { x = input.missing } else := 0", 0),
        ("q := 1 if input.x == 2\n\nr := x if { x = q } else := null", None),
        ("r := [x | some p in input.ps; x = p.t]", [7]),
        # lib/serving class: a lookup with a default
        ('r := object.get({"a": 1}, input.k, 0)', 0),
        # gpu_reason: a value for every argument, tested; and no loop in a branch
        (
            'f(x) := "one" if x == 1\n\nelse := "" \n\nr contains y if {\n\ty := f(2)\n\ty != ""\n}',
            [],
        ),
        (
            "any_of(x, ks) if {\n\tsome k in ks\n\tk == x\n}\n\n"
            "f(x) := 1 if any_of(x, [1, 2])\n\nelse := 0\n\nr := [f(1), f(3)]",
            [1, 0],
        ),
        # a body that tests the value before it is kept
        ("r contains x if {\n\tx := input.missing\n\tx != null\n}", []),
    ],
)
def test_the_constructs_the_library_uses_instead_agree(rules: str, expected: Any) -> None:
    ps = {"ps": [{"n": "a"}, {"n": "b", "t": 7}], "k": "z"}
    assert run(rules, ps) == (expected, expected)

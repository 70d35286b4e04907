"""The embedded engine: regorus behind the PolicyEngine contract."""

from __future__ import annotations

import json

import pytest
import regorus

from auditor.policy.embedded import EmbeddedEngine
from auditor.policy.engine import MAX_DEPTH, PolicyEvalError, PolicyLoadError, RegoModule

V1 = RegoModule(
    source="policies/p.rego",
    package="p",
    text="""package p

import rego.v1

deny contains msg if {
	input.replicas > data.limits.replicas
	msg := sprintf("%d replicas", [input.replicas])
}

warn contains {"msg": "w", "path": "/spec"} if input.warn

maybe := 1 if input.defined

conflict := 1 if input.conflict
conflict := 2 if input.conflict

bad_type contains m if m := input.replicas + "a"
""",
)

V0 = RegoModule(
    source="policies/legacy.rego",
    package="legacy",
    v0=True,
    text="""package legacy

deny[msg] {
	input.replicas > 3
	msg := "legacy says too many"
}
""",
)


@pytest.fixture
def engine() -> EmbeddedEngine:
    e = EmbeddedEngine()
    e.load([V1, V0], {"limits": {"replicas": 5}})
    return e


def test_rules_of_v1_and_v0_modules_evaluate_side_by_side(engine: EmbeddedEngine) -> None:
    doc = {"replicas": 7}
    assert engine.evaluate("data.p.deny", doc) == ["7 replicas"]
    assert engine.evaluate("data.legacy.deny", doc) == ["legacy says too many"]
    assert engine.evaluate("data.p.warn", doc) == []


def test_set_of_objects_comes_back_as_json(engine: EmbeddedEngine) -> None:
    assert engine.evaluate("data.p.warn", {"warn": True}) == [{"msg": "w", "path": "/spec"}]


def test_undefined_rule_and_unknown_rule_are_none(engine: EmbeddedEngine) -> None:
    assert engine.evaluate("data.p.maybe", {}) is None
    assert engine.evaluate("data.p.maybe", {"defined": True}) == 1
    assert engine.evaluate("data.p.nothing_here", {}) is None


def test_a_package_path_evaluates_to_its_document(engine: EmbeddedEngine) -> None:
    assert engine.evaluate("data.legacy", {"replicas": 1}) == {"deny": []}


@pytest.mark.parametrize(
    ("rule", "doc", "words"),
    [
        ("data.p.conflict", {"conflict": True}, "conflict"),
        ("data.p.bad_type", {"replicas": 1}, "numeric"),
    ],
)
def test_runtime_errors_raise_policy_eval_error_naming_file_and_line(
    engine: EmbeddedEngine, rule: str, doc: dict[str, object], words: str
) -> None:
    with pytest.raises(PolicyEvalError) as err:
        engine.evaluate(rule, doc)
    assert str(err.value).startswith("policies/p.rego:")
    assert words in str(err.value)
    assert "Stack backtrace" not in str(err.value)


def test_evaluate_many_returns_the_error_in_place_and_the_other_values(
    engine: EmbeddedEngine,
) -> None:
    values = engine.evaluate_many(
        ["data.p.deny", "data.p.conflict", "data.legacy.deny", "data.p.maybe"],
        {"replicas": 9, "conflict": True},
    )
    assert values[0] == ["9 replicas"]
    assert isinstance(values[1], PolicyEvalError)
    assert values[2] == ["legacy says too many"]
    assert values[3] is None


def test_evaluate_many_in_one_batch_equals_rule_by_rule(engine: EmbeddedEngine) -> None:
    rules = ["data.p.deny", "data.p.warn", "data.legacy.deny", "data.p.maybe"]
    for doc in ({"replicas": 9}, {"replicas": 1, "warn": True, "defined": True}, {}):
        assert engine.evaluate_many(rules, doc) == [engine.evaluate(r, doc) for r in rules]


def test_evaluate_many_batches_more_rules_than_fit_on_one_line() -> None:
    # 60 rules with long package names: their batch is far past regorus's 1,024 columns a line
    modules = [
        RegoModule(
            source=f"policies/p{i}.rego",
            package=f"acme.a_rather_long_package_name_for_policies.number_{i}",
            text=f"package acme.a_rather_long_package_name_for_policies.number_{i}\n\n"
            f'import rego.v1\n\ndeny contains "d{i}" if input.x == {i}\n',
        )
        for i in range(60)
    ]
    e = EmbeddedEngine()
    e.load(modules, {})
    rules = [f"data.{m.package}.deny" for m in modules]
    assert len(" ".join(rules)) > 1024
    values = e.evaluate_many(rules, {"x": 7})
    assert values == [["d7"] if i == 7 else [] for i in range(60)]


def test_compile_errors_surface_at_load_with_file_and_line() -> None:
    broken = RegoModule(
        source="policies/unsafe.rego",
        package="unsafe",
        text="package unsafe\n\nimport rego.v1\n\ndeny contains msg if { x == 1 }\n",
    )
    with pytest.raises(PolicyLoadError) as err:
        EmbeddedEngine().load([V1, broken], {})
    assert (err.value.file, err.value.line) == ("policies/unsafe.rego", 5)
    assert "unsafe" in err.value.message


def test_line_offset_maps_errors_into_the_enclosing_file() -> None:
    module = RegoModule(
        source="templates/k8srequired.yaml",
        package="k8srequired",
        v0=True,
        text='package k8srequired\n\nviolation[{"msg": msg}] { x == 1; msg := "m" }\n',
        line_offset=12,
    )
    with pytest.raises(PolicyLoadError) as err:
        EmbeddedEngine().load([module], {})
    assert (err.value.file, err.value.line) == ("templates/k8srequired.yaml", 15)


def test_two_modules_from_one_file_keep_their_own_line_offsets() -> None:
    lib = RegoModule(
        source="t.yaml",
        package="lib.x",
        v0=True,
        text="package lib.x\n\nok { true }\n",
        line_offset=3,
    )
    main = RegoModule(
        source="t.yaml",
        package="t",
        v0=True,
        text='package t\n\nviolation[{"msg": m}] { m := 1 + "a" }\n',
        line_offset=30,
    )
    engine = EmbeddedEngine()
    engine.load([lib, main], {})
    with pytest.raises(PolicyEvalError, match=r"^t.yaml:33: "):
        engine.evaluate("data.t.violation", {})


def test_clone_shares_compiled_policies_and_keeps_its_own_input(engine: EmbeddedEngine) -> None:
    other = engine.clone()
    assert other.evaluate("data.p.deny", {"replicas": 6}) == ["6 replicas"]
    assert engine.evaluate("data.p.deny", {"replicas": 1}) == []


def test_input_that_is_not_json_is_an_eval_error(engine: EmbeddedEngine) -> None:
    with pytest.raises(PolicyEvalError, match="not JSON"):
        engine.evaluate("data.p.deny", {"replicas": object()})


def nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def test_keys_no_module_reads_are_not_given_to_the_engine(engine: EmbeddedEngine) -> None:
    # p reads input.replicas, .warn, .defined, .conflict: nothing else can change a result, so
    # the rest is neither converted nor checked (an audit input carries the live object twice)
    unread = {"x": object(), "deep": nested(MAX_DEPTH + 5)}
    assert engine.evaluate("data.p.deny", {"replicas": 7, **unread}) == ["7 replicas"]
    assert engine.readable({"replicas": 5, "warn": True, **unread}) == {"replicas": 5, "warn": True}


def test_a_module_that_reads_the_input_whole_gets_all_of_it() -> None:
    echo = EmbeddedEngine()
    echo.load([ECHO], {})
    document = {"resource": {"kind": "Pod"}, "live": {"kind": "Pod"}, "extra": [1]}
    assert echo.readable(document) is document
    assert echo.evaluate("data.echo.doc", document) == document


ECHO = RegoModule(
    source="policies/echo.rego",
    package="echo",
    text="package echo\n\nimport rego.v1\n\ndoc := input\n\n"
    "types := {k: type_name(v) | some k, v in input}\n",
)


@pytest.mark.parametrize(
    "doc",
    [
        {"int": 1, "float": 1.0, "half": 0.5, "neg": -7, "bool": True, "none": None},
        {"big": 2**64 - 1, "bigger": 2**64, "huge": 10**30, "low": -(2**63) - 1},
        {"text": "naïve ✓ \u0000", "nested": [[{"a": []}], {}], "empty": ""},
    ],
)
def test_an_input_reads_the_same_from_python_values_as_from_its_json_text(doc: dict) -> None:
    engine = EmbeddedEngine()
    engine.load([ECHO], {})
    from_values = engine.evaluate_many(["data.echo.doc", "data.echo.types"], doc)
    engine.set_input_json(json.dumps(doc))
    from_text = [engine.evaluate_loaded_input(r) for r in ("data.echo.doc", "data.echo.types")]
    assert from_values == from_text


@pytest.mark.parametrize("doc", [{"b": b"x"}, {"s": {1, 2}}, {(1, 2): "tuple key"}])
def test_values_json_cannot_hold_are_still_an_eval_error(doc: dict) -> None:
    # the binding would convert these (bytes to a list, a set to an array); JSON refuses them,
    # and the engine reads only what JSON holds
    engine = EmbeddedEngine()
    engine.load([ECHO], {})
    with pytest.raises(PolicyEvalError, match="not JSON"):
        engine.evaluate("data.echo.doc", doc)


@pytest.mark.parametrize(
    ("modules", "data"),
    [
        (
            [RegoModule(source="b.rego", package="b", text="package b\n\ndeny contains x if {\n")],
            {},
        ),
        (  # compiled at load: an unsafe variable
            [
                RegoModule(
                    source="u.rego",
                    package="u",
                    text="package u\n\nimport rego.v1\n\ndeny contains msg if { x == 1 }\n",
                )
            ],
            {},
        ),
        ([], {"x": nested(200)}),
    ],
)
def test_a_failed_load_keeps_no_regorus_engine_in_its_error(
    modules: list[RegoModule], data: dict[str, object]
) -> None:
    # Whoever keeps the error keeps the frames of its traceback: a regorus engine among their
    # locals is freed by the garbage collector in whichever thread it runs ("unsendable").
    with pytest.raises(PolicyLoadError) as raised:
        EmbeddedEngine().load(modules, data)
    error: BaseException | None = raised.value
    while error is not None:
        tb = error.__traceback__
        while tb is not None:
            kept = tb.tb_frame.f_locals.values()
            assert not any(isinstance(v, regorus.Engine) for v in kept), tb.tb_frame
            tb = tb.tb_next
        error = error.__context__

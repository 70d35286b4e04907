"""regorus's compiled VM under the embedded engine (`auditor/policy/vm.py`): what it records is
what the interpreter would record.

The VM runs the stage's batches when the whole policy set compiles; an input it fails on, or
whose result holds its `<undefined>` sentinel, is the interpreter's; a set it cannot compile is
the interpreter's, said in one info line; and when a sampled input's values differ, the whole run
is evaluated again by the interpreter with a note naming the policy and the object.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import regorus

from auditor.config import load_config
from auditor.errors import ConfigError
from auditor.model import ResourceRef
from auditor.policy import vm as vm_module
from auditor.policy.embedded import EmbeddedEngine
from auditor.policy.engine import MAX_DEPTH, nesting_depth
from auditor.policy.evaluate import PolicyOutcome, evaluate_policies, load_engine
from auditor.policy.loader import PolicySet, load_policy_files
from auditor.policy.vm import CHECK_EVERY, UNDEFINED_MARK, VmEngine, within_depth
from tests.policy.gatekeeper.builders import (
    REQUIRED_LABELS_REGO,
    constraint_yaml,
    template_yaml,
)
from tests.policy.library_equivalence import SHIPPED, policy_set
from tests.policy.rego import ISVC, inputs, write
from tests.policy.serving_corpus import Corpus

LABELS = """
    package vm.labels
    import rego.v1
    deny contains "no team label" if not input.resource.metadata.labels.team
    warn contains sprintf("replicas %v", [input.resource.spec.replicas]) if input.resource.spec.replicas
"""

# A function whose `else` chain all fails: the VM gives the string "<undefined>" for it (and so
# a message about it) where it is undefined.
ELSE_CHAIN = """
    package vm.else_chain
    import rego.v1
    reason(c) := "gpu image" if { c.image == "x/gpu:1" } else := "gpu runtime" if {
      c.runtime == "vllm-gpu"
    }
    deny contains sprintf("%s serves a GPU model (%s)", [c.name, r]) if {
      some c in input.resource.spec.predictor.containers
      r := reason(c)
    }
"""


def bodies(count: int) -> list[dict[str, Any]]:
    """InferenceServices m0, m1, ...: every third (m0, m3, ...) with a team label."""
    out = []
    for i in range(count):
        body = copy.deepcopy(ISVC)
        body["metadata"]["name"] = f"m{i}"
        body["metadata"]["labels"] = {"team": "ml"} if i % 3 == 0 else {}
        out.append(body)
    return out


def load(tmp_path: Path, **files: str) -> PolicySet:
    for name, text in files.items():
        write(tmp_path, f"{name}.rego", text)
    return load_policy_files([str(tmp_path)], hooks=())


def summary(outcome: PolicyOutcome) -> list[tuple[Any, ...]]:
    return [(e.policy, e.ref, e.result, e.messages, e.error) for e in outcome.evaluations]


def both(policies: PolicySet, docs: Sequence[tuple[Any, Any]], **kw: Any) -> tuple[Any, Any, Any]:
    """(the VM engine, its outcome, the interpreter's outcome) over `docs`."""
    engine = load_engine(policies, vm=True)
    on_vm = evaluate_policies(policies, docs, engine=engine, **kw)
    on_interpreter = evaluate_policies(policies, docs, engine=load_engine(policies, vm=False))
    return engine, on_vm, on_interpreter


# -- the shipped library on both paths ----------------------------------------------------------


def vm_library(directory: Path) -> Path:
    """The shipped policy folder, copied. Until the library stops using `walk` (which the VM
    does not compile; the branch `rvmlib` replaces it), its one `walk` line is replaced here by
    a lookup of the graph's own modelUri, so that every other rule is compared."""
    tree = directory / "policies"
    shutil.copytree(SHIPPED, tree)
    serving = tree / "lib" / "serving.rego"
    serving.write_text(
        serving.read_text().replace(
            '\twalk(obj_at(pred, "graph"), [p, v])\n',
            '\tsome p, v in {["modelUri"]: obj_at(pred, "graph").modelUri}\n',
        )
    )
    return tree


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return vm_library(tmp_path_factory.mktemp("vm"))


def test_the_shipped_library_compiles_to_the_vm_and_runs_on_it(library: Path) -> None:
    policies = load_policy_files([str(library)], hooks=())
    engine = load_engine(policies, vm=True)
    assert isinstance(engine, VmEngine) and engine.uses_vm, engine.reason
    docs = [(None, d) for d in Corpus(seed=7).inputs(40)]
    evaluate_policies(policies, docs, engine=engine)
    assert engine.fallbacks < len(docs)  # the VM answered some inputs itself


def test_the_vm_keeps_an_undefined_comprehension_element_as_a_value() -> None:
    # Why the VM is off by default (vm.py): Rego skips an element that is undefined; the
    # VM of gordon-to-regorus 0.13 keeps its sentinel, which then steers what follows.
    text = "package p\nimport rego.v1\nt := [p.t | some p in input.ps]\n"
    program = regorus.Program.compile_from_modules("{}", [("p.rego", text)], ["data.p.t"])
    machine = regorus.Rvm()
    machine.load_program(program)
    machine.set_data_json("{}")
    machine.set_input_json('{"ps": [{}, {"t": 5}]}')
    interpreter = regorus.Engine()
    interpreter.add_policy("p.rego", text)
    interpreter.set_input_json('{"ps": [{}, {"t": 5}]}')
    assert json.loads(interpreter.eval_rule_as_json("data.p.t")) == [5]
    assert json.loads(machine.execute_entry_point("data.p.t")) == [UNDEFINED_MARK, 5]


def test_the_shipped_library_on_the_corpus_records_what_the_interpreter_records(
    library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # every input checked: the VM's answers, its hand-overs and any re-run, on realistic inputs
    # (that the VM alone gives the library's values is tests/policy/test_rvm_equivalence.py's)
    monkeypatch.setattr(vm_module, "CHECK_EVERY", 1)
    policies = policy_set(library, {})
    docs = [(None, d) for d in Corpus(seed=21).inputs(150)]
    _, on_vm, on_interpreter = both(policies, docs)
    assert summary(on_vm) == summary(on_interpreter)
    assert on_vm.findings == on_interpreter.findings


SILENT = """
    package vm.silent
    import rego.v1
    # Rego drops the image of a container without one; the VM keeps "<undefined>" instead, so
    # the counts agree on the VM and this never fires there
    deny contains "a container has no image" if {
      containers := input.resource.spec.predictor.containers
      images := [c.image | some c in containers]
      count(images) != count(containers)
    }
"""


def test_a_silent_difference_on_the_first_input_of_a_kind_puts_the_run_on_the_interpreter(
    tmp_path: Path,
) -> None:
    policies = load(tmp_path, silent=SILENT, labels=LABELS)
    docs = bodies(3)
    for body in docs:
        body["spec"]["predictor"] = {"containers": [{"name": "a", "image": "x:1"}, {"name": "b"}]}
    engine, on_vm, on_interpreter = both(policies, inputs(*docs))
    assert summary(on_vm) == summary(on_interpreter)
    assert {e.result for e in on_vm.evaluations if e.policy == "vm.silent"} == {"fail"}
    (note,) = on_vm.notes
    assert "policy vm.silent" in note and "InferenceService ml/m0" in note
    assert engine.fallbacks == 0 and not engine.uses_vm


# -- what the VM gets wrong goes to the interpreter ------------------------------------------


def test_a_function_whose_else_chain_fails_is_evaluated_by_the_interpreter(tmp_path: Path) -> None:
    policies = load(tmp_path, else_chain=ELSE_CHAIN, labels=LABELS)
    gpu = copy.deepcopy(ISVC)
    gpu["spec"]["predictor"] = {"containers": [{"name": "a", "image": "x/gpu:1"}, {"name": "b"}]}
    cpu = copy.deepcopy(ISVC)
    cpu["spec"]["predictor"] = {"containers": [{"name": "a", "image": "x/cpu:1"}]}
    engine, on_vm, on_interpreter = both(policies, inputs(gpu, cpu))
    assert engine.uses_vm
    assert engine.fallbacks == 2  # each input: the VM's deny held "<undefined>"
    assert summary(on_vm) == summary(on_interpreter)
    denied = [m.msg for e in on_vm.evaluations for m in e.messages if m.rule == "deny"]
    assert "a serves a GPU model (gpu image)" in denied
    assert not any(UNDEFINED_MARK in m for m in denied)


def test_an_input_past_the_vms_instruction_limit_is_evaluated_by_the_interpreter(
    tmp_path: Path,
) -> None:
    policies = load(
        tmp_path,
        many="""
            package vm.many
            import rego.v1
            deny contains sprintf("%d", [n]) if { n := count([i | some i in numbers.range(1, 40000)]) }
        """,
    )
    engine, on_vm, on_interpreter = both(policies, inputs(ISVC))
    assert engine.uses_vm and engine.fallbacks == 1
    assert summary(on_vm) == summary(on_interpreter)
    assert on_vm.evaluations[0].messages[0].msg == "40000"


def test_an_error_the_interpreter_raises_is_recorded_with_its_file_and_line(tmp_path: Path) -> None:
    # the VM stops at its instruction limit here; the interpreter's conflict is what is recorded
    policies = load(
        tmp_path,
        conflict="""
            package vm.conflict
            import rego.v1
            n := count([i | some i in numbers.range(1, 40000)])
            deny := "a" if n > 0
            deny := "b" if n > 1
        """,
    )
    _, on_vm, on_interpreter = both(policies, inputs(ISVC))
    assert summary(on_vm) == summary(on_interpreter)
    (evaluation,) = on_vm.evaluations
    assert evaluation.result == "error"
    assert "conflict.rego:5" in (evaluation.error or "")


# -- what the VM cannot compile stays on the interpreter ------------------------------------


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (
            "x := [p | walk(input.resource, [p, v]); v == 1]\n"
            'deny contains "walked" if count(x) > 0\n',
            "walk loops are not yet supported",
        ),
        ('deny contains "m" if { print("seen"); input.resource }\n', "print"),
    ],
)
def test_a_policy_the_vm_cannot_compile_is_evaluated_by_the_interpreter_with_one_info_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str, why: str
) -> None:
    policies = load(tmp_path, labels=LABELS, odd="package vm.odd\nimport rego.v1\n" + text)
    with caplog.at_level(logging.INFO, logger="auditor.policy.vm"):
        engine, on_vm, on_interpreter = both(policies, inputs(*bodies(3)))
    assert not engine.uses_vm
    lines = [r for r in caplog.records if r.name == "auditor.policy.vm"]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO
    assert why in lines[0].getMessage() and "interpreter" in lines[0].getMessage()
    assert summary(on_vm) == summary(on_interpreter)


# Rego v0, as most Gatekeeper library templates are
GATEKEEPER_TEMPLATE = (
    template_yaml("K8sRequiredLabels", REQUIRED_LABELS_REGO)
    + "---\n"
    + constraint_yaml("K8sRequiredLabels", "must-have-team", {"parameters": {"labels": ["team"]}})
)


def test_gatekeeper_templates_in_rego_v0_leave_the_plain_policies_on_the_vm(
    tmp_path: Path,
) -> None:
    from auditor.policy import gatekeeper

    write(tmp_path, "labels.rego", LABELS)
    write(tmp_path, "template.yaml", GATEKEEPER_TEMPLATE)
    policies = load_policy_files([str(tmp_path)], hooks=(gatekeeper.HOOKS,))
    assert any(m.v0 for m in policies.modules)
    engine, on_vm, on_interpreter = both(policies, inputs(*bodies(3)))
    assert engine.uses_vm
    assert summary(on_vm) == summary(on_interpreter)
    assert {e.policy for e in on_vm.evaluations} == {
        "vm.labels",
        "K8sRequiredLabels/must-have-team",
    }


def test_a_plain_policy_that_may_read_a_rego_v0_module_keeps_the_set_on_the_interpreter(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from auditor.policy import gatekeeper

    write(tmp_path, "template.yaml", GATEKEEPER_TEMPLATE)
    write(
        tmp_path,
        "reads.rego",
        """
        package vm.reads
        import rego.v1
        deny contains "v0 said so" if count(data.gatekeeper.templates.K8sRequiredLabels.violation) > 0
        """,
    )
    policies = load_policy_files([str(tmp_path)], hooks=(gatekeeper.HOOKS,))
    with caplog.at_level(logging.INFO, logger="auditor.policy.vm"):
        engine, on_vm, on_interpreter = both(policies, inputs(*bodies(2)))
    assert not engine.uses_vm
    assert "may read a Rego v0 module" in caplog.text and "reads.rego" in caplog.text
    assert summary(on_vm) == summary(on_interpreter)


# -- the differential self-check ----------------------------------------------------------------


def lying(monkeypatch: pytest.MonkeyPatch) -> None:
    """The VM says every input fails `vm.labels` with a message of its own (in the parent
    process and in the workers it forks)."""
    honest = VmEngine._run

    def run(self: VmEngine, entry: str, count: int) -> list[Any] | None:
        values = honest(self, entry, count)
        if values is not None:
            values[0] = [*(values[0] or []), "invented by the VM"]
        return values

    monkeypatch.setattr(VmEngine, "_run", run)


@pytest.mark.parametrize("workers", [1, 2])
def test_when_the_vm_disagrees_the_whole_run_is_the_interpreters_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    import auditor.policy.evaluate as evaluate

    monkeypatch.setattr(evaluate, "PARALLEL_MIN_EVALUATIONS", 0)
    policies = load(tmp_path, labels=LABELS)
    docs = inputs(*bodies(CHECK_EVERY + 40))
    truth = evaluate_policies(policies, docs, engine=load_engine(policies, vm=False))
    lying(monkeypatch)
    engine = load_engine(policies, vm=True)
    outcome = evaluate_policies(policies, docs, engine=engine, workers=workers, timeout=60)
    assert summary(outcome) == summary(truth)
    assert not any("invented" in m.msg for e in outcome.evaluations for m in e.messages)
    (note,) = outcome.notes
    assert "policy vm.labels" in note and "rule deny" in note
    assert "InferenceService ml/m" in note  # the object it disagreed on
    assert not engine.uses_vm  # and it stays off for this engine


def test_a_disagreement_on_a_sampled_input_after_the_first_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policies = load(tmp_path, labels=LABELS)
    docs = inputs(*bodies(CHECK_EVERY + 1))
    honest = VmEngine._run
    calls = {"n": 0}

    def run(self: VmEngine, entry: str, count: int) -> list[Any] | None:
        calls["n"] += 1
        values = honest(self, entry, count)
        if values is not None and calls["n"] == CHECK_EVERY + 1:  # the next input checked
            values[0] = ["invented by the VM"]
        return values

    monkeypatch.setattr(VmEngine, "_run", run)
    outcome = evaluate_policies(policies, docs, engine=load_engine(policies, vm=True))
    (note,) = outcome.notes
    assert f"InferenceService ml/m{CHECK_EVERY}" in note


def test_a_disagreement_is_a_note_of_the_audit_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auditor.config import PolicySettings
    from auditor.model import PolicyInput
    from auditor.policy.stage import evaluate_inputs

    write(tmp_path, "policies/labels.rego", LABELS)
    lying(monkeypatch)
    settings = PolicySettings(paths=(str(tmp_path / "policies"),), vm=True)
    outcome = evaluate_inputs(settings, [PolicyInput(r, d) for r, d in inputs(*bodies(4))], [])
    assert outcome.errors == ()
    (note,) = outcome.notes
    assert "disagreed" in note and "policy vm.labels" in note


# -- bounds and settings ------------------------------------------------------------------------


def test_the_time_budget_still_stops_a_policy_that_never_finishes(tmp_path: Path) -> None:
    # the VM gives up at its instruction limit; the interpreter it hands the input to overruns
    runaway = """
        package vm.runaway
        import rego.v1
        deny contains "never reached" if {
          some i in numbers.range(1, 100000)
          some j in numbers.range(1, 100000)
          i * j == -1
        }
    """
    policies = load(tmp_path, labels=LABELS, runaway=runaway)
    engine = load_engine(policies, vm=True)
    assert engine.uses_vm
    outcome = evaluate_policies(policies, inputs(*bodies(2)), engine=engine, timeout=0.5)
    results = {(e.policy, e.ref.name if e.ref else ""): e for e in outcome.evaluations}
    assert results[("vm.runaway", "m0")].result == "error"
    assert "did not finish within 0.5 s" in (results[("vm.runaway", "m0")].error or "")
    assert results[("vm.labels", "m0")].result == "pass"
    assert results[("vm.labels", "m1")].result == "fail"


def test_an_input_too_deep_for_the_engines_is_the_same_error_on_the_vm_path(tmp_path: Path) -> None:
    policies = load(tmp_path, labels=LABELS)
    deep: Any = "leaf"
    for _ in range(110):
        deep = {"k": deep}
    body = copy.deepcopy(ISVC)
    body["spec"]["deep"] = deep
    docs = inputs(body)
    engine, on_vm, on_interpreter = both(policies, docs, timeout=30)
    assert engine.uses_vm
    assert summary(on_vm) == summary(on_interpreter)
    assert on_vm.evaluations[0].result == "error"
    assert "over the policy engine's limit" in (on_vm.evaluations[0].error or "")


CONFIG = "git: {repo: ./gitops}\nclusters: [{name: prod, snapshot: live.json}]\n"


def test_the_vm_is_used_for_the_shipped_library_alone_unless_configured(tmp_path: Path) -> None:
    (tmp_path / "auditor.yaml").write_text(CONFIG)
    settings = load_config(tmp_path / "auditor.yaml").policy
    assert settings.vm is None and settings.uses_vm()  # auto, and only `builtin`
    (tmp_path / "auditor.yaml").write_text(CONFIG + "policy: {paths: [builtin, mine]}\n")
    assert not load_config(tmp_path / "auditor.yaml").policy.uses_vm()
    (tmp_path / "auditor.yaml").write_text(CONFIG + "policy: {paths: [mine], vm: true}\n")
    assert load_config(tmp_path / "auditor.yaml").policy.uses_vm()
    (tmp_path / "auditor.yaml").write_text(CONFIG + "policy: {vm: false}\n")
    assert not load_config(tmp_path / "auditor.yaml").policy.uses_vm()
    (tmp_path / "auditor.yaml").write_text(CONFIG + "policy: {vm: auto}\n")
    assert load_config(tmp_path / "auditor.yaml").policy.vm is None
    (tmp_path / "auditor.yaml").write_text(CONFIG + "policy: {vm: sometimes}\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "auditor.yaml")
    assert "vm" in err.value.diagnostics()


def test_with_the_vm_off_the_engine_is_the_interpreter(tmp_path: Path) -> None:
    policies = load(tmp_path, labels=LABELS)
    assert type(load_engine(policies)) is EmbeddedEngine
    assert type(load_engine(policies, vm=False)) is EmbeddedEngine


def test_an_admission_kind_no_policy_names_still_has_its_batch_on_the_vm(tmp_path: Path) -> None:
    # the batches are made from the policies' kinds, not from the inputs: any kind has one
    policies = load(tmp_path, labels=LABELS)
    engine = load_engine(policies, vm=True)
    assert isinstance(engine, VmEngine)
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    ref = ResourceRef(cluster="", api_version="v1", kind="ConfigMap", namespace="", name="c")
    outcome = evaluate_policies(policies, [(ref, {"resource": config_map})], engine=engine)
    assert engine.fallbacks == 0 and engine._seen  # answered by the VM
    assert [e.result for e in outcome.evaluations] == ["fail"]


def nested_as(levels: int, leaf: Any) -> Any:
    value = leaf
    for i in range(levels):
        value = {"k": value} if i % 2 else [value]
    return value


@pytest.mark.parametrize("levels", [0, 1, 2, 99, 100, 101, 150])
@pytest.mark.parametrize("leaf", ["x", 5, {}, [], '{"[', '\\"}]', "\\", "]]]]"])
def test_the_depth_read_from_json_text_is_the_documents_nesting_depth(
    levels: int, leaf: Any
) -> None:
    document = {"a": [1, {"b": "}{"}], "c": nested_as(levels, leaf)}
    assert within_depth(json.dumps(document)) == (nesting_depth(document) <= MAX_DEPTH)
    assert within_depth(json.dumps(document), limit=3) == (nesting_depth(document) <= 3)


def test_the_webhooks_compiled_policies_evaluate_on_the_vm_and_fall_back_for_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from auditor.config import PolicySettings
    from auditor.policy.compiled import CompiledPolicies

    write(tmp_path, "policies/labels.rego", LABELS)
    (ref, doc), (ref2, doc2) = inputs(*bodies(2))
    settings = PolicySettings(paths=(str(tmp_path / "policies"),))
    interpreter = CompiledPolicies(settings, timeout=30)
    on_vm = CompiledPolicies(dataclasses.replace(settings, vm=True), timeout=30)
    try:
        assert summary(on_vm.evaluate(ref2, doc2)) == summary(interpreter.evaluate(ref2, doc2))
        lying(monkeypatch)  # from here on, in the worker forked next
        on_vm.close()
        on_vm = CompiledPolicies(dataclasses.replace(settings, vm=True), timeout=30)
        outcome = on_vm.evaluate(ref, doc)
        assert summary(outcome) == summary(interpreter.evaluate(ref, doc))
        (note,) = outcome.notes
        assert "InferenceService ml/m0" in note
        # the worker was replaced by one forked from the interpreter: no second note
        later = on_vm.evaluate(ref2, doc2)
        assert later.notes == () and summary(later) == summary(interpreter.evaluate(ref2, doc2))
    finally:
        on_vm.close()
        interpreter.close()

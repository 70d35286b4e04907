"""The policy stage's bounds: the time budget per evaluation (`policy.timeout_seconds`), the
worker processes that enforce it, and the nesting depth the engines read."""

from __future__ import annotations

import contextlib
import copy
import faulthandler
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auditor.config import DEFAULT_POLICY_TIMEOUT_SECONDS, load_config
from auditor.errors import ConfigError
from auditor.policy.embedded import EmbeddedEngine
from auditor.policy.engine import (
    MAX_DEPTH,
    PolicyAborted,
    PolicyEvalError,
    PolicyLoadError,
    PolicyTimeout,
    RegoModule,
    nesting_depth,
    plain_depth,
)
from auditor.policy.evaluate import PolicyOutcome, evaluate_policies, load_engine
from auditor.policy.loader import load_policy_files
from auditor.policy.worker import WorkerEngine, WorkerStopped
from tests.policy.rego import ISVC, inputs, write

LABELS = """
    package budget.labels
    import rego.v1
    deny contains "no team label" if not input.resource.metadata.labels.team
"""

RUNAWAY = """
    package budget.runaway
    import rego.v1
    deny contains "never reached" if {
      some i in numbers.range(1, 100000)
      some j in numbers.range(1, 100000)
      i * j == -1
    }
"""


def nested(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"k": value}
    return value


def spec(tmp_path: Path, **files: str) -> tuple[tuple[RegoModule, ...], dict[str, Any]]:
    for name, text in files.items():
        write(tmp_path, f"{name}.rego", text)
    policy_set = load_policy_files([str(tmp_path)], hooks=())
    return tuple(policy_set.modules), dict(policy_set.data)


# -- configuration -------------------------------------------------------------------------

CONFIG = "git: {repo: ./gitops}\nclusters: [{name: prod, snapshot: live.json}]\n"


def test_the_time_budget_is_five_seconds_unless_configured(tmp_path: Path) -> None:
    (tmp_path / "auditor.yaml").write_text(CONFIG)
    assert load_config(tmp_path / "auditor.yaml").policy.timeout_seconds == 5.0
    assert DEFAULT_POLICY_TIMEOUT_SECONDS == 5.0
    (tmp_path / "auditor.yaml").write_text(CONFIG + "policy: {timeout_seconds: 0.5}\n")
    assert load_config(tmp_path / "auditor.yaml").policy.timeout_seconds == 0.5


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_time_budget_that_is_not_a_positive_number_is_a_config_error(
    tmp_path: Path, value: str
) -> None:
    (tmp_path / "auditor.yaml").write_text(CONFIG + f"policy:\n  timeout_seconds: {value}\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "auditor.yaml")
    assert err.value.line == 4
    assert "timeout_seconds" in err.value.diagnostics()


# -- the worker process --------------------------------------------------------------------


def test_a_call_that_overruns_is_stopped_and_the_next_call_gets_a_fresh_worker(
    tmp_path: Path,
) -> None:
    worker = WorkerEngine(spec(tmp_path, labels=LABELS, runaway=RUNAWAY), timeout=0.5)
    doc = inputs(ISVC)[0][1]
    try:
        with pytest.raises(PolicyTimeout, match=r"did not finish within 0\.5 s, the time budget"):
            worker.evaluate_many(["data.budget.runaway.deny"], doc)
        assert worker.pid is None  # killed and forgotten
        assert worker.evaluate_many(["data.budget.labels.deny"], doc) == [[]]
    finally:
        worker.close()


def test_a_worker_that_dies_costs_only_the_call_it_was_on(tmp_path: Path) -> None:
    worker = WorkerEngine(spec(tmp_path, labels=LABELS), timeout=None)
    doc = inputs(ISVC)[0][1]
    try:
        assert worker.evaluate("data.budget.labels.deny", doc) == []
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)  # as a native crash would end it
        with pytest.raises(PolicyAborted, match="process died \\(SIGKILL\\)"):
            worker.evaluate("data.budget.labels.deny", doc)
        assert worker.evaluate("data.budget.labels.deny", doc) == []
    finally:
        worker.close()


def test_stopping_a_worker_from_another_thread_ends_the_call_in_progress(
    tmp_path: Path,
) -> None:
    # what an interrupted parallel run does: the main thread stops every worker
    worker = WorkerEngine(spec(tmp_path, runaway=RUNAWAY), timeout=None)
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            worker.evaluate_many(["data.budget.runaway.deny"], inputs(ISVC)[0][1])
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    while worker.pid is None and thread.is_alive():
        thread.join(0.01)
    worker.stop()
    thread.join(60)
    worker.close()
    assert not thread.is_alive()
    assert [type(e) for e in outcome] == [WorkerStopped]
    with pytest.raises(WorkerStopped):
        worker.evaluate_many(["data.budget.runaway.deny"], inputs(ISVC)[0][1])


def test_a_worker_inherits_the_loaded_engine_only_from_the_thread_that_loaded_it(
    tmp_path: Path,
) -> None:
    # A regorus engine panics when used from another thread than its maker's, and a forked
    # worker runs as a copy of the forking thread: elsewhere it must load the policies anew.
    # Told apart here by an engine whose data differs from the spec the worker would load.
    modules, _ = spec(tmp_path, value="package budget.value\nimport rego.v1\nx := data.x\n")
    engine = EmbeddedEngine()
    engine.load(modules, {"x": "inherited"})
    doc = inputs(ISVC)[0][1]

    def value_through_a_worker() -> Any:
        worker = WorkerEngine((modules, {"x": "loaded"}), timeout=60, engine=engine)
        try:
            return worker.evaluate("data.budget.value.x", doc)
        finally:
            worker.close()

    assert value_through_a_worker() == "inherited"
    seen: list[Any] = []
    thread = threading.Thread(target=lambda: seen.append(value_through_a_worker()))
    thread.start()
    thread.join(60)
    assert seen == ["loaded"]


ORPHANED = """
import os, signal, sys
import auditor.policy.worker as worker
from auditor.policy.engine import RegoModule

worker._die_with_parent = lambda parent: None  # as where PR_SET_PDEATHSIG does not exist
module = RegoModule(source="p.rego", package="p", text="package p\\nx := 1\\n")
engines = [worker.WorkerEngine(([module], {}), 60) for _ in range(2)]
for engine in engines:
    engine.evaluate("data.p.x", {})
print(*(engine.pid for engine in engines), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_without_pdeathsig_idle_workers_still_end_with_their_parent(tmp_path: Path) -> None:
    # each worker closes its copies of the parent's pipe ends, its own and its siblings':
    # else none of them would ever read end-of-file once the parent is gone
    out = tmp_path / "pids.txt"
    with out.open("w") as handle:
        proc = subprocess.run([sys.executable, "-c", ORPHANED], stdout=handle, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    pids = [int(p) for p in out.read_text().split()]
    assert len(pids) == 2

    def ended(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    deadline = time.monotonic() + 60  # bounds a broken run only: no timing assertion
    while not all(ended(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    leftover = [p for p in pids if not ended(p)]
    for pid in leftover:
        os.kill(pid, signal.SIGKILL)
    assert leftover == []


def test_without_fork_a_spawned_worker_loads_the_same_policies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiprocessing

    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    worker = WorkerEngine(spec(tmp_path, labels=LABELS), timeout=60)
    body = copy.deepcopy(ISVC)
    del body["metadata"]["labels"]
    try:
        assert worker.evaluate("data.budget.labels.deny", inputs(body)[0][1]) == ["no team label"]
    finally:
        worker.close()


def test_parallel_workers_with_a_budget_give_the_serial_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import auditor.policy.evaluate as evaluate

    write(tmp_path, "labels.rego", LABELS)
    write(tmp_path, "broken.rego", "package b\nimport rego.v1\ndeny contains 1 + input.x if true\n")
    policy_set = load_policy_files([str(tmp_path)], hooks=())
    engine = load_engine(policy_set)
    bodies = [copy.deepcopy(ISVC) for _ in range(5)]
    for i, body in enumerate(bodies):
        body["metadata"]["name"] = f"m{i}"
    serial = evaluate_policies(policy_set, inputs(*bodies), engine=engine)
    monkeypatch.setattr(evaluate, "PARALLEL_MIN_EVALUATIONS", 0)
    budgeted = evaluate_policies(policy_set, inputs(*bodies), engine=engine, workers=2, timeout=60)

    def summary(outcome: PolicyOutcome) -> list[tuple[Any, ...]]:
        return [(e.policy, e.ref, e.result, e.messages, e.error) for e in outcome.evaluations]

    assert summary(budgeted) == summary(serial)
    assert budgeted.findings == serial.findings


# -- nesting depth -------------------------------------------------------------------------


def test_nesting_depth_counts_mappings_and_lists_without_recursing() -> None:
    assert [nesting_depth(v) for v in ("x", 1, None, {}, [], {"a": 1}, {"a": [1]})] == [
        0,
        0,
        0,
        1,
        1,
        1,
        2,
    ]
    deep = nested(20_000)  # far past Python's recursion limit
    assert nesting_depth(deep) == 20_000
    assert nesting_depth(deep, limit=MAX_DEPTH) == MAX_DEPTH + 1


@pytest.mark.parametrize(
    "value",
    ["x", 1, None, {}, [], {"a": 1}, {"a": [1]}, {"a": [{"b": None}], "c": 2.5, "d": True}],
)
def test_plain_depth_is_the_nesting_depth_of_plain_json_data(value: Any) -> None:
    assert plain_depth(value, MAX_DEPTH) == nesting_depth(value)


def test_plain_depth_counts_a_body_held_twice_at_its_deepest_place() -> None:
    body = {"spec": {"containers": [{"name": "c"}]}}  # 4 levels
    for doc in ({"resource": body, "live": {"wrapped": body}}, {"a": {"b": body}, "c": body}):
        assert plain_depth(doc, MAX_DEPTH) == nesting_depth(doc) == 6


def test_plain_depth_stops_past_its_limit_without_recursing_further() -> None:
    assert plain_depth(nested(20_000), MAX_DEPTH) == MAX_DEPTH + 1
    assert plain_depth(nested(MAX_DEPTH), MAX_DEPTH) == MAX_DEPTH


@pytest.mark.parametrize(
    "value",
    [
        {"a": (1, 2)},
        {"a": {1, 2}},
        {"a": b"bytes"},
        {1: "int key"},
        {"a": [object()]},
        {"a": signal.SIGTERM},  # an int subclass: only its JSON text says what it reads as
    ],
)
def test_plain_depth_is_none_for_what_only_json_text_says_faithfully(value: Any) -> None:
    assert plain_depth(value, MAX_DEPTH) is None


def test_the_engine_itself_refuses_what_serde_json_cannot_read_with_a_clear_error() -> None:
    # MAX_DEPTH keeps inputs and data well inside this; the engine must still never raise a
    # bare RuntimeError (exit 4) if something deeper reaches it
    engine = EmbeddedEngine()
    engine.load([], {})
    with pytest.raises(PolicyEvalError, match="the engine cannot read the input"):
        engine.evaluate("input.x", {"x": nested(200)})
    with pytest.raises(PolicyLoadError, match="policy data cannot be loaded"):
        EmbeddedEngine().load([], {"x": nested(200)})


def test_the_depth_limit_is_below_what_the_engine_reads() -> None:
    # regorus (serde_json) reads 127 levels and refuses 128: measured, and kept honest here
    engine = EmbeddedEngine()
    engine.load([], {})
    assert engine.evaluate("input.k.k", nested(127)) is not None
    with pytest.raises(PolicyEvalError):
        engine.evaluate("input.k.k", nested(128))
    assert MAX_DEPTH + 6 < 127  # Gatekeeper's inventory holds objects 6 levels down in data
    assert json.loads(json.dumps(nested(MAX_DEPTH))) == nested(MAX_DEPTH)


def test_an_overrun_among_inputs_sent_ahead_costs_that_input_alone(tmp_path: Path) -> None:
    # A worker is sent a chunk of inputs ahead (prefetch); the runaway policy overruns on one
    # of them (the one labelled slow): that evaluation is an error, the others' results
    # are what they are one by one, in input order.
    write(tmp_path, "labels.rego", LABELS)
    write(
        tmp_path,
        "slow.rego",
        RUNAWAY.replace("package budget.runaway", "package budget.slow").replace(
            "some i in", 'input.resource.metadata.labels.speed == "slow"\n      some i in'
        ),
    )
    policy_set = load_policy_files([str(tmp_path)], hooks=())
    engine = load_engine(policy_set)
    bodies = [copy.deepcopy(ISVC) for _ in range(8)]
    for i, body in enumerate(bodies):
        body["metadata"]["name"] = f"m{i}"
    bodies[3]["metadata"]["labels"]["speed"] = "slow"
    del bodies[5]["metadata"]["labels"]["team"]
    outcome = evaluate_policies(policy_set, inputs(*bodies), engine=engine, timeout=1.0)
    results = [(e.policy, e.ref.name if e.ref else "", e.result) for e in outcome.evaluations]
    expected = [
        (policy, f"m{i}", result)
        for i in range(8)
        for policy, result in (
            ("budget.labels", "fail" if i == 5 else "pass"),
            ("budget.slow", "error" if i == 3 else "pass"),
        )
    ]
    assert results == expected
    (error,) = [e for e in outcome.evaluations if e.result == "error"]
    assert "time budget" in (error.error or "")


def _dies_on_crash_label(answer: Any) -> Any:
    """`worker._answer`, but the worker process dies (as a native crash would end it) on an
    input labelled crash=yes. Set before the workers fork, so they run it."""

    def crashing(engine: Any, shared: Any, rules: Any, form: str, payload: Any) -> Any:
        if form == "at":
            labels = shared[payload]["resource"]["metadata"].get("labels", {})
            if labels.get("crash") == "yes":
                os.kill(os.getpid(), signal.SIGKILL)
        return answer(engine, shared, rules, form, payload)

    return crashing


def _labelled(**labels: str) -> dict[str, Any]:
    body = copy.deepcopy(ISVC)
    body["metadata"]["labels"].update(labels)
    return inputs(body)[0][1]


@contextlib.contextmanager
def _sent_ahead(
    files: Any, rules: list[str], docs: list[dict[str, Any]], timeout: float
) -> Iterator[WorkerEngine]:
    """A worker with `rules` over every one of `docs` sent ahead (prefetch), closed after."""
    worker = WorkerEngine(files, timeout=timeout, shared=docs)
    try:
        worker.start()
        worker.prefetch([(rules, doc) for doc in docs])
        yield worker
    finally:
        worker.close()


def test_a_crash_among_inputs_sent_ahead_is_that_input_s_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker answers inputs sent ahead in groups, so the ones before the input it dies
    # on may have answers it never sent: those are asked again, each on its own, and only
    # the input it dies on is PolicyAborted.
    from auditor.policy import worker as worker_module

    monkeypatch.setattr(worker_module, "_answer", _dies_on_crash_label(worker_module._answer))
    docs = [_labelled(), _labelled(), _labelled(crash="yes"), _labelled()]
    rules = ["data.budget.labels.deny"]
    with _sent_ahead(spec(tmp_path, labels=LABELS), rules, docs, timeout=30.0) as worker:
        assert worker.evaluate_many(rules, docs[0]) == [[]]
        assert worker.evaluate_many(rules, docs[1]) == [[]]
        with pytest.raises(PolicyAborted, match=r"process died \(SIGKILL\)"):
            worker.evaluate_many(rules, docs[2])
        assert worker.evaluate_many(rules, docs[3]) == [[]]


SLOW = RUNAWAY.replace("package budget.runaway", "package budget.slow").replace(
    "some i in", 'input.resource.metadata.labels.speed == "slow"\n      some i in'
)


def _counting_starts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The workers a WorkerEngine forks from now on, one entry each."""
    started: list[int] = []
    start = WorkerEngine._start

    def counted(self: WorkerEngine) -> None:
        started.append(1)
        start(self)

    monkeypatch.setattr(WorkerEngine, "_start", counted)
    return started


def test_an_overrun_among_inputs_sent_ahead_is_that_input_s_alone(tmp_path: Path) -> None:
    # The answers before the slow input may wait in the worker, in its group, while it
    # overruns: they are asked again, and the slow input alone is blamed.
    docs = [_labelled(), _labelled(), _labelled(speed="slow"), _labelled()]
    rules = ["data.budget.slow.deny"]
    with _sent_ahead(spec(tmp_path, slow=SLOW), rules, docs, timeout=1.0) as worker:
        assert worker.evaluate_many(rules, docs[0]) == [[]]
        assert worker.evaluate_many(rules, docs[1]) == [[]]
        with pytest.raises(PolicyTimeout, match="did not finish within 1 s"):
            worker.evaluate_many(rules, docs[2])
        assert worker.evaluate_many(rules, docs[3]) == [[]]


def test_the_input_waited_for_that_overruns_is_blamed_without_a_second_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = [_labelled(speed="slow"), _labelled()]
    rules = ["data.budget.slow.deny"]
    started = _counting_starts(monkeypatch)
    with _sent_ahead(spec(tmp_path, slow=SLOW), rules, docs, timeout=0.5) as worker:
        with pytest.raises(PolicyTimeout):
            worker.evaluate_many(rules, docs[0])
        assert worker.evaluate_many(rules, docs[1]) == [[]]
    assert len(started) == 2  # the one it overran in, the next for the other input


def test_answers_sent_ahead_come_back_in_fewer_messages_than_answers(tmp_path: Path) -> None:
    # The parent's thread is woken once per group of answers, not once per answer: a third
    # of the policy stage's time at 10,000 resources went to those hand-overs.
    docs = [inputs(ISVC)[0][1] for _ in range(32)]
    worker = WorkerEngine(spec(tmp_path, labels=LABELS), timeout=30.0, shared=docs)
    received: list[Any] = []
    try:
        worker.start()
        conn = worker._connection()
        recv = conn.recv

        def counted() -> Any:
            message = recv()
            received.append(message)
            return message

        conn.recv = counted  # type: ignore[method-assign]
        worker.prefetch([(["data.budget.labels.deny"], doc) for doc in docs])
        answers = [worker.evaluate_many(["data.budget.labels.deny"], doc) for doc in docs]
    finally:
        worker.close()
    assert answers == [[[]]] * 32
    assert 1 <= len(received) < 32
    assert sum(len(payload) for status, payload in received if status == "many") == 32


HUNGRY = """
    package budget.hungry
    import rego.v1
    deny contains "never reached" if {
      count([i | some i in numbers.range(1, 50000000)]) < 0
    }
"""


def test_a_policy_past_its_memory_allowance_costs_that_evaluation_alone(tmp_path: Path) -> None:
    # 50 million numbers are gigabytes to regorus: with 64 MiB over what it inherited, the
    # worker cannot allocate them and dies; the call is an error, the next gets a new worker.
    worker = WorkerEngine(
        spec(tmp_path, labels=LABELS, hungry=HUNGRY), timeout=60.0, memory=64 * 1024**2
    )
    doc = inputs(ISVC)[0][1]
    # pytest's fault handler, which the worker would inherit, would print its stack as it dies
    handler = faulthandler.is_enabled()
    faulthandler.disable()
    try:
        with pytest.raises(PolicyAborted, match=r"out of memory.*policy\.memory_bytes"):
            worker.evaluate_many(["data.budget.hungry.deny"], doc)
        assert worker.evaluate_many(["data.budget.labels.deny"], doc) == [[]]
    finally:
        worker.close()
        if handler:
            faulthandler.enable()


def test_the_memory_allowance_is_configured_in_auditor_yaml(tmp_path: Path) -> None:
    config_file = tmp_path / "auditor.yaml"
    config_file.write_text(CONFIG + "policy: {memory_bytes: 536870912}\n")
    assert load_config(str(config_file)).policy.memory_bytes == 512 * 1024**2
    for wrong in ("1000", "1.5e9", "100000000000000000000000"):
        config_file.write_text(CONFIG + f"policy: {{memory_bytes: {wrong}}}\n")
        with pytest.raises(ConfigError, match="memory_bytes"):
            load_config(str(config_file))


def test_an_allowance_past_what_the_system_counts_is_no_limit(tmp_path: Path) -> None:
    # a worker given exabytes evaluates as one given no limit, rather than dying at start
    worker = WorkerEngine(spec(tmp_path, labels=LABELS), timeout=30.0, memory=2**70)
    try:
        assert worker.evaluate_many(["data.budget.labels.deny"], inputs(ISVC)[0][1]) == [[]]
    finally:
        worker.close()

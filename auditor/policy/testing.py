"""`auditor policy test`: runs `test_*` rules the way `opa test` does.

Every `.rego` under the paths is loaded, `*_test.rego` included; every rule named `test_*` in
any package is a test. A test passes when its value is `true`; undefined or any other value
fails; a run-time error is an error (a failure with its reason). `todo_test_*` rules are
skipped and reported. `with input as ...` and `with data.x as ...` work as in OPA (regorus
implements `with`). The text report follows `opa test` (`-v` lists every test).

Each test has a time budget, as each evaluation of `policy eval` and `audit` has: regorus holds
the GIL in native code and cannot be interrupted, so the tests run in a worker process forked
from the loaded engine (`worker.WorkerEngine`), and one that overruns is stopped (its worker
killed, the next test run by a fresh one) and reported as an error; the others still run.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from auditor.defaults import DEFAULT_POLICY_TIMEOUT_SECONDS
from auditor.errors import InputError
from auditor.exit_codes import ExitCode
from auditor.policy import gatekeeper
from auditor.policy.embedded import EmbeddedEngine
from auditor.policy.engine import PolicyAborted, PolicyEvalError, PolicyTimeout
from auditor.policy.loader import TestRule, load_policy_files
from auditor.policy.worker import WorkerEngine

TestOutcome = Literal["pass", "fail", "error", "skip"]
_LABELS: dict[TestOutcome, str] = {
    "pass": "PASS",
    "fail": "FAIL",
    "error": "ERROR",
    "skip": "SKIPPED",
}
_RULE = "-" * 80


@dataclass(frozen=True, slots=True)
class TestResult:
    __test__ = False  # not a pytest test class

    test: TestRule
    outcome: TestOutcome
    duration_ms: float
    error: str | None = None
    prints: tuple[str, ...] = ()
    value: object = None  # what a failing test evaluated to (None: undefined)


@dataclass(frozen=True, slots=True)
class TestReport:
    __test__ = False

    results: tuple[TestResult, ...]

    def count(self, outcome: TestOutcome) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def ok(self) -> bool:
        return all(r.outcome in ("pass", "skip") for r in self.results)

    def exit_code(self) -> ExitCode:
        """CLEAN (0) when every test passed (skips allowed), FINDINGS (1) otherwise."""
        return ExitCode.CLEAN if self.ok else ExitCode.FINDINGS


@dataclass(frozen=True, slots=True)
class _Ran:
    """What one test evaluated to, as the engine that ran it (perhaps in a worker) saw it."""

    value: object
    error: str | None
    prints: tuple[str, ...]
    duration_ms: float


class _TestEngine(EmbeddedEngine):
    """The engine the tests run in. A test has no input of its own (as under `opa test`: `with
    input as ...` gives it one), so the input a worker is handed is not set; and what a worker
    sends back of a test is its `_Ran`: the value or error, its prints and its duration."""

    def set_input(self, input_doc: object, *, checked: bool = False, whole: bool = False) -> None:
        pass

    def set_input_json(self, text: str) -> None:
        pass

    def evaluate_loaded_many(self, rules: Sequence[str]) -> list[Any]:
        return [self.run(rule) for rule in rules]

    def run(self, rule: str) -> _Ran:
        started = time.perf_counter()
        try:
            value, error = self.evaluate_loaded_input(rule), None
        except PolicyEvalError as exc:
            value, error = None, str(exc)
        duration = (time.perf_counter() - started) * 1000
        return _Ran(value, error, tuple(self.take_prints()), duration)


def run_policy_tests(
    paths: Sequence[str],
    *,
    data_files: Sequence[str] = (),
    timeout: float | None = DEFAULT_POLICY_TIMEOUT_SECONDS,
) -> TestReport:
    """Runs every test under `paths`, each within `timeout` seconds (None: no budget, run in
    this process). Raises PolicyLoadError (exit 2) when a module does not parse or compile: no
    test result can be trusted then; and InputError (exit 2) when the paths hold no test at
    all: `PASS: 0/0` would pass without checking anything."""
    policy_set = load_policy_files(
        paths, data_files=data_files, include_tests=True, hooks=(gatekeeper.HOOKS,)
    )
    if not policy_set.tests:
        raise InputError(
            "no tests: no rule named test_* (or todo_test_*) in any .rego file here, so "
            "nothing would be checked",
            file=", ".join(paths),
            hint="tests are rules named test_*, by convention in *_test.rego files; pass their "
            "folder too (`auditor policy test policies/ tests/`)",
        )
    engine = _TestEngine()
    engine.load(policy_set.modules, policy_set.data)
    if timeout is None:
        return _report(policy_set.tests, lambda test: engine.run(test.path))
    worker = WorkerEngine((policy_set.modules, policy_set.data), timeout, engine=engine)
    try:
        return _report(policy_set.tests, lambda test: _run_in(worker, test))
    finally:
        worker.close()


def _run_in(worker: WorkerEngine, test: TestRule) -> _Ran:
    """`test` run by the worker, within its budget: an overrun or a crash is the test's error,
    naming the test, its file and the budget."""
    started = time.perf_counter()
    try:
        (ran,) = worker.evaluate_many([test.path], {})
    except PolicyAborted as exc:
        where = f"{test.path} ({test.source}:{test.line})"
        if isinstance(exc, PolicyTimeout):
            why = (
                f"{where} did not finish within {worker.timeout:g} s, the time budget per "
                "test (--timeout): stopped"
            )
        else:
            why = f"{where}: {exc}"
        return _Ran(None, why, (), (time.perf_counter() - started) * 1000)
    if isinstance(ran, _Ran):
        return ran
    # a worker that could not be forked from the loaded engine (a system without fork) loads
    # a plain one, which sets the `{}` it is sent as the input: the value, without prints
    duration = (time.perf_counter() - started) * 1000
    if isinstance(ran, PolicyEvalError):
        return _Ran(None, str(ran), (), duration)
    return _Ran(ran, None, (), duration)


def _report(tests: Sequence[TestRule], run: Callable[[TestRule], _Ran]) -> TestReport:
    """Every test run by `run`, in order; `todo_test_*` ones skipped."""
    return TestReport(
        tuple(
            TestResult(test=test, outcome="skip", duration_ms=0.0)
            if test.skip
            else _result(test, run(test))
            for test in tests
        )
    )


def _result(test: TestRule, ran: _Ran) -> TestResult:
    outcome: TestOutcome = "pass" if ran.value is True else "fail"
    if ran.error is not None:
        outcome = "error"
    return TestResult(
        test=test,
        outcome=outcome,
        duration_ms=ran.duration_ms,
        error=ran.error,
        prints=ran.prints,
        value=ran.value,
    )


def _duration(ms: float) -> str:
    if ms >= 1000:
        return f"{ms / 1000:.2f}s"
    if ms >= 1:
        return f"{ms:.1f}ms"
    return f"{ms * 1000:.0f}µs"


def format_report(report: TestReport, *, verbose: bool = False) -> str:
    """`opa test` style: failing tests (every test with `verbose`) grouped by file, then
    `PASS: n/m` (and `FAIL:`, `ERROR:`, `SKIPPED:` lines when there are any)."""
    lines: list[str] = []
    shown = [r for r in report.results if verbose or r.outcome in ("fail", "error")]
    current = None
    for result in shown:
        if result.test.source != current:
            if current is not None:
                lines.append("")
            current = result.test.source
            lines.append(f"{current}:")
        label = _LABELS[result.outcome]
        lines.append(f"{result.test.path}: {label} ({_duration(result.duration_ms)})")
        if result.outcome == "error" and result.error:
            lines.append(f"  {result.error}")
        elif result.outcome == "fail" and result.value not in (None, False):
            lines.append(f"  value: {result.value!r} (a test passes only when it is true)")
        if verbose or result.outcome != "pass":
            lines.extend(f"  {p}" for p in result.prints)
    if shown:
        lines.append(_RULE)
    total = len(report.results)
    counts = Counter(r.outcome for r in report.results)
    lines.append(f"PASS: {counts['pass']}/{total}")
    for outcome in ("fail", "error", "skip"):
        if counts[outcome]:
            lines.append(f"{_LABELS[outcome]}: {counts[outcome]}/{total}")  # type: ignore[index]
    return "\n".join(lines) + "\n"


__all__ = ["TestReport", "TestResult", "format_report", "run_policy_tests"]

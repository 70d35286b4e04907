"""`auditor policy test`: runs `test_*` rules the way `opa test` does.

Every `.rego` under the paths is loaded, `*_test.rego` included; every rule named `test_*` in
any package is a test. A test passes when its value is `true`; undefined or any other value
fails; a run-time error is an error (a failure with its reason). `todo_test_*` rules are
skipped and reported. `with input as ...` and `with data.x as ...` work as in OPA (regorus
implements `with`). The text report follows `opa test` (`-v` lists every test).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from auditor.errors import InputError
from auditor.exit_codes import ExitCode
from auditor.policy import gatekeeper
from auditor.policy.embedded import EmbeddedEngine
from auditor.policy.engine import PolicyEvalError
from auditor.policy.loader import TestRule, load_policy_files

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


def run_policy_tests(paths: Sequence[str], *, data_files: Sequence[str] = ()) -> TestReport:
    """Runs every test under `paths`. Raises PolicyLoadError (exit 2) when a module does not
    parse or compile: no test result can be trusted then; and InputError (exit 2) when the
    paths hold no test at all: `PASS: 0/0` would pass without checking anything."""
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
    engine = EmbeddedEngine()
    engine.load(policy_set.modules, policy_set.data)
    results: list[TestResult] = []
    for test in policy_set.tests:
        if test.skip:
            results.append(TestResult(test=test, outcome="skip", duration_ms=0.0))
            continue
        started = time.perf_counter()
        try:
            value = engine.evaluate_loaded_input(test.path)
        except PolicyEvalError as exc:
            outcome: TestOutcome = "error"
            error: str | None = str(exc)
            value = None
        else:
            outcome = "pass" if value is True else "fail"
            error = None
        duration = (time.perf_counter() - started) * 1000
        results.append(
            TestResult(
                test=test,
                outcome=outcome,
                duration_ms=duration,
                error=error,
                prints=tuple(engine.take_prints()),
                value=value,
            )
        )
    return TestReport(results=tuple(results))


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

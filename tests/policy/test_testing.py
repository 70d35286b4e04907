"""`auditor policy test`: test_* rules, like `opa test`."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.errors import InputError
from auditor.policy.engine import PolicyLoadError
from auditor.policy.testing import format_report, run_policy_tests
from tests.policy.rego import write

POLICY = """
    package canary

    import rego.v1

    deny contains msg if {
        pct := input.resource.spec.predictor.canaryTrafficPercent
        pct > data.canary.max
        msg := sprintf("canary at %d%%, over %d%%", [pct, data.canary.max])
    }
"""

TESTS = """
    package canary_test

    import rego.v1

    isvc(pct) := {"resource": {"spec": {"predictor": {"canaryTrafficPercent": pct}}}}

    test_over_the_limit_is_denied if {
        data.canary.deny["canary at 50%, over 20%"] with input as isvc(50) with data.canary.max as 20
    }

    test_under_the_limit_passes if {
        count(data.canary.deny) == 0 with input as isvc(5) with data.canary.max as 20
    }

    test_wrong_expectation_fails if {
        count(data.canary.deny) == 0 with input as isvc(50) with data.canary.max as 20
    }

    test_false_value_fails := false

    test_runtime_error_is_an_error if {
        x := 1 + "a"
        x
    }

    todo_test_later if false
"""


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    write(tmp_path, "canary.rego", POLICY)
    write(tmp_path, "canary_test.rego", TESTS)
    return tmp_path


# 5 s: each test in a worker process with the default budget; None: in this process, unbounded
@pytest.mark.parametrize("timeout", [5.0, None])
def test_each_test_rule_passes_fails_errors_or_is_skipped(
    suite: Path, timeout: float | None
) -> None:
    report = run_policy_tests([str(suite)], timeout=timeout)
    outcomes = {r.test.name: r.outcome for r in report.results}
    assert outcomes == {
        "test_over_the_limit_is_denied": "pass",
        "test_under_the_limit_passes": "pass",
        "test_wrong_expectation_fails": "fail",
        "test_false_value_fails": "fail",
        "test_runtime_error_is_an_error": "error",
        "todo_test_later": "skip",
    }
    assert report.exit_code() == 1
    assert all(r.duration_ms >= 0 for r in report.results)


def test_a_type_error_is_reported_as_error_with_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "t_test.rego", 'package t\nimport rego.v1\n\ntest_add if { 1 + "a" }\n')
    (result,) = run_policy_tests([str(tmp_path)]).results
    assert result.outcome == "error"
    assert result.error is not None and result.error.startswith(f"{path}:4:")


def test_all_passing_exits_0_and_prints_pass_n_of_n(tmp_path: Path) -> None:
    write(tmp_path, "canary.rego", POLICY)
    write(
        tmp_path,
        "canary_test.rego",
        """
        package canary_test
        import rego.v1
        test_ok if { count(data.canary.deny) == 0 with input as {} with data.canary.max as 1 }
        """,
    )
    report = run_policy_tests([str(tmp_path)])
    assert report.exit_code() == 0
    assert format_report(report) == "PASS: 1/1\n"


def test_text_report_is_like_opa_test(suite: Path) -> None:
    report = run_policy_tests([str(suite)])
    quiet = format_report(report)
    assert f"{suite / 'canary_test.rego'}:" in quiet
    assert "data.canary_test.test_wrong_expectation_fails: FAIL (" in quiet
    assert "test_over_the_limit_is_denied" not in quiet  # only failures without -v
    assert quiet.splitlines()[-5:] == [
        "-" * 80,
        "PASS: 2/6",
        "FAIL: 2/6",
        "ERROR: 1/6",
        "SKIPPED: 1/6",
    ]
    verbose = format_report(report, verbose=True)
    assert "data.canary_test.test_over_the_limit_is_denied: PASS (" in verbose


ENDLESS = """
    package endless_test

    import rego.v1

    test_before if true

    test_never_finishes if {
        some i in numbers.range(1, 100000)
        some j in numbers.range(1, 100000)
        i * j == -1
    }

    test_after if {
        print("after the overrun")
        true
    }
"""


def test_a_test_that_never_finishes_is_stopped_at_its_budget_and_the_others_still_run(
    tmp_path: Path,
) -> None:
    # 10^10 products: regorus would hold the GIL for hours
    path = write(tmp_path, "endless_test.rego", ENDLESS)
    report = run_policy_tests([str(tmp_path)], timeout=0.5)
    outcomes = {r.test.name: r.outcome for r in report.results}
    assert outcomes == {"test_before": "pass", "test_never_finishes": "error", "test_after": "pass"}
    overrun = next(r for r in report.results if r.outcome == "error")
    line = path.read_text().splitlines().index("test_never_finishes if {") + 1
    assert overrun.error == (
        f"data.endless_test.test_never_finishes ({path}:{line}) did not finish within 0.5 s, "
        "the time budget per test (--timeout): stopped"
    )
    after = next(r for r in report.results if r.test.name == "test_after")
    assert any("after the overrun" in p for p in after.prints)  # a fresh worker ran it
    assert report.exit_code() == 1


@pytest.mark.parametrize("timeout", [5.0, None])
def test_a_test_has_no_input_of_its_own(tmp_path: Path, timeout: float | None) -> None:
    # as under `opa test`: only `with input as ...` gives a test an input
    write(
        tmp_path,
        "input_test.rego",
        """
        package input_test
        import rego.v1
        test_input_is_undefined if not input
        test_with_gives_one if { input == {"a": 1} with input as {"a": 1} }
        """,
    )
    report = run_policy_tests([str(tmp_path)], timeout=timeout)
    assert [r.outcome for r in report.results] == ["pass", "pass"]


def test_v0_tests_and_prints_are_supported(tmp_path: Path) -> None:
    write(
        tmp_path,
        "legacy_test.rego",
        """
        package legacy_test
        test_v0 { print("checking"); 1 == 1 }
        """,
    )
    (result,) = run_policy_tests([str(tmp_path)]).results
    assert result.outcome == "pass"
    assert any("checking" in p for p in result.prints)


def test_a_broken_test_file_is_a_load_error(tmp_path: Path) -> None:
    path = write(tmp_path, "x_test.rego", "package x\nimport rego.v1\n\ntest_x if {\n")
    with pytest.raises(PolicyLoadError) as err:
        run_policy_tests([str(tmp_path)])
    assert err.value.file == str(path)


def test_a_path_without_tests_is_an_input_error_naming_it(tmp_path: Path) -> None:
    # `PASS: 0/0` and exit 0 would tell CI that a suite passed when there was none
    write(tmp_path, "canary.rego", POLICY)
    with pytest.raises(InputError, match="no tests") as info:
        run_policy_tests([str(tmp_path)])
    assert info.value.file == str(tmp_path)

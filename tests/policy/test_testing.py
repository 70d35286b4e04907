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


def test_each_test_rule_passes_fails_errors_or_is_skipped(suite: Path) -> None:
    report = run_policy_tests([str(suite)])
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

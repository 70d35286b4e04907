"""Loading policies: files, packages, v0/v1 syntax, test files, data, and located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.errors import InputError
from auditor.policy.engine import PolicyLoadError
from auditor.policy.loader import load_data_files, load_policy_files, parse_module
from tests.policy.rego import write

V1 = """
    package auditor.serving.team

    import rego.v1

    deny contains msg if {
        not input.resource.metadata.labels.team
        msg := "no team label"
    }
"""

V0 = """
    package legacy.team

    deny[msg] {
        not input.resource.metadata.labels.team
        msg := "no team label"
    }
"""


def test_v1_and_v0_modules_are_told_apart_per_file(tmp_path: Path) -> None:
    write(tmp_path, "v1.rego", V1)
    write(tmp_path, "v0.rego", V0)
    policy_set = load_policy_files([str(tmp_path)], hooks=())
    syntax = {m.package: m.v0 for m in policy_set.modules}
    assert syntax == {"auditor.serving.team": False, "legacy.team": True}


def test_v1_without_the_rego_v1_import_is_v1() -> None:
    text = "package p\n\ndeny contains msg if { msg := input.x }\n"
    assert parse_module("p.rego", text).module.v0 is False


def test_v0_with_future_keywords_is_v0() -> None:
    text = "package p\nimport future.keywords.in\n\ndeny[msg] { some x in input.xs; msg := x }\n"
    assert parse_module("p.rego", text).module.v0 is True


def test_package_is_a_policy_only_when_it_defines_deny_warn_or_violation(tmp_path: Path) -> None:
    write(tmp_path, "lib/util.rego", "package lib.util\nimport rego.v1\nis_prod if input.x\n")
    write(tmp_path, "p.rego", V1)
    policy_set = load_policy_files([str(tmp_path)], hooks=())
    assert [p.id for p in policy_set.policies] == ["auditor.serving.team"]
    assert {m.package for m in policy_set.modules} == {"lib.util", "auditor.serving.team"}


def test_test_files_are_left_out_unless_tests_are_wanted(tmp_path: Path) -> None:
    write(tmp_path, "p.rego", V1)
    write(
        tmp_path,
        "p_test.rego",
        "package auditor.serving.team_test\nimport rego.v1\ntest_x if true\ndeny contains 1 if true\n",
    )
    plain = load_policy_files([str(tmp_path)], hooks=())
    assert [m.source for m in plain.modules] == [str(tmp_path / "p.rego")]
    assert plain.tests == ()
    with_tests = load_policy_files([str(tmp_path)], hooks=(), include_tests=True)
    assert len(with_tests.modules) == 2
    assert [t.path for t in with_tests.tests] == ["data.auditor.serving.team_test.test_x"]
    # a deny rule in a test package does not make it a policy
    assert [p.id for p in with_tests.policies] == ["auditor.serving.team"]


def test_a_single_file_path_and_hidden_directories(tmp_path: Path) -> None:
    write(tmp_path, "p.rego", V1)
    write(tmp_path, ".git/x.rego", "this is not rego")
    assert len(load_policy_files([str(tmp_path)], hooks=()).modules) == 1
    assert len(load_policy_files([str(tmp_path / "p.rego")], hooks=()).modules) == 1


@pytest.mark.parametrize(
    ("text", "line"),
    [
        # v1: a string never closed, on line 5
        ('package p\nimport rego.v1\n\n\ndeny contains m if { m := "abc }\n', 5),
        # v0 (deny[msg] {...}) with a real mistake further down, on line 4
        ("package p\n\ndeny[msg] { msg := 1 }\nwarn[msg] { msg := := 2 }\n", 4),
        # v1 with the mistake on line 3, after the v1-only syntax
        ("package p\n\ndeny contains msg if { msg := := 1 }\n", 3),
    ],
)
def test_syntax_error_names_the_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "broken.rego"
    path.write_text(text)
    with pytest.raises(PolicyLoadError) as err:
        load_policy_files([str(tmp_path)], hooks=())
    assert (err.value.file, err.value.line) == (str(path), line)
    assert err.value.diagnostics().startswith(f"{path}:{line}: Rego: ")
    assert err.value.exit_code == 2


def test_syntax_error_line_is_shifted_by_the_line_offset() -> None:
    with pytest.raises(PolicyLoadError) as err:
        parse_module("templates/t.yaml", "package t\n\nviolation[{", line_offset=20)
    assert err.value.file == "templates/t.yaml"
    assert err.value.line is not None and err.value.line > 20


def test_no_policies_at_all_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match="no policies"):
        load_policy_files([str(tmp_path)], hooks=())


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match="no such file"):
        load_policy_files([str(tmp_path / "nope")], hooks=())


def test_data_files_merge_at_the_root_of_data(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "auditor:\n  registries: [oci://registry.example.com]\n")
    b = write(tmp_path, "b.json", '{"auditor": {"max_canary": 20}, "teams": ["risk"]}')
    assert load_data_files([str(a), str(b)]) == {
        "auditor": {"registries": ["oci://registry.example.com"], "max_canary": 20},
        "teams": ["risk"],
    }


def test_two_data_files_setting_one_value_differently_is_an_error(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "limits: {canary: 10}\n")
    b = write(tmp_path, "b.yaml", "limits: {canary: 20}\n")
    with pytest.raises(InputError) as err:
        load_data_files([str(a), str(b)])
    assert err.value.file == str(b)
    assert "data.limits.canary" in err.value.message


def test_a_data_file_must_be_a_mapping(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "- 1\n- 2\n")
    with pytest.raises(InputError, match="mapping"):
        load_data_files([str(a)])

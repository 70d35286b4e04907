"""OPA METADATA annotations become a policy's title, severity and controls."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.policy.engine import PolicyLoadError
from auditor.policy.loader import load_policy_files, parse_module
from tests.policy.rego import write

PINNED = """
    # METADATA
    # title: Model storage is digest-pinned
    # description: A model must be addressed by content, not by a mutable path.
    # custom:
    #   severity: critical
    #   controls:
    #     - SLSA-L3
    #     - NIST-SSDF-PS.2
    package auditor.model.pinned

    import rego.v1

    deny contains msg if {
        input.model.digest == null
        msg := "model is not digest-pinned"
    }

    # METADATA
    # title: Model version is declared
    # custom:
    #   severity: medium
    #   controls: [CIS-5.2.1]
    warn contains "no model version" if input.model.version == null
"""


def _policy(tmp_path: Path, text: str, name: str = "p.rego"):  # type: ignore[no-untyped-def]
    write(tmp_path, name, text)
    (policy,) = load_policy_files([str(tmp_path)], hooks=()).policies
    return policy


def test_package_annotation_sets_title_description_severity_and_controls(tmp_path: Path) -> None:
    policy = _policy(tmp_path, PINNED)
    assert policy.id == "auditor.model.pinned"
    assert policy.title == "Model storage is digest-pinned"
    assert policy.description.startswith("A model must be addressed by content")
    assert policy.severity == "critical"
    assert policy.controls == ("SLSA-L3", "NIST-SSDF-PS.2", "CIS-5.2.1")


def test_rule_annotation_on_warn_sets_the_warn_severity_only(tmp_path: Path) -> None:
    policy = _policy(tmp_path, PINNED)
    assert policy.warn_severity == "medium"
    assert policy.severity == "critical"


def test_without_metadata_deny_is_high_and_warn_is_low(tmp_path: Path) -> None:
    policy = _policy(
        tmp_path,
        """
        package plain
        import rego.v1
        deny contains "x" if false
        warn contains "y" if false
        """,
    )
    assert (policy.title, policy.severity, policy.warn_severity, policy.controls) == (
        "",
        "high",
        "low",
        (),
    )
    assert policy.rules == ("deny", "warn")


def test_rule_annotation_on_deny_wins_over_the_package_severity(tmp_path: Path) -> None:
    policy = _policy(
        tmp_path,
        """
        # METADATA
        # custom:
        #   severity: low
        package p
        import rego.v1

        # METADATA
        # title: No privileged containers
        # custom:
        #   severity: CRITICAL
        #   controls: CIS-5.2.1
        deny contains "x" if false
        """,
    )
    assert policy.severity == "critical"  # case-insensitive
    assert policy.title == "No privileged containers"  # the package has none
    assert policy.controls == ("CIS-5.2.1",)  # a single control may be a string


def test_document_scope_on_violation_and_a_blank_line_before_the_rule(tmp_path: Path) -> None:
    policy = _policy(
        tmp_path,
        """
        package k8s
        import rego.v1

        # METADATA
        # scope: document
        # custom:
        #   severity: medium

        # a plain comment between the block and its rule is allowed after a blank line
        violation contains {"msg": "x"} if false
        """,
    )
    assert policy.rules == ("violation",)
    assert policy.severity == "medium"


def test_subpackages_annotation_applies_to_nested_packages(tmp_path: Path) -> None:
    write(
        tmp_path,
        "root.rego",
        """
        # METADATA
        # scope: subpackages
        # custom:
        #   severity: info
        #   controls: [SLSA-L2]
        package acme
        """,
    )
    write(tmp_path, "child.rego", "package acme.child\nimport rego.v1\ndeny contains 1 if false\n")
    (policy,) = load_policy_files([str(tmp_path)], hooks=()).policies
    assert policy.id == "acme.child"
    assert (policy.severity, policy.controls) == ("info", ("SLSA-L2",))


def test_package_annotation_in_another_file_of_the_package_counts(tmp_path: Path) -> None:
    write(tmp_path, "a.rego", "package p\nimport rego.v1\ndeny contains 1 if false\n")
    write(tmp_path, "b.rego", "# METADATA\n# title: From b\npackage p\n")
    (policy,) = load_policy_files([str(tmp_path)], hooks=()).policies
    assert policy.title == "From b"
    assert policy.source.endswith("a.rego")  # the file that defines the rules


def test_indented_comment_block_is_not_metadata(tmp_path: Path) -> None:
    policy = _policy(
        tmp_path,
        """
        package p
        import rego.v1
        deny contains "x" if {
            # METADATA
            # custom: {severity: low}
            false
        }
        """,
    )
    assert policy.severity == "high"


def test_bad_yaml_names_the_file_and_the_line_of_the_problem(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bad.rego",
        """
        package p

        # METADATA
        # title: fine
        # custom:
        #   severity: [high
        deny[msg] { msg := "x" }
        """,
    )
    with pytest.raises(PolicyLoadError) as err:
        load_policy_files([str(tmp_path)], hooks=())
    assert err.value.file == str(path)
    assert err.value.line is not None and 3 <= err.value.line <= 7
    assert "METADATA" in err.value.diagnostics()


@pytest.mark.parametrize(
    ("custom", "words"),
    [
        ("severity: urgent", "severity"),
        ("controls: {a: 1}", "controls"),
        ("controls: [1, 2]", "controls"),
    ],
)
def test_malformed_custom_fields_are_load_errors_at_the_block(
    tmp_path: Path, custom: str, words: str
) -> None:
    path = write(
        tmp_path,
        "p.rego",
        f"package p\nimport rego.v1\n\n# METADATA\n# custom:\n#   {custom}\ndeny contains 1 if false\n",
    )
    with pytest.raises(PolicyLoadError) as err:
        load_policy_files([str(tmp_path)], hooks=())
    assert (err.value.file, err.value.line) == (str(path), 4)
    assert words in err.value.message


def test_annotation_lines_shift_with_the_module_line_offset() -> None:
    text = "package p\nimport rego.v1\n# METADATA\n# custom: {severity: nope}\ndeny contains 1 if false\n"
    with pytest.raises(PolicyLoadError) as err:
        parse_module("template.yaml", text, line_offset=10)
    assert (err.value.file, err.value.line) == ("template.yaml", 13)


def test_rule_scope_block_before_the_package_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "p.rego", "# METADATA\n# scope: rule\npackage p\n")
    with pytest.raises(PolicyLoadError, match="must precede a rule"):
        load_policy_files([str(tmp_path)], hooks=())

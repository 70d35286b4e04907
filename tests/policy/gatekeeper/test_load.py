"""Loading ConstraintTemplates and Constraints into Rego modules and one Policy per Constraint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from auditor.policy.embedded import EmbeddedEngine
from auditor.policy.engine import PolicyLoadError
from auditor.policy.gatekeeper import (
    AUDIT,
    GATOR,
    enforcement_action,
    gatekeeper_input,
    load_gatekeeper,
    unsupported_reason,
)
from tests.policy.gatekeeper.builders import (
    EXEMPT_LIB,
    PRIVILEGED_REGO,
    REQUIRED_LABELS_REGO,
    UNIQUE_HOST_REGO,
    constraint_yaml,
    pod,
    template_yaml,
    write,
)

LABELS = "K8sRequiredLabels"


def required_labels(tmp_path: Path, api_version: str = "templates.gatekeeper.sh/v1") -> Path:
    write(
        tmp_path / "template.yaml",
        template_yaml(LABELS, REQUIRED_LABELS_REGO, api_version=api_version),
    )
    write(
        tmp_path / "constraint.yaml",
        constraint_yaml(LABELS, "must-have-team", {"parameters": {"labels": ["team"]}}),
    )
    return tmp_path


def violations(tmp_path: Path, obj: dict[str, Any]) -> list[dict[str, Any]]:
    modules, policies = load_gatekeeper([tmp_path])
    engine = EmbeddedEngine()
    engine.load(modules, {"inventory": {"cluster": {}, "namespace": {}}})
    out: list[dict[str, Any]] = []
    for policy in policies:
        out += (
            engine.evaluate(f"data.{policy.package}.violation", gatekeeper_input(policy, obj)) or []
        )
    return out


@pytest.mark.parametrize(
    "api_version",
    [
        "templates.gatekeeper.sh/v1",
        "templates.gatekeeper.sh/v1beta1",
        "templates.gatekeeper.sh/v1alpha1",
    ],
)
def test_template_versions_v1_v1beta1_v1alpha1_all_load(tmp_path: Path, api_version: str) -> None:
    required_labels(tmp_path, api_version=api_version)
    found = violations(tmp_path, pod("untagged"))
    assert [v["msg"] for v in found] == ['you must provide labels: {"team"}']


def test_unknown_template_version_is_a_load_error(tmp_path: Path) -> None:
    required_labels(tmp_path, api_version="templates.gatekeeper.sh/v2")
    with pytest.raises(PolicyLoadError, match="v2 is not one of"):
        load_gatekeeper([tmp_path])


def test_one_policy_per_constraint_named_kind_slash_name_with_its_spec(tmp_path: Path) -> None:
    required_labels(tmp_path)
    write(
        tmp_path / "second.yaml",
        constraint_yaml(LABELS, "must-have-owner", {"parameters": {"labels": ["owner"]}}),
    )
    _, policies = load_gatekeeper([tmp_path])
    assert sorted(p.id for p in policies) == [
        f"{LABELS}/must-have-owner",
        f"{LABELS}/must-have-team",
    ]
    team = next(p for p in policies if p.id.endswith("team"))
    assert team.kind == "gatekeeper"
    assert team.rules == ("violation",)
    assert team.constraint == {"parameters": {"labels": ["team"]}}
    assert team.title == f"{LABELS} title"
    assert team.source.endswith("constraint.yaml")


def test_template_without_constraint_loads_but_evaluates_nothing(tmp_path: Path) -> None:
    write(tmp_path / "template.yaml", template_yaml(LABELS, REQUIRED_LABELS_REGO))
    modules, policies = load_gatekeeper([tmp_path])
    assert len(modules) == 1
    assert policies == ()


def test_constraint_without_its_template_is_a_load_error_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "orphan.yaml", constraint_yaml("K8sMissing", "x"))
    with pytest.raises(
        PolicyLoadError, match="no ConstraintTemplate defines kind K8sMissing"
    ) as err:
        load_gatekeeper([tmp_path])
    assert err.value.file == str(path)
    assert err.value.line == 1


def test_rego_and_libs_are_isolated_per_template(tmp_path: Path) -> None:
    """Two templates whose libs share `package lib.exempt` with different bodies, as real
    libraries do, each see their own lib (Gatekeeper compiles templates apart)."""
    write(
        tmp_path / "a/template.yaml",
        template_yaml("K8sA", PRIVILEGED_REGO.replace("k8spspprivileged", "a"), libs=(EXEMPT_LIB,)),
    )
    other_lib = EXEMPT_LIB.replace(
        "startswith(container.image", "container.image == exemption; startswith(container.image"
    )
    write(
        tmp_path / "b/template.yaml",
        template_yaml("K8sB", PRIVILEGED_REGO.replace("k8spspprivileged", "b"), libs=(other_lib,)),
    )
    for kind in ("K8sA", "K8sB"):
        write(
            tmp_path / f"{kind}.yaml",
            constraint_yaml(kind, "exempt-safe", {"parameters": {"exemptImages": ["safe/*"]}}),
        )
    modules, policies = load_gatekeeper([tmp_path])
    assert sorted(m.package for m in modules) == [
        "gatekeeper.libs.K8sA.lib.exempt",
        "gatekeeper.libs.K8sB.lib.exempt",
        "gatekeeper.templates.K8sA",
        "gatekeeper.templates.K8sB",
    ]
    engine = EmbeddedEngine()
    engine.load(modules, {})
    privileged = pod(
        "p", containers=[{"name": "c", "image": "safe/x", "securityContext": {"privileged": True}}]
    )
    results = {
        p.id: engine.evaluate(f"data.{p.package}.violation", gatekeeper_input(p, privileged))
        for p in policies
    }
    assert results == {
        "K8sA/exempt-safe": [],  # prefix exemption
        "K8sB/exempt-safe": [{"msg": "Privileged container is not allowed: c"}],  # exact only
    }


def test_code_form_uses_the_rego_engine_entry_and_its_libs(tmp_path: Path) -> None:
    write(
        tmp_path / "template.yaml",
        template_yaml("K8sPriv", PRIVILEGED_REGO, libs=(EXEMPT_LIB,), code_form=True),
    )
    write(tmp_path / "constraint.yaml", constraint_yaml("K8sPriv", "no-privileged"))
    found = violations(
        tmp_path,
        pod("p", containers=[{"name": "c", "image": "x", "securityContext": {"privileged": True}}]),
    )
    assert found == [{"msg": "Privileged container is not allowed: c"}]


def test_cel_only_template_is_flagged_not_silently_passed(tmp_path: Path) -> None:
    write(
        tmp_path / "template.yaml",
        """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8scel}
spec:
  crd: {spec: {names: {kind: K8sCel}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      code:
        - engine: K8sNativeValidation
          source:
            validations:
              - expression: "object.metadata.name != 'bad'"
""",
    )
    write(tmp_path / "constraint.yaml", constraint_yaml("K8sCel", "cel"))
    modules, (policy,) = load_gatekeeper([tmp_path])
    assert modules == ()
    reason = unsupported_reason(policy)
    assert reason is not None and "K8sNativeValidation" in reason and "CEL" in reason


def test_rego_v0_syntax_is_parsed_as_v0_and_rego_v1_import_as_v1(tmp_path: Path) -> None:
    v1 = """
package k8sv1
import rego.v1

violation contains {"msg": "v1 rule"} if input.review.object.kind == "Pod"
"""
    write(tmp_path / "v0.yaml", template_yaml(LABELS, REQUIRED_LABELS_REGO))
    write(tmp_path / "v1.yaml", template_yaml("K8sV1", v1))
    write(
        tmp_path / "c.yaml",
        constraint_yaml(LABELS, "team", {"parameters": {"labels": ["team"]}})
        + "---\n"
        + constraint_yaml("K8sV1", "v1"),
    )
    modules, _ = load_gatekeeper([tmp_path])
    assert {m.package: m.v0 for m in modules} == {
        "gatekeeper.templates.K8sRequiredLabels": True,
        "gatekeeper.templates.K8sV1": False,
    }
    assert sorted(v["msg"] for v in violations(tmp_path, pod("p"))) == [
        "v1 rule",
        'you must provide labels: {"team"}',
    ]


def test_deprecated_opa_builtins_still_work_as_in_gatekeeper(tmp_path: Path) -> None:
    rego = """
package k8sdeprecated

violation[{"msg": "matched"}] {
  re_match("^ml-", input.review.object.metadata.name)
  all([true, true])
  count(set_diff({1, 2}, {1})) == 1
}
"""
    write(tmp_path / "t.yaml", template_yaml("K8sDeprecated", rego))
    write(tmp_path / "c.yaml", constraint_yaml("K8sDeprecated", "d"))
    assert violations(tmp_path, pod("ml-server")) == [{"msg": "matched"}]
    assert violations(tmp_path, pod("web")) == []


def test_syntax_error_in_template_rego_names_the_yaml_file_and_the_line_in_it(
    tmp_path: Path,
) -> None:
    broken = REQUIRED_LABELS_REGO.replace("count(missing) > 0", "count(missing) > > 0")
    path = write(tmp_path / "template.yaml", template_yaml(LABELS, broken))
    with pytest.raises(PolicyLoadError) as err:
        load_gatekeeper([tmp_path])
    lines = path.read_text().splitlines()
    assert err.value.file == str(path)
    assert err.value.line is not None
    assert "count(missing) > > 0" in lines[err.value.line - 1]
    assert f"{path}:{err.value.line}" in err.value.diagnostics()


def test_syntax_error_in_a_template_inside_a_list_names_its_own_line(tmp_path: Path) -> None:
    # `kubectl get constrainttemplates -o yaml` writes a List: the template's values are
    # located inside its item, not at the top of the document
    broken = REQUIRED_LABELS_REGO.replace("count(missing) > 0", "count(missing) > > 0")
    item = "\n".join("  " + line for line in template_yaml(LABELS, broken).splitlines())
    listing = "apiVersion: v1\nkind: List\nitems:\n-" + item[1:] + "\n"
    path = write(tmp_path / "templates.yaml", listing)
    with pytest.raises(PolicyLoadError) as err:
        load_gatekeeper([tmp_path])
    assert err.value.line is not None
    assert "count(missing) > > 0" in path.read_text().splitlines()[err.value.line - 1]


def test_syntax_error_in_a_lib_names_the_line_inside_the_lib(tmp_path: Path) -> None:
    path = write(
        tmp_path / "template.yaml",
        template_yaml(
            "K8sPriv",
            PRIVILEGED_REGO,
            libs=(EXEMPT_LIB.replace('"exemptImages", []', '"exemptImages", ['),),
        ),
    )
    with pytest.raises(PolicyLoadError) as err:
        load_gatekeeper([tmp_path])
    assert err.value.file == str(path)
    assert err.value.line is not None and err.value.line > 20  # inside the lib block, not the rego


def test_template_without_violation_rule_is_a_load_error(tmp_path: Path) -> None:
    write(
        tmp_path / "t.yaml",
        template_yaml("K8sNone", 'package k8snone\n\ndeny[msg] { msg := "x" }\n'),
    )
    with pytest.raises(PolicyLoadError, match="no `violation` rule"):
        load_gatekeeper([tmp_path])


def test_lib_outside_the_lib_package_is_refused_as_gatekeeper_does(tmp_path: Path) -> None:
    write(
        tmp_path / "t.yaml",
        template_yaml("K8sPriv", PRIVILEGED_REGO, libs=("package helpers\n\nx := 1\n",)),
    )
    with pytest.raises(PolicyLoadError, match="package under `lib`"):
        load_gatekeeper([tmp_path])


def test_two_templates_for_one_kind_is_a_load_error(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", template_yaml(LABELS, REQUIRED_LABELS_REGO))
    write(tmp_path / "b.yaml", template_yaml(LABELS, REQUIRED_LABELS_REGO))
    with pytest.raises(PolicyLoadError, match="defined twice"):
        load_gatekeeper([tmp_path])


def test_unrelated_yaml_on_the_policy_path_is_ignored(tmp_path: Path) -> None:
    write(tmp_path / "values.yaml", "replicas: 3\n")
    write(tmp_path / "broken-but-unrelated.yaml", "a: [unclosed\n")
    required_labels(tmp_path)
    assert len(load_gatekeeper([tmp_path]).policies) == 1


# -- enforcementAction ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "severity"),
    [
        ({}, "high"),
        ({"enforcementAction": "deny"}, "high"),
        ({"enforcementAction": "warn"}, "medium"),
        ({"enforcementAction": "dryrun"}, "info"),
        (
            {
                "enforcementAction": "scoped",
                "scopedEnforcementActions": [
                    {"action": "warn", "enforcementPoints": [{"name": "validation.gatekeeper.sh"}]},
                    {"action": "dryrun", "enforcementPoints": [{"name": "audit.gatekeeper.sh"}]},
                ],
            },
            "info",
        ),
        (
            {
                "enforcementAction": "scoped",
                "scopedEnforcementActions": [
                    {"action": "dryrun", "enforcementPoints": [{"name": "*"}]},
                    {"action": "deny", "enforcementPoints": [{"name": "audit.gatekeeper.sh"}]},
                ],
            },
            "high",
        ),
    ],
)
def test_enforcement_action_maps_to_severity(
    tmp_path: Path, spec: dict[str, object], severity: str
) -> None:
    write(tmp_path / "t.yaml", template_yaml(LABELS, REQUIRED_LABELS_REGO))
    write(tmp_path / "c.yaml", constraint_yaml(LABELS, "c", spec))
    (policy,) = load_gatekeeper([tmp_path], enforcement_point=AUDIT).policies
    assert policy.severity == severity


def test_scoped_constraint_not_enforced_at_this_point_is_not_loaded(tmp_path: Path) -> None:
    spec = {
        "enforcementAction": "scoped",
        "scopedEnforcementActions": [
            {"action": "deny", "enforcementPoints": [{"name": "validation.gatekeeper.sh"}]}
        ],
    }
    write(tmp_path / "t.yaml", template_yaml(LABELS, REQUIRED_LABELS_REGO))
    write(tmp_path / "c.yaml", constraint_yaml(LABELS, "admission-only", spec))
    assert load_gatekeeper([tmp_path], enforcement_point=AUDIT).policies == ()
    assert enforcement_action(spec, GATOR) is None
    assert enforcement_action(spec, "validation.gatekeeper.sh") == "deny"


def test_unknown_enforcement_action_is_a_load_error(tmp_path: Path) -> None:
    write(tmp_path / "t.yaml", template_yaml(LABELS, REQUIRED_LABELS_REGO))
    write(tmp_path / "c.yaml", constraint_yaml(LABELS, "c", {"enforcementAction": "Deny"}))
    with pytest.raises(PolicyLoadError, match="'Deny' is not deny, warn, dryrun or scoped"):
        load_gatekeeper([tmp_path])


def test_malformed_selector_is_refused_at_load(tmp_path: Path) -> None:
    write(tmp_path / "t.yaml", template_yaml(LABELS, REQUIRED_LABELS_REGO))
    spec = {"match": {"labelSelector": {"matchExpressions": [{"key": "a", "operator": "Has"}]}}}
    write(tmp_path / "c.yaml", constraint_yaml(LABELS, "c", spec))
    with pytest.raises(PolicyLoadError, match="unknown operator 'Has'"):
        load_gatekeeper([tmp_path])


def test_unique_host_template_loads_with_inventory_reference(tmp_path: Path) -> None:
    write(tmp_path / "t.yaml", template_yaml("K8sUniqueIngressHost", UNIQUE_HOST_REGO))
    modules, _ = load_gatekeeper([tmp_path])
    # re_match was pointed at regex.match in place: still one line per line.
    (module,) = modules
    assert "regex.match(" in module.text and "re_match" not in module.text
    assert module.text.count("\n") == UNIQUE_HOST_REGO.strip("\n").count("\n") + 1

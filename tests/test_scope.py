"""What a run looks at: by default, the kinds and namespaces Git declares."""

from __future__ import annotations

import pytest

from auditor.errors import ConfigError
from auditor.model import Resource, ResourceRef
from auditor.scope import KindSelector, Scope


def res(api_version: str, kind: str, namespace: str, name: str) -> Resource:
    ref = ResourceRef("", api_version, kind, namespace, name)
    return Resource(ref=ref, body={}, side="desired", origin="x@c")


DESIRED = [
    res("serving.kserve.io/v1beta1", "InferenceService", "ml", "fraud"),
    res("autoscaling/v1", "HorizontalPodAutoscaler", "ml", "llm"),
    res("v1", "ConfigMap", "ml-canary", "features"),
    res("v1", "Namespace", "", "ml-batch"),
]


def test_scope_defaults_to_what_git_declares() -> None:
    scope = Scope.from_desired(DESIRED)
    assert {str(k) for k in scope.kinds} == {
        "serving.kserve.io/InferenceService",
        "autoscaling/HorizontalPodAutoscaler",
        "core/ConfigMap",
        "core/Namespace",
    }
    assert scope.namespaces == ("ml", "ml-batch", "ml-canary")
    assert scope.version_for("autoscaling", "HorizontalPodAutoscaler") == "v1"
    assert scope.version_for("", "ConfigMap") == "v1"
    assert scope.version_for("apps", "Deployment") is None


@pytest.mark.parametrize(
    ("ref", "included"),
    [
        (ResourceRef("", "v1", "ConfigMap", "ml", "a"), True),
        (ResourceRef("", "v1", "ConfigMap", "kube-system", "a"), False),
        (ResourceRef("", "v1", "Secret", "ml", "a"), False),  # kind not declared
        (ResourceRef("", "v1", "Namespace", "", "ml"), True),
        (ResourceRef("", "v1", "Namespace", "", "kube-system"), False),
        (ResourceRef("", "apps/v1", "ConfigMap", "ml", "a"), False),  # another group
    ],
)
def test_scope_includes(ref: ResourceRef, included: bool) -> None:
    assert Scope.from_desired(DESIRED).includes(ref) is included


def test_explicit_kinds_and_namespace_globs() -> None:
    scope = Scope.from_desired(
        [*DESIRED, res("apps/v1", "Deployment", "ml-prod", "scorer")],
        kinds=["Deployment", "core/Secret"],
        namespaces=["ml-*"],
        exclude_namespaces=["ml-canary"],
    )
    assert scope.kinds == (KindSelector(None, "Deployment"), KindSelector("", "Secret"))
    assert scope.includes(ResourceRef("", "apps/v1", "Deployment", "ml-prod", "x"))
    assert scope.includes(ResourceRef("", "extensions/v1beta1", "Deployment", "ml-a", "x"))
    assert not scope.includes(ResourceRef("", "apps/v1", "Deployment", "ml-canary", "x"))
    assert not scope.includes(ResourceRef("", "apps/v1", "Deployment", "ml", "x"))
    assert scope.includes(ResourceRef("", "v1", "Secret", "ml-x", "s"))


# -- a filter that leaves nothing of Git compares nothing: a usage error, never clean ---------


@pytest.mark.parametrize(
    ("filters", "key", "words"),
    [
        ({"kinds": ["Deployment"]}, "scope.kinds", "Deployment matches nothing in Git"),
        ({"namespaces": ["prod"]}, "scope.namespaces", "prod matches nothing in Git"),
        # the glob matches, but none of Git's objects of the kinds in scope live there
        (
            {"kinds": ["ConfigMap"], "namespaces": ["ml", "ml-b*"]},
            "scope.namespaces",
            "are in the namespaces ml-canary",
        ),
        ({"exclude_namespaces": ["ml*"]}, "scope.exclude_namespaces", "excludes every"),
        (
            {"namespaces": ["ml-*"], "exclude_namespaces": ["ml-batch", "ml-canary"]},
            "scope.exclude_namespaces",
            "(ml-batch, ml-canary)",
        ),
    ],
)
def test_a_filter_that_leaves_nothing_git_declares_is_a_config_error(
    filters: dict, key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Scope.from_desired(DESIRED, **filters)
    assert info.value.key is not None and info.value.key.startswith(key)
    assert words in info.value.message


@pytest.mark.parametrize(
    "filters",
    [
        {"kinds": ["ConfigMap", "Secret"]},  # a kind Git lacks is still read live (unmanaged)
        {"namespaces": ["ml", "ml-sandbox"]},  # as is a namespace Git leaves empty
        {"namespaces": ["ml-batch"]},  # a Namespace object puts its namespace in Git
        {"exclude_namespaces": ["ml-canary", "kube-*"]},
    ],
)
def test_a_filter_that_keeps_some_of_git_is_accepted(filters: dict) -> None:
    scope = Scope.from_desired(DESIRED, **filters)
    assert any(scope.includes(r.ref) for r in DESIRED)


def test_without_filters_an_empty_git_is_not_the_scope_s_error() -> None:
    # the desired stage refuses a path that declares nothing, naming the path
    assert Scope.from_desired([]).kinds == ()

"""kustomize directories: rendered from the commit, never from the network or the checkout."""

from __future__ import annotations

import shutil

import pytest

from auditor.desired import render
from auditor.errors import InputError, SourceError
from tests.desired.conftest import GitRepo

needs_kustomize = pytest.mark.skipif(
    not (shutil.which("kubectl") or shutil.which("kustomize")),
    reason="needs kubectl or kustomize on PATH",
)

BASE_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: fraud-scorer
spec:
  replicas: 1
  selector: {matchLabels: {app: fraud-scorer}}
  template:
    metadata: {labels: {app: fraud-scorer}}
    spec:
      containers:
        - name: server
          image: registry.example.com/scorer:v1
"""

OVERLAY = """
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: ml-prod
resources:
  - ../../base
patches:
  - path: replicas.yaml
images:
  - name: registry.example.com/scorer
    newTag: v2
"""

REPLICAS_PATCH = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: fraud-scorer
spec:
  replicas: {replicas}
"""


def write_base_and_overlay(repo: GitRepo, *, replicas: int = 3) -> None:
    repo.write("base/kustomization.yaml", "resources:\n  - deployment.yaml\n")
    repo.write("base/deployment.yaml", BASE_DEPLOYMENT)
    repo.write("overlays/prod/kustomization.yaml", OVERLAY)
    repo.write("overlays/prod/replicas.yaml", REPLICAS_PATCH.format(replicas=replicas))


def container_image(body: object) -> str:
    return body["spec"]["template"]["spec"]["containers"][0]["image"]  # type: ignore[index]


@needs_kustomize
def test_an_overlay_is_rendered_from_the_commit(repo: GitRepo) -> None:
    write_base_and_overlay(repo, replicas=3)
    commit = repo.commit()
    # working-tree edits after the commit must not reach kustomize
    repo.write("overlays/prod/replicas.yaml", REPLICAS_PATCH.format(replicas=7))
    repo.write("base/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n")
    repo.write("base/kustomization.yaml", "resources:\n  - deployment.yaml\n  - extra.yaml\n")

    state = repo.read(paths=("overlays/prod",))

    (deployment,) = state.resources
    assert deployment.ref.display() == "Deployment ml-prod/fraud-scorer"
    assert deployment.body["spec"]["replicas"] == 3
    assert container_image(deployment.body) == "registry.example.com/scorer:v2"
    assert deployment.origin == f"overlays/prod/kustomization.yaml@{commit}"


@needs_kustomize
def test_a_kustomize_folder_met_while_walking_is_rendered_not_read_as_yaml(
    repo: GitRepo,
) -> None:
    # the patch file alone is not a valid object set: reading it as YAML would duplicate
    write_base_and_overlay(repo)
    repo.write("plain/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n")
    repo.commit()
    state = repo.read(paths=("overlays", "plain"))
    assert [r.ref.display() for r in state.resources] == [
        "Deployment ml-prod/fraud-scorer",
        "ConfigMap default/plain",
    ]


@needs_kustomize
def test_rendered_objects_without_a_namespace_get_the_default(repo: GitRepo) -> None:
    repo.write("app/Kustomization", "resources: [deployment.yaml]\n")
    repo.write("app/deployment.yaml", BASE_DEPLOYMENT)
    commit = repo.commit()
    (deployment,) = repo.read(paths=("app",), default_namespace="serving").resources
    assert deployment.ref.namespace == "serving"
    assert deployment.origin == f"app/Kustomization@{commit}"


@needs_kustomize
def test_a_base_rendered_twice_names_both_kustomizations(repo: GitRepo) -> None:
    repo.write("base/kustomization.yaml", "resources: [deployment.yaml]\n")
    repo.write("base/deployment.yaml", BASE_DEPLOYMENT)
    repo.write("copy/kustomization.yaml", "resources: [../base]\n")
    repo.commit()
    with pytest.raises(InputError, match="declared twice") as info:
        repo.read()
    assert "base/kustomization.yaml@" in info.value.message
    assert "copy/kustomization.yaml@" in info.value.message
    assert info.value.hint is not None and "--path" in info.value.hint


@needs_kustomize
def test_a_component_is_not_rendered_on_its_own(repo: GitRepo) -> None:
    write_base_and_overlay(repo)
    repo.write(
        "overlays/components/gpu/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n",
    )
    repo.commit()
    state = repo.read(paths=("overlays",))
    assert [r.ref.name for r in state.resources] == ["fraud-scorer"]


@needs_kustomize
def test_a_path_holding_only_components_declares_nothing(repo: GitRepo) -> None:
    # a Component renders only inside a kustomization: on its own it compares nothing
    write_base_and_overlay(repo)
    repo.write(
        "components/gpu/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n",
    )
    repo.commit()
    with pytest.raises(InputError, match="'components' declares no Kubernetes object"):
        repo.read(paths=("overlays", "components"))


@needs_kustomize
def test_kustomize_errors_are_passed_through_with_repo_paths(repo: GitRepo) -> None:
    repo.write(
        "app/kustomization.yaml", "resources: [deployment.yaml]\npatches: [{path: p.yaml}]\n"
    )
    repo.write("app/deployment.yaml", BASE_DEPLOYMENT)
    repo.write("app/p.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: nope}\n")
    commit = repo.commit()
    with pytest.raises(SourceError, match="kustomize failed") as info:
        repo.read(paths=("app",))
    assert info.value.file == f"app/kustomization.yaml@{commit[:12]}"
    assert "nope" in info.value.message
    assert "auditor-render-" not in info.value.message


@pytest.mark.parametrize(
    "reference",
    [
        "github.com/kubernetes-sigs/kustomize/examples/multibases?ref=v1.0.6",
        "https://github.com/org/repo//deploy?ref=main",
        "git@github.com:org/repo.git/deploy",
        "ssh://git@example.com/org/repo.git",
        "git::https://example.com/org/repo.git",
        "https://raw.githubusercontent.com/org/repo/main/deploy.yaml",
        "example.com/org/repo/deploy",
        "../base?ref=v1",
    ],
)
def test_remote_bases_are_refused(repo: GitRepo, reference: str) -> None:
    repo.write("app/kustomization.yaml", f"resources:\n  - {reference}\n")
    commit = repo.commit()
    with pytest.raises(SourceError, match=r"remote base .* is not allowed") as info:
        repo.read(paths=("app",))
    assert reference in info.value.message
    assert "no network" in info.value.message
    assert info.value.file == f"app/kustomization.yaml@{commit[:12]}"


def test_a_remote_base_of_a_local_base_is_refused_too(repo: GitRepo) -> None:
    repo.write("base/kustomization.yaml", "bases: [github.com/org/repo/deploy?ref=v1]\n")
    repo.write("app/kustomization.yaml", "resources: [../base]\n")
    commit = repo.commit()
    with pytest.raises(SourceError, match="remote base") as info:
        repo.read(paths=("app",))
    assert info.value.file == f"base/kustomization.yaml@{commit[:12]}"


def test_helm_charts_are_refused(repo: GitRepo) -> None:
    repo.write(
        "app/kustomization.yaml",
        "helmCharts:\n  - name: kserve\n    repo: https://charts.example.com\n    version: 1.0\n",
    )
    repo.commit()
    with pytest.raises(SourceError, match="helmCharts is not supported") as info:
        repo.read(paths=("app",))
    assert info.value.key == "helmCharts"


@pytest.mark.parametrize(
    ("kustomization", "message"),
    [
        ("resources: [../../outside]\n", "outside the repository"),
        ("resources: [/etc/kubernetes]\n", "outside the repository"),
        ("patches: [{path: ../../../etc/passwd}]\n", "outside the repository"),
        ("resources: [missing.yaml]\n", "'missing.yaml' does not exist at commit"),
        ("resources: [../empty]\n", "is a folder with no kustomization file"),
    ],
)
def test_local_references_must_stay_in_the_commit(
    repo: GitRepo, kustomization: str, message: str
) -> None:
    repo.write("app/kustomization.yaml", kustomization)
    repo.write("empty/readme.txt", "nothing\n")
    repo.commit()
    with pytest.raises(InputError, match=message):
        repo.read(paths=("app",))


def test_no_kustomize_on_path_is_a_source_error(
    repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.write("app/kustomization.yaml", "resources: [cm.yaml]\n")
    repo.write("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    repo.commit()
    monkeypatch.setattr(render.shutil, "which", lambda _name: None)
    with pytest.raises(SourceError, match="needs `kubectl` or `kustomize`"):
        repo.read(paths=("app",))


@needs_kustomize
def test_the_checkout_keeps_inside_symlinks_and_drops_escaping_ones(repo: GitRepo) -> None:
    repo.write("shared/kustomization.yaml", "resources: [cm.yaml]\n")
    repo.write("shared/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\n")
    repo.symlink("app/linked", "../shared")
    repo.symlink("elsewhere/leak", "/etc")  # not needed by the render: must not break it
    repo.write("app/kustomization.yaml", "resources: [linked]\n")
    repo.commit()
    (cm,) = repo.read(paths=("app",)).resources
    assert cm.ref.name == "shared"


@needs_kustomize
def test_kustomize_load_restrictions_still_apply(repo: GitRepo) -> None:
    # kustomize itself refuses a file symlinked from outside the kustomization root
    repo.write("shared/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\n")
    repo.symlink("app/cm.yaml", "../shared/cm.yaml")
    repo.write("app/kustomization.yaml", "resources: [cm.yaml]\n")
    repo.commit()
    with pytest.raises(SourceError, match=r"kustomize failed: .*not in or below 'app'") as info:
        repo.read(paths=("app",))
    assert not info.value.message.startswith("kustomize failed: E")  # no klog prefix

"""Plain YAML/JSON manifests at a commit: which files count, what they become, what is refused."""

from __future__ import annotations

import json
import logging

import pytest

from auditor.config import Limits
from auditor.desired.git import BlobReader
from auditor.errors import InputError
from auditor.model import DesiredState
from auditor.redact import digest_bytes
from tests.desired.conftest import GitRepo, deployment


def names(state: DesiredState) -> list[str]:
    return [r.ref.display() for r in state.resources]


def test_multi_document_yaml_and_json_files_are_read(repo: GitRepo) -> None:
    repo.write("apps/two.yaml", deployment("a") + "---\n" + deployment("b") + "---\n")
    repo.write(
        "apps/svc.json",
        json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}),
    )
    repo.write("apps/cm.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    repo.commit()
    assert names(repo.read()) == [
        "ConfigMap default/c",
        "Service default/s",
        "Deployment default/a",
        "Deployment default/b",
    ]


def test_list_kinds_are_flattened(repo: GitRepo) -> None:
    repo.write(
        "list.yaml",
        """
        apiVersion: v1
        kind: List
        items:
          - {apiVersion: v1, kind: ConfigMap, metadata: {name: one}}
          - {apiVersion: v1, kind: ConfigMap, metadata: {name: two}}
        """,
    )
    repo.commit()
    assert names(repo.read()) == ["ConfigMap default/one", "ConfigMap default/two"]


@pytest.mark.parametrize(
    ("file", "content"),
    [
        ("values.yaml", "replicaCount: 3\nimage: {tag: v1}\n"),
        ("dvc.lock", "schema: '2.0'\n"),  # not a manifest suffix at all
        ("models/dvc.yaml", "stages: {train: {cmd: python train.py}}\n"),
        ("auditor.yaml", "git: {repo: .}\nclusters: []\n"),
        ("empty.yaml", ""),
        ("comments.yaml", "# nothing here\n---\n"),
        (
            "kustomizeconfig.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            "metadata: {name: x}\n",
        ),
        (
            "Kptfile.yaml",
            "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: pkg\n"
            "  annotations: {config.kubernetes.io/local-config: 'true'}\n",
        ),
        (".github/workflows/ci.yaml", deployment("hidden")),  # dot-folders are skipped
        ("apps/.draft.yaml", deployment("draft")),  # and dotfiles
        ("README.md", deployment("docs")),
    ],
)
def test_files_and_documents_that_are_not_objects_are_skipped(
    repo: GitRepo, file: str, content: str
) -> None:
    repo.write("apps/web.yaml", deployment("web"))
    repo.write(file, content)
    repo.commit()
    assert names(repo.read()) == ["Deployment default/web"]


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\nkind: ConfigMap\n"
         "metadata: {name: x}\n", 5, "object has no apiVersion"),
        ("apiVersion: v1\nmetadata: {name: x}\n", 1, "object has no kind"),
        ("# header\n\napiVersion: v1\nkind: ConfigMap\nmetadata: {labels: {}}\n", 3,
         "ConfigMap has no metadata.name"),
        ("apiVersion: v1\nkind: ConfigMap\n", 1, "ConfigMap has no metadata"),
    ],
)  # fmt: skip
def test_half_objects_are_input_errors_naming_file_and_line(
    repo: GitRepo, content: str, line: int, message: str
) -> None:
    repo.write("apps/bad.yaml", content)
    commit = repo.commit()
    with pytest.raises(InputError, match=message) as info:
        repo.read()
    assert info.value.file == f"apps/bad.yaml@{commit[:12]}"
    assert info.value.line == line


def test_malformed_yaml_is_an_input_error_with_file_and_line(repo: GitRepo) -> None:
    repo.write(
        "apps/broken.yaml",
        """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: ok
        data:
          key: [unclosed
        other: 1
        """,
    )
    commit = repo.commit()
    with pytest.raises(InputError, match="invalid YAML") as info:
        repo.read()
    assert info.value.file == f"apps/broken.yaml@{commit[:12]}"
    assert info.value.line == 7
    assert info.value.diagnostics().startswith(f"apps/broken.yaml@{commit[:12]}:7: invalid YAML")


def test_malformed_json_is_an_input_error_with_file_and_line(repo: GitRepo) -> None:
    repo.write("apps/bad.json", '{\n  "apiVersion": "v1",\n  "kind": \n}\n')
    repo.commit()
    with pytest.raises(InputError, match="invalid JSON") as info:
        repo.read()
    assert info.value.line == 4


def test_a_yaml_alias_bomb_is_rejected_fast(repo: GitRepo) -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    repo.write("apps/bomb.yaml", "\n".join(lines) + "\n")
    repo.commit()
    # expanded it would be 9**10 nodes: returning at all shows it was counted, not expanded
    with pytest.raises(InputError, match="alias bomb"):
        repo.read()


@pytest.mark.slow
def test_a_50mb_file_is_rejected_by_its_size_before_it_is_read(
    repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.write("apps/web.yaml", deployment("web"))
    repo.write("apps/huge.yaml", b"# padding\n" * (5 * 1024 * 1024))  # 50 MiB
    commit = repo.commit()
    requested: list[str] = []
    original = BlobReader.read_many

    def spy(self: BlobReader, shas: list[str]):  # type: ignore[no-untyped-def]
        requested.extend(shas)
        return original(self, shas)

    monkeypatch.setattr(BlobReader, "read_many", spy)
    with pytest.raises(InputError, match="52428800 bytes is over the 8388608-byte limit") as info:
        repo.read()
    assert info.value.file == f"apps/huge.yaml@{commit[:12]}"
    huge_blob = repo.git("rev-parse", "HEAD:apps/huge.yaml")
    assert huge_blob not in requested


def test_the_size_limit_comes_from_limits(repo: GitRepo) -> None:
    repo.write("apps/web.yaml", deployment("web"))
    repo.commit()
    with pytest.raises(InputError, match="over the 10-byte limit"):
        repo.read(limits=Limits(max_manifest_bytes=10))


@pytest.mark.parametrize("path", ["../other", "apps/../../other", "/etc", "/"])
def test_paths_outside_the_repository_are_input_errors(repo: GitRepo, path: str) -> None:
    repo.write("apps/web.yaml", deployment("web"))
    repo.commit()
    with pytest.raises(InputError, match=r"outside the repository|is absolute") as info:
        repo.read(paths=(path,))
    assert repr(path) in info.value.message


def test_a_path_missing_at_the_commit_is_an_input_error(repo: GitRepo) -> None:
    repo.write("apps/web.yaml", deployment("web"))
    repo.commit()
    repo.write("later/web.yaml", deployment("later"))  # exists only in the working tree
    with pytest.raises(InputError, match="'later' does not exist at commit"):
        repo.read(paths=("later",))


@pytest.mark.parametrize("target", ["../../outside.yaml", "/etc/passwd"])
def test_a_symlink_escaping_the_repository_is_an_input_error_naming_it(
    repo: GitRepo, target: str
) -> None:
    repo.write("apps/web.yaml", deployment("web"))
    repo.symlink("apps/evil.yaml", target)
    commit = repo.commit()
    with pytest.raises(InputError, match="symlink points outside the repository") as info:
        repo.read()
    assert info.value.file == f"apps/evil.yaml@{commit[:12]}"


def test_a_symlink_inside_the_repository_is_followed(repo: GitRepo) -> None:
    repo.write("shared/model.yaml", deployment("model"))
    repo.write("shared/folder/svc.yaml", deployment("svc"))
    repo.symlink("prod/model.yaml", "../shared/model.yaml")
    repo.symlink("prod/more", "../shared/folder")
    commit = repo.commit()
    state = repo.read(paths=("prod",))
    assert names(state) == ["Deployment default/model", "Deployment default/svc"]
    assert state.resources[0].origin == f"shared/model.yaml@{commit}"


def test_a_file_reached_twice_is_read_once(repo: GitRepo) -> None:
    repo.write("apps/web.yaml", deployment("web"))
    repo.symlink("apps/alias.yaml", "web.yaml")
    repo.commit()
    assert names(repo.read(paths=("apps", "apps/web.yaml", "."))) == ["Deployment default/web"]


@pytest.mark.parametrize("paths", [(".", "apps"), ("apps", "."), ("apps", "apps/ml")])
def test_a_path_that_another_path_walked_first_still_declares_its_objects(
    repo: GitRepo, paths: tuple[str, ...]
) -> None:
    repo.write("apps/ml/web.yaml", deployment("web"))
    repo.commit()
    assert names(repo.read(paths=paths)) == ["Deployment default/web"]


@pytest.mark.parametrize(
    ("files", "path", "words"),
    [
        ({"docs/README.md": "# docs\n"}, "docs", "'docs' holds no manifests"),
        ({"docs/.hidden.yaml": deployment("x")}, "docs", "'docs' holds no manifests"),
        (
            {"config/values.yaml": "replicas: 2\n", "config/empty.yaml": ""},
            "config",
            "'config' declares no Kubernetes object at commit",
        ),
        ({"values.yaml": "replicas: 2\n"}, "values.yaml", "'values.yaml' declares no"),
    ],
)
def test_a_path_that_declares_nothing_is_an_input_error_naming_it(
    repo: GitRepo, files: dict[str, str], path: str, words: str
) -> None:
    repo.write("apps/web.yaml", deployment("web"))
    for name, text in files.items():
        repo.write(name, text)
    repo.commit()
    with pytest.raises(InputError, match=words) as info:
        repo.read(paths=("apps", path))
    assert info.value.key == "path"


def test_a_path_whose_only_entry_is_a_submodule_declares_nothing(repo: GitRepo) -> None:
    repo.write("apps/web.yaml", deployment("web"))
    commit = repo.commit()
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{commit},vendor/charts")
    repo.git("commit", "-q", "--no-gpg-sign", "-m", "submodule")
    with pytest.raises(InputError, match="'vendor' holds no manifests"):
        repo.read(paths=("vendor",))


def test_a_helm_chart_reached_through_a_symlink_is_refused(repo: GitRepo) -> None:
    repo.write("charts/scorer/Chart.yaml", "apiVersion: v2\nname: scorer\nversion: 0.1.0\n")
    repo.write("charts/scorer/templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\n")
    repo.write("apps/web.yaml", deployment("web"))
    repo.symlink("apps/scorer", "../charts/scorer")
    commit = repo.commit()
    with pytest.raises(InputError, match="is a Helm chart") as info:
        repo.read(paths=("apps",))
    assert f"charts/scorer/Chart.yaml@{commit[:12]}" in info.value.message
    assert "helm template" in info.value.message


def test_only_chart_yaml_spelled_as_helm_spells_it_makes_a_chart(repo: GitRepo) -> None:
    # Helm reads `Chart.yaml` and nothing else: `chart.yaml` here is an ordinary manifest
    repo.write("apps/chart.yaml", deployment("web"))
    repo.commit()
    assert names(repo.read(paths=("apps",))) == ["Deployment default/web"]


def test_submodules_are_skipped_with_a_warning(
    repo: GitRepo, caplog: pytest.LogCaptureFixture
) -> None:
    repo.write("apps/web.yaml", deployment("web"))
    commit = repo.commit()
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{commit},vendor/charts.yaml")
    repo.git("commit", "-q", "--no-gpg-sign", "-m", "submodule")
    with caplog.at_level(logging.WARNING):
        assert names(repo.read()) == ["Deployment default/web"]
    assert "skipping submodule vendor/charts.yaml" in caplog.text


def test_the_same_object_twice_is_an_error_naming_both_files(repo: GitRepo) -> None:
    repo.write("apps/a.yaml", deployment("web", namespace="ml"))
    repo.write("apps/b.yaml", "# copy\n" + deployment("web", namespace="ml"))
    commit = repo.commit()
    with pytest.raises(InputError, match="declared twice") as info:
        repo.read()
    short = commit[:12]
    assert f"apps/a.yaml@{short}:1 and apps/b.yaml@{short}:2" in info.value.message
    assert "Deployment ml/web" in info.value.message


def test_a_default_namespace_and_an_explicit_one_can_collide(repo: GitRepo) -> None:
    repo.write("apps/a.yaml", deployment("web"))
    repo.write("apps/b.yaml", deployment("web", namespace="team"))
    repo.commit()
    with pytest.raises(InputError, match="Deployment team/web is declared twice"):
        repo.read(default_namespace="team")


def test_the_same_name_in_another_namespace_or_group_is_not_a_duplicate(repo: GitRepo) -> None:
    repo.write("apps/a.yaml", deployment("web", namespace="a") + "---\n" + deployment("web"))
    repo.write("apps/b.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n")
    repo.commit()
    assert len(repo.read().resources) == 3


@pytest.mark.parametrize(
    ("document", "namespace"),
    [
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "serving"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: ml}\n", "ml"),
        ("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n", ""),
        ("apiVersion: v1\nkind: Namespace\nmetadata: {name: x, namespace: ml}\n", ""),
        (
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
            "metadata: {name: x, namespace: ml}\n",
            "",
        ),
        (
            "apiVersion: serving.kserve.io/v1alpha1\nkind: ClusterServingRuntime\n"
            "metadata: {name: x}\n",
            "",
        ),
        ("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
         "metadata: {name: x}\n", "serving"),
    ],
)  # fmt: skip
def test_namespaces_are_defaulted_like_kubectl(
    repo: GitRepo, document: str, namespace: str
) -> None:
    repo.write("apps/x.yaml", document)
    repo.commit()
    (resource,) = repo.read(default_namespace="serving").resources
    assert resource.ref.namespace == namespace
    # the body says what the API server would store, so drift compares like with like
    assert resource.body["metadata"].get("namespace", "") == namespace


CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: widgets.example.com}}
spec:
  group: example.com
  scope: {scope}
  names: {{kind: Widget, plural: widgets}}
"""


@pytest.mark.parametrize(("scope", "namespace"), [("Cluster", ""), ("Namespaced", "default")])
def test_custom_kinds_take_their_scope_from_a_crd_in_the_same_read(
    repo: GitRepo, scope: str, namespace: str
) -> None:
    repo.write("crds/widget.yaml", CRD.format(scope=scope))
    repo.write(
        "apps/widget.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: ml}\n"
        if scope == "Cluster"
        else "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
    )
    repo.commit()
    widgets = [r for r in repo.read().resources if r.ref.kind == "Widget"]
    assert [w.ref.namespace for w in widgets] == [namespace]


def test_secret_values_are_redacted(repo: GitRepo) -> None:
    repo.write(
        "apps/secret.yaml",
        """
        apiVersion: v1
        kind: Secret
        metadata: {name: creds}
        data: {token: aHVudGVyMg==}
        stringData: {password: hunter3}
        """,
    )
    repo.commit()
    (secret,) = repo.read().resources
    assert secret.body["data"] == {
        "token": digest_bytes(b"hunter2"),
        "password": digest_bytes(b"hunter3"),
    }
    assert "hunter" not in json.dumps(dict(secret.body))


def test_desired_state_records_what_was_read(repo: GitRepo) -> None:
    repo.write("apps/web.yaml", deployment("web"))
    commit = repo.commit()
    state = repo.read(paths=("./apps/",), cluster="prod-eu")
    assert (state.repo, state.revision, state.commit, state.paths) == (
        str(repo.path),
        "HEAD",
        commit,
        ("apps",),
    )
    assert state.resources[0].ref.cluster == "prod-eu"
    assert state.resources[0].side == "desired"


@pytest.mark.slow
def test_ten_thousand_small_manifests_are_read(repo: GitRepo) -> None:
    for i in range(10_000):
        repo.write(f"apps/team{i % 50}/svc{i}.yaml", deployment(f"svc-{i}", namespace="ml"))
    repo.commit()
    state = repo.read()
    assert len(state.resources) == 10_000


@pytest.mark.timeout(30)
def test_a_bad_file_early_in_a_large_batch_fails_promptly(repo: GitRepo) -> None:
    # the answers still in flight are far more than a pipe holds: the reader must not hang
    padding = "# " + "x" * 1000 + "\n"
    for i in range(300):
        repo.write(f"apps/svc{i:03}.yaml", padding + deployment(f"svc-{i}"))
    repo.write("apps/000-bad.yaml", "a: [\n")
    repo.commit()
    with pytest.raises(InputError, match="invalid YAML") as info:
        repo.read()
    assert info.value.file is not None and info.value.file.startswith("apps/000-bad.yaml@")

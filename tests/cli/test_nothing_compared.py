"""A run that compared nothing is never clean: every way of pointing auditor at nothing (an empty
path, an empty snapshot, a filter that matches nothing, a test run without tests, a Helm chart
that would be compared as literal text) is exit 2 with a message saying what matched nothing.

Each case goes through the real CLI, as a user or the nightly job would hit it.
"""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.conftest import CliResult, GitRepo, run_cli

CONFIGMAP = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "model-config", "namespace": "ml"},
    "data": {"threshold": "0.8"},
}


def kubectl_list(*items: dict) -> str:
    # what `kubectl get -o json` prints, also when nothing matched (`items: []`)
    return json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": list(items), "metadata": {}}, indent=2
    )


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    git_repo.write("apps/ml/config.yaml", yaml.safe_dump(CONFIGMAP))
    git_repo.write("docs/README.md", "# how we deploy\n")
    git_repo.write("config/values.yaml", "replicaCount: 3\nimage: {tag: v1}\n")
    git_repo.commit()
    return git_repo


@pytest.fixture
def live(tmp_path: Path) -> Path:
    path = tmp_path / "live.json"
    path.write_text(kubectl_list(CONFIGMAP))
    return path


def drift(repo: GitRepo, snapshot: Path, *extra: str) -> CliResult:
    return run_cli("drift", "--repo", str(repo.path), "--live-snapshot", str(snapshot), *extra)


def assert_usage_error(result: CliResult, *words: str) -> None:
    assert result.code == 2, (result.code, result.out, result.err)
    assert result.out == ""  # no verdict at all, not even an empty one
    assert "Traceback" not in result.err
    for word in words:
        assert word in result.err, result.err


def test_the_setup_itself_is_in_sync(repo: GitRepo, live: Path) -> None:
    # the cases below differ from this clean run by one thing each
    assert drift(repo, live).code == 0


# -- Git: paths that declare nothing -------------------------------------------------------


def test_a_path_whose_folder_holds_no_manifests_is_a_usage_error_naming_it(
    repo: GitRepo, live: Path
) -> None:
    result = drift(repo, live, "--path", "docs")
    assert_usage_error(result, "'docs'", "no manifests")


def test_a_path_whose_files_declare_no_kubernetes_object_is_a_usage_error(
    repo: GitRepo, live: Path
) -> None:
    result = drift(repo, live, "--path", "config")
    assert_usage_error(result, "'config'", "no Kubernetes object", "config/values.yaml")


def test_one_empty_path_among_good_ones_is_still_an_error(repo: GitRepo, live: Path) -> None:
    # the good path would compare something, but what the empty one was meant to hold is not
    result = drift(repo, live, "--path", "apps", "--path", "docs")
    assert_usage_error(result, "'docs'")


def test_a_repository_without_any_manifest_is_a_usage_error(git_repo: GitRepo, live: Path) -> None:
    git_repo.write("README.md", "# nothing deployed yet\n")
    git_repo.commit()
    assert_usage_error(drift(git_repo, live), "'.'", "no manifests")


def test_an_audit_of_an_empty_path_is_stored_as_failed_not_clean(
    repo: GitRepo, live: Path, tmp_path: Path
) -> None:
    config = tmp_path / "auditor.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "git": {"repo": str(repo.path), "paths": ["docs"]},
                "clusters": [{"name": "prod", "snapshot": [str(live)]}],
                "store": str(tmp_path / "audit.db"),
            }
        )
    )
    result = run_cli("audit", "--config", str(config))
    assert_usage_error(result, "'docs'", "no manifests")
    with sqlite3.connect(tmp_path / "audit.db") as db:
        assert db.execute("SELECT status FROM runs").fetchall() != [("complete",)]


# -- Helm charts -------------------------------------------------------------------------

CHART = {
    "Chart.yaml": """\
        apiVersion: v2
        name: scorer
        description: the fraud scorer
        type: application
        version: 0.1.0
        appVersion: "1.4.2"
        """,
    "values.yaml": """\
        replicaCount: 2
        image:
          repository: ghcr.io/acme/scorer
          tag: ""
        """,
    "templates/_helpers.tpl": """\
        {{- define "scorer.fullname" -}}
        {{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
        {{- end }}
        """,
    # does not parse as YAML: today "invalid YAML"
    "templates/deployment.yaml": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{ include "scorer.fullname" . }}
        spec:
          replicas: {{ .Values.replicaCount }}
          template:
            spec:
              containers:
                - name: scorer
                  image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
        """,
    # parses as YAML: today compared literally, `{{ .Release.Namespace }}` and all
    "templates/configmap.yaml": """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: scorer-config
          namespace: "{{ .Release.Namespace }}"
        data:
          threshold: "0.8"
        """,
    "templates/NOTES.txt": "Get the scorer URL with kubectl get svc\n",
}


def write_chart(repo: GitRepo, folder: str) -> None:
    for name, text in CHART.items():
        repo.write(f"{folder}/{name}", textwrap.dedent(text))


@pytest.mark.parametrize(
    ("chart_at", "path"),
    [
        ("charts/scorer", "charts/scorer"),  # --path names the chart
        ("charts/scorer", "charts"),  # the chart is a folder under --path
        ("charts/scorer", "charts/scorer/templates"),  # --path is inside the chart
        ("charts/scorer", "charts/scorer/templates/configmap.yaml"),  # one of its templates
        (".", "."),  # the whole repository is the chart
    ],
)
def test_a_helm_chart_under_a_path_is_refused_with_what_to_do_instead(
    git_repo: GitRepo, live: Path, chart_at: str, path: str
) -> None:
    write_chart(git_repo, chart_at)
    git_repo.commit()
    result = drift(git_repo, live, "--path", path)
    chart_yaml = "Chart.yaml" if chart_at == "." else f"{chart_at}/Chart.yaml"
    assert_usage_error(result, "is a Helm chart", chart_yaml, "helm template")
    assert "invalid YAML" not in result.err


def test_the_committed_output_of_helm_template_beside_the_chart_is_audited(
    git_repo: GitRepo, live: Path
) -> None:
    # what the message asks for: the chart stays in Git, its rendered output is what is audited
    write_chart(git_repo, "charts/scorer")
    git_repo.write("rendered/scorer.yaml", yaml.safe_dump(CONFIGMAP))
    git_repo.commit()
    assert drift(git_repo, live, "--path", "rendered").code == 0


# -- snapshots that hold nothing ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("zero.json", ""),
        ("zero.yaml", ""),
        ("blank.yaml", "\n  \n"),
        ("comments.yaml", "# kubectl get pods > snapshot.yaml, interrupted\n"),
        ("separators.yaml", "---\n---\n"),
        ("array.json", "[]"),
    ],
)
def test_a_snapshot_that_holds_nothing_is_a_usage_error_not_an_empty_cluster(
    repo: GitRepo, tmp_path: Path, name: str, content: str
) -> None:
    snapshot = tmp_path / name
    snapshot.write_text(content)
    result = drift(repo, snapshot)
    assert_usage_error(result, str(snapshot), "no objects")


def test_an_empty_list_from_kubectl_get_is_a_cluster_without_those_objects(
    repo: GitRepo, tmp_path: Path
) -> None:
    # `kubectl get configmaps -n ml -o json` on a cluster that has none prints `items: []`:
    # a real answer, so Git's objects are missing (exit 1), never a clean run
    snapshot = tmp_path / "live.json"
    snapshot.write_text(kubectl_list())
    result = drift(repo, snapshot, "-o", "json")
    assert result.code == 1, result.err
    assert [f["check"] for f in json.loads(result.out)["findings"]] == ["drift.missing"]


def test_one_empty_snapshot_among_good_ones_is_still_an_error(
    repo: GitRepo, live: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "pods.yaml"
    empty.write_text("")
    result = drift(repo, live, "--live-snapshot", str(empty))
    assert_usage_error(result, str(empty))


# -- filters that match nothing in Git -----------------------------------------------------


def test_a_namespace_flag_matching_nothing_in_git_is_a_usage_error(
    repo: GitRepo, live: Path
) -> None:
    result = drift(repo, live, "--namespace", "ml-prdo")
    assert_usage_error(result, "ml-prdo", "matches nothing", "ml")


def audit_with_scope(repo: GitRepo, live: Path, tmp_path: Path, scope: dict) -> CliResult:
    config = tmp_path / "auditor.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "git": {"repo": str(repo.path)},
                "clusters": [{"name": "prod", "snapshot": [str(live)]}],
                "scope": scope,
                "policy": {"enabled": False},
            }
        )
    )
    return run_cli("audit", "--config", str(config), "--store", str(tmp_path / "audit.db"))


@pytest.mark.parametrize(
    ("scope", "words"),
    [
        ({"namespaces": ["ml-staging"]}, ["scope.namespaces", "ml-staging", "matches nothing"]),
        ({"exclude_namespaces": ["m*"]}, ["scope.exclude_namespaces", "m*", "excludes every"]),
        ({"kinds": ["apps/Deployment"]}, ["scope.kinds", "apps/Deployment", "matches nothing"]),
        ({"kinds": ["Secret", "Service"]}, ["scope.kinds", "Secret, Service", "ConfigMap"]),
    ],
)
def test_a_scope_that_leaves_nothing_from_git_is_a_usage_error(
    repo: GitRepo, live: Path, tmp_path: Path, scope: dict, words: list[str]
) -> None:
    assert_usage_error(audit_with_scope(repo, live, tmp_path, scope), *words)


def test_a_scope_that_keeps_some_of_git_is_audited(
    repo: GitRepo, live: Path, tmp_path: Path
) -> None:
    # a filter is an error only when nothing at all is left: a namespace Git leaves empty
    # is still read live, and a manual deployment there is found unmanaged
    result = audit_with_scope(
        repo, live, tmp_path, {"namespaces": ["ml", "ml-sandbox"], "kinds": ["ConfigMap", "Pod"]}
    )
    assert result.code == 0, result.err


# -- policy tests ------------------------------------------------------------------------


def test_policy_test_on_a_path_without_tests_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "canary.rego").write_text(
        'package canary\n\nimport rego.v1\n\ndeny contains "too much" if input.pct > 20\n'
    )
    result = run_cli("policy", "test", str(policies))
    assert_usage_error(result, str(policies), "no tests")
    assert "PASS" not in result.out


def test_policy_test_with_policies_and_tests_in_separate_folders_runs(tmp_path: Path) -> None:
    # `opa test policies/ tests/`: the policies' folder alone has no test, and that is fine
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "canary.rego").write_text(
        'package canary\n\nimport rego.v1\n\ndeny contains "too much" if input.pct > 20\n'
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "canary_test.rego").write_text(
        "package canary_test\n\nimport rego.v1\n\n"
        'test_over if data.canary.deny["too much"] with input as {"pct": 50}\n'
    )
    result = run_cli("policy", "test", str(tmp_path / "policies"), str(tmp_path / "tests"))
    assert result.code == 0, result.out + result.err
    assert "PASS: 1/1" in result.out

"""auditor.yaml: every mistake names the file, key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.config import DEFAULT_GITOPS_MANAGERS, load_config
from auditor.errors import ConfigError

VALID = """\
git:
  repo: ./gitops
  revision: main
  paths: [overlays/prod]
clusters:
  - name: prod
    kubeconfig: kube/config
    context: prod-admin
  - name: dr
    snapshot: live/dr.json
scope:
  namespaces: [ml-prod]
drift:
  ignore:
    - kind: apps/Deployment
      pointers: [/spec/replicas]
severity:
  classes: {scale: low}
  checks: {drift.unmanaged: medium}
store: state/audit.db
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "auditor.yaml"
    path.write_text(text)
    return path


def test_valid_config_resolves_paths_against_its_directory(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID))
    assert config.git.repo == str(tmp_path / "gitops")
    assert config.git.paths == ("overlays/prod",)
    assert config.clusters[0].kubeconfig == str(tmp_path / "kube" / "config")
    assert config.clusters[1].snapshots == (str(tmp_path / "live" / "dr.json"),)
    assert config.store == str(tmp_path / "state" / "audit.db")
    assert config.scope.namespaces == ("ml-prod",)
    assert config.scope.kinds is None
    assert config.drift.ignore[0].pointers == ("/spec/replicas",)
    assert config.drift.class_severity["scale"] == "low"
    assert config.drift.class_severity["model"] == "critical"
    assert config.severity_overrides["drift.unmanaged"] == "medium"
    assert config.drift.gitops_managers == DEFAULT_GITOPS_MANAGERS


def test_url_repo_is_kept_as_url(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, VALID.replace("./gitops", "https://git.example.com/x.git"))
    )
    assert config.git.repo == "https://git.example.com/x.git"


@pytest.mark.parametrize(
    ("old", "new", "line", "key", "words"),
    [
        (
            "    context: prod-admin\n",
            "    contxt: prod-admin\n",
            8,
            "clusters[0].contxt",
            "unknown key 'contxt'",
        ),
        ("  revision: main\n", "  revision: 7\n", 3, "git.revision", "not of type 'string'"),
        (
            "  classes: {scale: low}",
            "  classes: {scale: urgent}",
            18,
            "severity.classes.scale",
            "not one of",
        ),
        (
            "      pointers: [/spec/replicas]",
            "      pointers: [spec/replicas]",
            16,
            "drift.ignore[0].pointers[0]",
            "not a JSON pointer",
        ),
        ("  - name: dr\n", "  - name: prod\n", 9, "clusters[1].name", "used twice"),
        (
            "    snapshot: live/dr.json\n",
            "    snapshot: live/dr.json\n    context: x\n",
            11,
            "clusters[1].context",
            "choose one source",
        ),
        ("  paths: [overlays/prod]\n", "  paths: 5\n", 4, "git.paths", "string or a list"),
        (
            "store: state/audit.db\n",
            "store: state/audit.db\nfail_on: sometimes\n",
            21,
            "fail_on",
            "not one of",
        ),
    ],
)
def test_config_mistakes_name_file_key_and_line(
    tmp_path: Path, old: str, new: str, line: int, key: str, words: str
) -> None:
    assert old in VALID
    path = write(tmp_path, VALID.replace(old, new))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    error = caught.value
    assert error.file == str(path)
    assert error.line == line, error.diagnostics()
    assert error.key == key
    assert words in error.diagnostics()


def test_missing_required_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "clusters:\n  - name: a\n    snapshot: s.json\n")
    with pytest.raises(ConfigError, match="'git' is required"):
        load_config(path)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "git:\n  repo: x\nclusters: [\n  - name: a\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.file == str(path)
    assert caught.value.line is not None and caught.value.line >= 3
    assert "invalid YAML" in caught.value.message


def test_alias_bomb_config_is_rejected(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="alias"):
        load_config(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_config_that_is_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(write(tmp_path, "- just\n- a list\n"))


def test_policy_defaults_to_the_shipped_library(tmp_path: Path) -> None:
    from auditor.shipped import shipped_path

    config = load_config(write(tmp_path, VALID))
    assert config.policy.enabled and config.policy.engine == "embedded"
    assert config.policy.resolved_paths() == (str(shipped_path("policies")),)


def test_policy_section_resolves_paths_and_opa(tmp_path: Path) -> None:
    text = VALID + (
        "policy:\n  paths: [builtin, rego/]\n  data: params.yaml\n  engine: opa\n"
        "  opa: {url: 'http://127.0.0.1:8181', token_file: opa.token}\n"
    )
    policy = load_config(write(tmp_path, text)).policy
    assert policy.paths == ("builtin", str(tmp_path / "rego"))
    assert policy.data == (str(tmp_path / "params.yaml"),)
    assert (policy.engine, policy.opa_url, policy.opa_token_file) == (
        "opa",
        "http://127.0.0.1:8181",
        str(tmp_path / "opa.token"),
    )


def test_opa_engine_without_a_url_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "policy:\n  engine: opa\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.line == 22 and caught.value.key == "policy.engine"


def test_trust_section_is_validated_with_file_key_and_line(tmp_path: Path) -> None:
    text = VALID + "trust:\n  authorities:\n    - name: release-key\n      key: keys/missing.pub\n"
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert caught.value.file == str(tmp_path / "auditor.yaml")
    assert caught.value.key is not None and caught.value.key.startswith("trust.authorities[0]")
    assert caught.value.line == 24


def test_models_root_resolves_against_the_config(tmp_path: Path) -> None:
    # models.root without trust: would do nothing (tests/provenance/test_settings.py)
    config = load_config(write(tmp_path, VALID + "trust: {}\nmodels:\n  root: mirror/\n"))
    assert config.models_root == str(tmp_path / "mirror")

"""`Config.for_drift`: how `auditor drift`'s flags and an optional auditor.yaml make one Config."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.config import ClusterSource, Config, GitSource, load_config
from auditor.errors import ConfigError
from tests.test_config import VALID

# The loader tests' auditor.yaml, plus the Git settings that `--repo` keeps and a kind scope.
CONFIG = VALID.replace(
    "  paths: [overlays/prod]\n",
    "  paths: [overlays/prod]\n  cache_dir: cache\n  default_namespace: ml\n",
).replace("scope:\n", "scope:\n  kinds: [ConfigMap]\n")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The directory the command runs in (relative flags are read from here)."""
    work = tmp_path.resolve()
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def config_file(workdir: Path) -> str:
    path = workdir / "conf" / "auditor.yaml"
    path.parent.mkdir()
    path.write_text(CONFIG)
    return str(path)


# -- flags alone ---------------------------------------------------------------------------


def test_without_a_config_repo_is_required_and_the_error_names_the_flag(workdir: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.for_drift(snapshots=("live.json",))
    assert caught.value.key == "--repo"
    assert "--repo is required" in caught.value.diagnostics()


def test_repo_alone_compares_head_at_the_root_against_the_current_context(workdir: Path) -> None:
    config = Config.for_drift(repo="gitops")
    assert config.path == ""
    assert config.git == GitSource(repo=str(workdir / "gitops"))
    assert (config.git.revision, config.git.paths) == ("HEAD", (".",))
    assert config.git.default_namespace == "default"
    assert config.clusters == (ClusterSource(name="current"),)
    assert config.scope.namespaces is None


def test_a_local_repo_resolves_against_the_current_directory(workdir: Path) -> None:
    (workdir / "sub").mkdir()
    config = Config.for_drift(repo="sub/../gitops")
    assert config.git.repo == str(workdir / "gitops")


@pytest.mark.parametrize(
    "url",
    ["https://git.example.com/acme/gitops.git", "file:///srv/gitops", "git@github.com:a/b.git"],
)
def test_a_url_repo_is_kept_as_given(workdir: Path, url: str) -> None:
    assert Config.for_drift(repo=url).git.repo == url


def test_revision_paths_and_default_namespace_flags_set_the_git_source(workdir: Path) -> None:
    config = Config.for_drift(
        repo="gitops", revision="v1.2", paths=("base", "overlays/prod"), default_namespace="ml"
    )
    assert config.git.revision == "v1.2"
    assert config.git.paths == ("base", "overlays/prod")
    assert config.git.default_namespace == "ml"


def test_snapshots_make_one_cluster_named_snapshot_with_paths_kept_relative(
    workdir: Path,
) -> None:
    config = Config.for_drift(repo="gitops", snapshots=("./live/a.json", "b.yaml"))
    assert config.clusters == (ClusterSource(name="snapshot", snapshots=("live/a.json", "b.yaml")),)


def test_each_context_is_one_cluster_named_after_it_sharing_the_kubeconfig(
    workdir: Path,
) -> None:
    config = Config.for_drift(repo="gitops", kubeconfig="kube/config", contexts=("east", "west"))
    assert config.clusters == (
        ClusterSource(name="east", kubeconfig="kube/config", context="east"),
        ClusterSource(name="west", kubeconfig="kube/config", context="west"),
    )


def test_a_kubeconfig_without_context_uses_its_current_context(workdir: Path) -> None:
    config = Config.for_drift(repo="gitops", kubeconfig="kube/config")
    assert config.clusters == (ClusterSource(name="current", kubeconfig="kube/config"),)


@pytest.mark.parametrize(
    "live",
    [{"kubeconfig": "kube/config"}, {"contexts": ("east",)}],
    ids=["kubeconfig", "context"],
)
def test_snapshots_and_a_live_cluster_exclude_each_other_naming_the_flag(
    workdir: Path, live: dict
) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.for_drift(repo="gitops", snapshots=("live.json",), **live)
    assert caught.value.key == "--live-snapshot"
    assert "cannot be combined with --kubeconfig or --context" in caught.value.message


def test_namespaces_limit_the_scope(workdir: Path) -> None:
    config = Config.for_drift(repo="gitops", namespaces=("ml-prod", "ml-staging"))
    assert config.scope.namespaces == ("ml-prod", "ml-staging")
    assert config.scope.kinds is None


# -- flags on top of a config file ---------------------------------------------------------


def test_a_config_without_flags_is_the_config_unchanged(config_file: str) -> None:
    assert Config.for_drift(config_file=config_file) == load_config(config_file)


def test_a_config_makes_repo_optional_and_keeps_every_other_setting(
    config_file: str, workdir: Path
) -> None:
    config = Config.for_drift(config_file=config_file, snapshots=("live.json",))
    base = load_config(config_file)
    assert config.path == str(workdir / "conf" / "auditor.yaml")
    assert config.git == base.git
    assert (config.drift, config.store, config.scope) == (base.drift, base.store, base.scope)


def test_revision_and_paths_flags_override_the_files(config_file: str, workdir: Path) -> None:
    config = Config.for_drift(config_file=config_file, revision="v2", paths=("overlays/dr",))
    assert config.git.repo == str(workdir / "conf" / "gitops")
    assert (config.git.revision, config.git.paths) == ("v2", ("overlays/dr",))
    assert config.git.cache_dir == str(workdir / "conf" / "cache")


def test_repo_flag_replaces_the_files_git_source_keeping_cache_and_default_namespace(
    config_file: str, workdir: Path
) -> None:
    config = Config.for_drift(config_file=config_file, repo="other")
    assert config.git == GitSource(
        repo=str(workdir / "other"),
        revision="HEAD",  # not the file's `main`: that named a branch of another repo
        paths=(".",),
        cache_dir=str(workdir / "conf" / "cache"),
        default_namespace="ml",
    )


def test_default_namespace_flag_overrides_the_files(config_file: str) -> None:
    config = Config.for_drift(config_file=config_file, default_namespace="serving")
    assert config.git.default_namespace == "serving"
    assert config.git.revision == "main"


def test_the_files_clusters_stay_unless_a_source_flag_replaces_them(
    config_file: str, workdir: Path
) -> None:
    base = load_config(config_file)
    assert Config.for_drift(config_file=config_file).clusters == base.clusters
    assert Config.for_drift(config_file=config_file, contexts=("east",)).clusters == (
        ClusterSource(name="east", context="east"),
    )
    assert Config.for_drift(config_file=config_file, snapshots=("s.json",)).clusters == (
        ClusterSource(name="snapshot", snapshots=("s.json",)),
    )


def test_namespaces_flag_overrides_the_files_scope_keeping_its_kinds(config_file: str) -> None:
    config = Config.for_drift(config_file=config_file, namespaces=("ml-staging",))
    assert config.scope.namespaces == ("ml-staging",)
    assert config.scope.kinds == ("ConfigMap",)


def test_a_mistake_in_the_config_is_reported_with_its_file_and_line(workdir: Path) -> None:
    path = workdir / "auditor.yaml"
    path.write_text(CONFIG.replace("  revision: main\n", "  revision: 7\n"))
    with pytest.raises(ConfigError) as caught:
        Config.for_drift(config_file=str(path), repo="gitops")
    assert (caught.value.file, caught.value.line, caught.value.key) == (
        str(path),
        3,
        "git.revision",
    )


# -- the trust section: drift verifies nothing -------------------------------------------


def test_drift_holds_the_trust_section_to_the_schema_but_reads_none_of_its_material(
    workdir: Path,
) -> None:
    # a key file that does not exist: auditor audit refuses the file (it would verify with
    # it), auditor drift compares without it and without loading sigstore to read it
    path = workdir / "auditor.yaml"
    path.write_text(
        CONFIG + "trust:\n  authorities:\n    - name: release-key\n      key: keys/missing.pub\n"
    )
    with pytest.raises(ConfigError, match=r"missing\.pub"):
        load_config(path)
    config = Config.for_drift(config_file=str(path))
    assert config.trust is None and config.git == load_config(path, trust_material=False).git

    path.write_text(CONFIG + "trust:\n  authorities: 5\n")
    with pytest.raises(ConfigError) as caught:
        Config.for_drift(config_file=str(path))
    assert caught.value.key == "trust.authorities"


def test_a_model_setting_without_trust_is_refused_for_drift_too(workdir: Path) -> None:
    path = workdir / "auditor.yaml"
    path.write_text(CONFIG + "models:\n  root: mirror/\n")
    with pytest.raises(ConfigError) as caught:
        Config.for_drift(config_file=str(path))
    assert caught.value.key == "models.root"

"""The Git cache of a repository given by URL: fetched once per run into a folder reused from
run to run, shallow at the commit the revision names, never a clone of the whole history."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from auditor.config import GitSource
from auditor.desired import read_desired
from auditor.desired.git import cache_path
from auditor.errors import SourceError
from tests.desired.conftest import GitRepo, deployment


@pytest.fixture
def remote(repo: GitRepo) -> GitRepo:
    """Three commits on main, and a tag on the first."""
    for replicas in (1, 2, 3):
        repo.write("apps/web.yaml", deployment("web", replicas=replicas))
        repo.commit(f"replicas {replicas}")
        if replicas == 1:
            repo.tag("v1")
    return repo


def _git(cache: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(cache), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_the_cache_holds_only_the_pinned_commit(remote: GitRepo, tmp_path: Path) -> None:
    url = f"file://{remote.path}"
    state = read_desired(GitSource(repo=url, revision="main", cache_dir=str(tmp_path / "c")))
    cache = cache_path(url, str(tmp_path / "c"))
    assert state.commit == remote.head()
    assert _git(cache, "rev-parse", "--is-shallow-repository") == "true"
    assert _git(cache, "rev-list", "--count", "--all") == "1"  # not the two commits before it


def test_a_tag_is_fetched_at_its_commit(remote: GitRepo, tmp_path: Path) -> None:
    url = f"file://{remote.path}"
    state = read_desired(GitSource(repo=url, revision="v1", cache_dir=str(tmp_path / "c")))
    assert state.commit == remote.git("rev-parse", "v1^{commit}")
    assert state.resources[0].body["spec"]["replicas"] == 1


def test_the_next_run_fetches_into_the_same_cache(remote: GitRepo, tmp_path: Path) -> None:
    url = f"file://{remote.path}"
    source = GitSource(repo=url, revision="main", cache_dir=str(tmp_path / "c"))
    read_desired(source)
    cache = cache_path(url, str(tmp_path / "c"))
    marker = cache / "auditor-test-marker"
    marker.write_text("a clone would start from an empty folder")
    remote.write("apps/web.yaml", deployment("web", replicas=4))
    fourth = remote.commit("replicas 4")

    state = read_desired(source)

    assert state.commit == fourth
    assert state.resources[0].body["spec"]["replicas"] == 4
    assert marker.exists()  # the same folder, fetched into
    assert _git(cache, "rev-parse", "--is-shallow-repository") == "true"


def test_two_runs_at_once_share_the_cache(remote: GitRepo, tmp_path: Path) -> None:
    url = f"file://{remote.path}"
    source = GitSource(repo=url, revision="main", cache_dir=str(tmp_path / "c"))
    with ThreadPoolExecutor(4) as pool:
        commits = list(pool.map(lambda _: read_desired(source).commit, range(4)))
    assert commits == [remote.head()] * 4
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == sorted(
        [cache_path(url, None).name, cache_path(url, None).name + ".lock"]
    )


def test_a_token_in_the_url_is_never_shown(tmp_path: Path) -> None:
    # nothing listens on port 9 of 127.0.0.1: the fetch fails at once, with git's own words
    url = "https://ci-bot:s3cret-token@127.0.0.1:9/acme/gitops.git"
    with pytest.raises(SourceError) as info:
        read_desired(GitSource(repo=url, revision="main", cache_dir=str(tmp_path / "c")))
    shown = info.value.diagnostics()
    assert "s3cret-token" not in shown
    assert "https://***@127.0.0.1:9/acme/gitops.git" in shown

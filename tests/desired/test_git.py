"""Git access: revisions resolve to one commit, files come from that commit, URLs are cached."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from auditor.config import GitSource
from auditor.desired import read_desired
from auditor.desired.git import Tree, TreeEntry, cache_path, open_repo
from auditor.errors import InputError, SourceError
from auditor.redact import redact_url
from tests.desired.conftest import GitRepo, deployment


@pytest.fixture
def history(repo: GitRepo) -> dict[str, str]:
    """Two commits; `first` is tagged, `main` points at `second`."""
    repo.write("apps/web.yaml", deployment("web", replicas=1))
    first = repo.commit("first")
    repo.tag("v1")
    repo.tag("v1-annotated", annotated=True)
    repo.write("apps/web.yaml", deployment("web", replicas=2))
    second = repo.commit("second")
    repo.git("branch", "release", first)
    return {"first": first, "second": second}


@pytest.mark.parametrize(
    ("revision", "expected"),
    [
        ("main", "second"),
        ("HEAD", "second"),
        ("release", "first"),
        ("v1", "first"),
        ("v1-annotated", "first"),  # an annotated tag peels to its commit
        ("first:short", "first"),
        ("first:full", "first"),
        ("second:full", "second"),
        ("HEAD~1", "first"),
    ],
)
def test_revision_resolves_to_the_full_commit_sha(
    repo: GitRepo, history: dict[str, str], revision: str, expected: str
) -> None:
    if ":" in revision:
        name, form = revision.split(":")
        revision = history[name][:7] if form == "short" else history[name]
    state = repo.read(revision=revision)
    assert state.commit == history[expected]
    assert len(state.commit) == 40
    assert state.revision == revision


def test_files_are_read_from_the_revision_not_the_checkout(
    repo: GitRepo, history: dict[str, str]
) -> None:
    state = repo.read(revision="v1")
    (web,) = state.resources
    assert web.body["spec"]["replicas"] == 1
    assert web.origin == f"apps/web.yaml@{history['first']}"


def test_uncommitted_and_untracked_edits_are_ignored(repo: GitRepo) -> None:
    repo.write("apps/web.yaml", deployment("web", replicas=1))
    commit = repo.commit()
    repo.write("apps/web.yaml", deployment("web", replicas=9))  # uncommitted
    repo.write("apps/extra.yaml", deployment("extra"))  # untracked
    repo.git("add", "apps/web.yaml")  # staged, still not committed
    state = repo.read()
    assert state.commit == commit
    assert [(r.ref.name, r.body["spec"]["replicas"]) for r in state.resources] == [("web", 1)]


def test_unknown_revision_is_a_source_error_naming_it(
    repo: GitRepo, history: dict[str, str]
) -> None:
    with pytest.raises(SourceError, match="unknown revision 'no-such-branch'") as info:
        repo.read(revision="no-such-branch")
    assert str(repo.path) in info.value.message


@pytest.mark.parametrize("revision", ["--output=/tmp/x", "-h", ""])
def test_revisions_that_could_be_options_are_refused(
    repo: GitRepo, history: dict[str, str], revision: str
) -> None:
    with pytest.raises(InputError, match="revision"):
        repo.read(revision=revision)


def test_a_folder_that_is_not_a_repository_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a Git repository"):
        read_desired(GitSource(repo=str(tmp_path)))


def test_a_missing_repository_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not found"):
        read_desired(GitSource(repo=str(tmp_path / "nowhere")))


def test_a_folder_inside_a_repository_points_to_the_top(
    repo: GitRepo, history: dict[str, str]
) -> None:
    with pytest.raises(SourceError, match="inside the Git repository") as info:
        read_desired(GitSource(repo=str(repo.path / "apps")))
    assert info.value.hint == f"use --repo {repo.path} --path apps"


def test_ext_transport_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="transport"):
        read_desired(GitSource(repo="ext::sh -c touch% /tmp/pwned", cache_dir=str(tmp_path)))


def test_credentials_in_urls_are_never_shown() -> None:
    assert (
        redact_url("https://user:s3cret@git.example.com/org/repo.git")
        == "https://***@git.example.com/org/repo.git"
    )


class TestUrlClone:
    def test_file_url_is_cloned_bare_into_the_cache(
        self, repo: GitRepo, history: dict[str, str], tmp_path: Path
    ) -> None:
        url = f"file://{repo.path}"
        cache = tmp_path / "cache"
        state = read_desired(GitSource(repo=url, revision="main", cache_dir=str(cache)))
        assert state.commit == history["second"]
        clone = cache_path(url, str(cache))
        assert clone.parent == cache
        assert (clone / "HEAD").is_file()
        assert not (clone / ".git").exists()  # bare

    def test_a_second_run_fetches_new_commits_into_the_same_cache(
        self, repo: GitRepo, history: dict[str, str], tmp_path: Path
    ) -> None:
        url = f"file://{repo.path}"
        source = GitSource(repo=url, revision="main", cache_dir=str(tmp_path / "cache"))
        read_desired(source)
        repo.write("apps/web.yaml", deployment("web", replicas=3))
        third = repo.commit("third")
        state = read_desired(source)
        assert state.commit == third
        assert state.resources[0].body["spec"]["replicas"] == 3
        assert len(list((tmp_path / "cache").iterdir())) == 2  # the clone and its lock file

    def test_a_pinned_sha_in_the_cache_needs_no_network(
        self, repo: GitRepo, history: dict[str, str], tmp_path: Path
    ) -> None:
        url = f"file://{repo.path}"
        cache = str(tmp_path / "cache")
        read_desired(GitSource(repo=url, revision=history["first"], cache_dir=cache))
        shutil.rmtree(repo.path)  # the "remote" is gone: only the cache can answer
        state = read_desired(GitSource(repo=url, revision=history["first"], cache_dir=cache))
        assert state.commit == history["first"]
        assert state.resources[0].body["spec"]["replicas"] == 1

    def test_a_fetch_failure_is_a_source_error(self, tmp_path: Path) -> None:
        url = f"file://{tmp_path}/missing-repo"
        with pytest.raises(SourceError, match="cannot fetch"):
            read_desired(GitSource(repo=url, cache_dir=str(tmp_path / "cache")))
        assert list((tmp_path / "cache").glob(".clone-*")) == []  # nothing half-made is left

    def test_open_repo_shows_the_url_without_credentials(
        self, repo: GitRepo, history: dict[str, str], tmp_path: Path
    ) -> None:
        url = f"file://{repo.path}"
        opened = open_repo(url, revision="main", cache_dir=str(tmp_path / "c"))
        assert opened.display == url


def _tree(files: list[str], links: dict[str, str]) -> Tree:
    entries = {p: TreeEntry(path=p, mode="100644", sha="0" * 40, size=1) for p in files}
    entries.update({p: TreeEntry(path=p, mode="120000", sha="1" * 40, size=1) for p in links})
    return Tree(commit="c" * 40, entries=entries, links=links)


@pytest.mark.parametrize(
    ("path", "resolved"),
    [
        ("apps/web.yaml", "apps/web.yaml"),
        ("apps/link.yaml", "shared/web.yaml"),
        ("alias/web.yaml", "apps/web.yaml"),  # through a symlinked folder
        ("chain.yaml", "shared/web.yaml"),  # a link to a link
        ("apps/../apps/web.yaml", "apps/web.yaml"),
    ],
)
def test_symlinks_inside_the_tree_resolve_like_the_filesystem(path: str, resolved: str) -> None:
    tree = _tree(
        ["apps/web.yaml", "shared/web.yaml"],
        {"apps/link.yaml": "../shared/web.yaml", "alias": "apps", "chain.yaml": "apps/link.yaml"},
    )
    assert tree.resolve(path) == resolved


@pytest.mark.parametrize(
    ("links", "path"),
    [
        ({"apps/evil.yaml": "../../etc/passwd"}, "apps/evil.yaml"),
        ({"apps/evil.yaml": "/etc/passwd"}, "apps/evil.yaml"),
        ({"up": ".."}, "up/outside.yaml"),
    ],
)
def test_symlinks_leaving_the_tree_are_input_errors_naming_the_link(
    links: dict[str, str], path: str
) -> None:
    tree = _tree(["apps/web.yaml"], links)
    link = next(iter(links))
    with pytest.raises(InputError, match="symlink points outside the repository") as info:
        tree.resolve(path)
    assert info.value.file == f"{link}@{'c' * 12}"


def test_symlink_loops_are_input_errors() -> None:
    tree = _tree([], {"a": "b", "b": "a"})
    with pytest.raises(InputError, match="too many levels"):
        tree.resolve("a/x.yaml")


def test_cache_dir_defaults_to_the_user_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    path = cache_path("https://example.com/repo.git", None)
    assert path.parent == tmp_path / ".cache" / "auditor" / "repos"
    assert len(path.name) == 16

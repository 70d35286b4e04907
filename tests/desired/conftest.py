"""Real Git repositories built in tmp_path: what the desired stage reads in production."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.gitrepo import _ENV, GitRepo


@pytest.fixture
def git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The code under test runs git too: keep the developer's config out of it as well."""
    for key, value in _ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def make_repo(tmp_path: Path, git_env: None) -> Callable[[str], GitRepo]:
    def make(name: str = "repo") -> GitRepo:
        return GitRepo(tmp_path / name)

    return make


@pytest.fixture
def repo(make_repo: Callable[[str], GitRepo]) -> GitRepo:
    return make_repo("repo")


def deployment(name: str, *, namespace: str | None = None, replicas: int = 1) -> str:
    ns = f"  namespace: {namespace}\n" if namespace else ""
    return (
        "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata:\n"
        f"  name: {name}\n"
        f"{ns}"
        "spec:\n"
        f"  replicas: {replicas}\n"
    )

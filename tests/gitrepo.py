"""A real Git repository in a temp dir, shared by every test that needs one."""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

from auditor.config import GitSource, Limits
from auditor.desired import read_desired
from auditor.model import DesiredState

_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    # the developer's own git config (signing, hooks, templates) must not leak into tests
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


class GitRepo:
    """A throwaway repository: write files, commit, tag; every helper returns plain values."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        proc = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env={**os.environ, **_ENV},
            capture_output=True,
            text=True,
            check=True,
        )
        return proc.stdout.strip()

    def write(self, rel: str, content: str | bytes) -> Path:
        """Writes a file; text is dedented so tests can indent their YAML naturally."""
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            target.write_text(textwrap.dedent(content).lstrip("\n"))
        else:
            target.write_bytes(content)
        return target

    def symlink(self, rel: str, target: str) -> None:
        link = self.path / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "--no-gpg-sign", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str, *, annotated: bool = False) -> None:
        if annotated:
            self.git("tag", "-a", name, "-m", name)
        else:
            self.git("tag", name)

    def read(self, **kwargs: object) -> DesiredState:
        """read_desired of this repo; keyword arguments are GitSource fields or `limits`."""
        limits = kwargs.pop("limits", Limits())
        cluster = kwargs.pop("cluster", "")
        source = GitSource(repo=str(self.path), **kwargs)  # type: ignore[arg-type]
        return read_desired(source, cluster=str(cluster), limits=limits)  # type: ignore[arg-type]

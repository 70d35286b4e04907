"""The audited commit's files, handed from the desired stage to the stages that read more of
the same commit (attestations, lockfiles, the commit signature): one `ls-tree`, one
`git cat-file --batch` process for the whole run, never a second clone or checkout.
"""

from __future__ import annotations

from auditor.desired.git import BlobReader, Repo, Tree
from auditor.model import GitFile


class CommitReader:
    """`model.CommitFiles` over a tree already listed and a blob reader already running.

    Size limits are checked before a byte is read: a file over `max_bytes` comes back with
    `data` None, so a huge blob in Git is reported, never loaded.
    """

    def __init__(self, repo: Repo, tree: Tree, reader: BlobReader, *, max_bytes: int) -> None:
        self.commit = tree.commit
        self.git_dir = repo.git_dir
        self._tree = tree
        self._reader = reader
        self._max_bytes = max_bytes

    def resolve(self, path: str) -> str:
        return self._tree.resolve(path)

    def is_dir(self, path: str) -> bool:
        return self._tree.is_dir(path)

    def child_paths(self, directory: str) -> list[str]:
        return self._tree.child_paths(directory)

    def file(self, shown: str, resolved: str) -> GitFile | None:
        entry = self._tree.entries.get(resolved)
        if entry is None or entry.is_submodule or entry.is_symlink:
            return None
        if entry.size > self._max_bytes:
            return GitFile(path=shown, commit=self.commit, size=entry.size, data=None)
        data = self._reader.read(entry.sha)
        return GitFile(path=shown, commit=self.commit, size=entry.size, data=data)

    def close(self) -> None:
        self._reader.close()


__all__ = ["CommitReader"]

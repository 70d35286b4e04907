"""Reading a Git repository at one pinned commit through the `git` CLI.

Everything is read from the commit's objects, never from a working tree: what the audit
reports is exactly what that commit declares, whatever is checked out or edited locally.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from auditor.config import is_url
from auditor.errors import InputError, SourceError
from auditor.filelock import locked_beside
from auditor.model import short_sha
from auditor.redact import redact_url

log = logging.getLogger(__name__)

# ext:: runs an arbitrary command as a "transport": a repo URL from a config file must
# never be able to do that.
_GIT_CONFIG = ("-c", "protocol.ext.allow=never")
# Inherited variables that would point git at another repository or object store than ours.
_GIT_LOCATION_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_COMMON_DIR",
)
LOCAL_TIMEOUT_SECONDS = 120.0
NETWORK_TIMEOUT_SECONDS = 600.0
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_TRANSPORT_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")

MODE_SYMLINK = "120000"
MODE_GITLINK = "160000"
MAX_LINK_HOPS = 40  # as Linux allows


def git_env() -> dict[str, str]:
    """The environment every git process runs with: never prompts, never a foreign repo."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARS}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GCM_INTERACTIVE"] = "never"
    # an unattended cron job must fail on a missing key, not wait on a passphrase prompt
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env


def _stderr_text(raw: bytes | str | None) -> str:
    if raw is None:
        return ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return text.strip()


def _run_git(args: Iterable[str], *, what: str, timeout: float = LOCAL_TIMEOUT_SECONDS) -> bytes:
    """Runs git and returns stdout; failure is a SourceError carrying git's own words."""
    argv = ["git", *_GIT_CONFIG, *args]
    try:
        proc = subprocess.run(
            argv, capture_output=True, env=git_env(), timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise SourceError("git is not installed (no `git` on PATH)") from None
    except subprocess.TimeoutExpired:
        raise SourceError(f"{what}: git did not finish within {timeout:.0f}s") from None
    if proc.returncode != 0:
        detail = _stderr_text(proc.stderr) or f"git exited with status {proc.returncode}"
        raise SourceError(f"{what}: {detail}")
    return proc.stdout


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One entry of `git ls-tree -r --long`."""

    path: str  # repo-relative, `/`-separated
    mode: str  # `100644`, `100755`, `120000` (symlink), `160000` (submodule)
    sha: str
    size: int  # 0 for submodules

    @property
    def is_symlink(self) -> bool:
        return self.mode == MODE_SYMLINK

    @property
    def is_submodule(self) -> bool:
        return self.mode == MODE_GITLINK


@dataclass(frozen=True)
class Tree:
    """The files of one commit: pure data, so walking and symlink resolution need no I/O."""

    commit: str
    entries: dict[str, TreeEntry]
    links: dict[str, str]  # symlink path -> its target text
    children: dict[str, list[str]] = field(default_factory=dict)  # dir ("" = root) -> names

    def __post_init__(self) -> None:
        if not self.children:
            self.children.update(_directories(self.entries))

    def is_dir(self, path: str) -> bool:
        return path in self.children

    def child_paths(self, directory: str) -> list[str]:
        prefix = f"{directory}/" if directory else ""
        return [prefix + name for name in self.children.get(directory, [])]

    def resolve(self, path: str) -> str:
        """`path` with every symlink in it followed, as the filesystem would.

        A link whose target is absolute or climbs out of the repository is an InputError
        naming the link: a manifest must never be read from outside the audited commit.
        """
        pending = deque(part for part in path.split("/") if part not in ("", "."))
        resolved: list[str] = []
        link = ""  # the last link followed: what an escape is blamed on
        hops = 0
        while pending:
            name = pending.popleft()
            if name in ("", "."):
                continue
            if name == "..":
                if not resolved:
                    raise self._escape(link or path)
                resolved.pop()
                continue
            candidate = "/".join([*resolved, name])
            target = self.links.get(candidate)
            if target is None:
                resolved.append(name)
                continue
            link, hops = candidate, hops + 1
            if hops > MAX_LINK_HOPS:
                raise InputError("too many levels of symbolic links", file=self.at(link))
            if target.startswith("/"):
                raise self._escape(link)
            pending.extendleft(reversed(target.split("/")))
        return "/".join(resolved)

    def at(self, path: str) -> str:
        """`path@<short commit>`, how messages name a file of this commit."""
        return f"{path}@{short_sha(self.commit)}"

    def _escape(self, link: str) -> InputError:
        if link in self.links:
            return InputError(
                f"symlink points outside the repository (target {self.links[link]!r})",
                file=self.at(link),
                hint="auditor reads only files inside the audited commit",
            )
        return InputError(f"path {link!r} is outside the repository", key="path")


def _directories(entries: Iterable[str]) -> dict[str, list[str]]:
    children: dict[str, set[str]] = {"": set()}
    for path in entries:
        child = path
        while child:
            parent, _, name = child.rpartition("/")
            siblings = children.setdefault(parent, set())
            if name in siblings:
                break  # its ancestors were registered with it
            siblings.add(name)
            child = parent
    return {d: sorted(names) for d, names in children.items()}


class BlobReader:
    """One long-lived `git cat-file --batch`: one process for every blob of a run."""

    def __init__(self, git_dir: str) -> None:
        self._git_dir = git_dir
        try:
            self._proc = subprocess.Popen(
                ["git", *_GIT_CONFIG, "--git-dir", git_dir, "cat-file", "--batch"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=git_env(),
            )
        except FileNotFoundError:
            raise SourceError("git is not installed (no `git` on PATH)") from None
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._stdin: IO[bytes] = self._proc.stdin
        self._stdout: IO[bytes] = self._proc.stdout
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        writer = self._writer
        if writer is not None and writer.is_alive():
            # a batch was abandoned mid-way (a bad file): its unread answers fill the pipe,
            # so git stops reading and the writer would block forever
            self._proc.kill()
            writer.join()
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for stream in (self._stdout, self._proc.stderr):
            if stream is not None:
                stream.close()

    def read(self, sha: str) -> bytes:
        with self._lock:
            self._request([sha])
            return self._response(sha)

    def read_many(self, shas: list[str]) -> Generator[bytes, None, None]:
        """Contents of many blobs, in order; requests stream in while answers stream out.

        One round trip per blob costs more than parsing a small manifest, so requests are
        written from a thread while this one reads: the pipe never sits idle.
        """
        if not shas:
            return
        with self._lock:
            writer = threading.Thread(target=self._request, args=(shas,), daemon=True)
            self._writer = writer
            writer.start()
            done = False
            try:
                for sha in shas:
                    yield self._response(sha)
                done = True
            finally:
                if not done:
                    # the answers left unread would misalign every later read: end git now
                    self._proc.kill()
                writer.join()
                self._writer = None

    def copy_to(self, sha: str, out: IO[bytes]) -> None:
        """Streams a blob into a file without holding it in memory (kustomize extraction)."""
        with self._lock:
            self._request([sha])
            size = self._header(sha)
            remaining = size
            while remaining:
                chunk = self._stdout.read(min(remaining, 1 << 20))
                if not chunk:
                    raise self._broken()
                out.write(chunk)
                remaining -= len(chunk)
            self._stdout.read(1)

    def _request(self, shas: list[str]) -> None:
        try:
            self._stdin.write(b"".join(f"{sha}\n".encode() for sha in shas))
            self._stdin.flush()
        except (OSError, ValueError):
            pass  # the reader side reports the dead process with git's stderr

    def _header(self, sha: str) -> int:
        header = self._stdout.readline()
        if not header:
            raise self._broken()
        parts = header.split()
        if len(parts) != 3:
            raise SourceError(f"git cat-file: object {sha} is missing from the repository")
        return int(parts[2])

    def _response(self, sha: str) -> bytes:
        size = self._header(sha)
        data = self._stdout.read(size)
        if len(data) != size:
            raise self._broken()
        self._stdout.read(1)  # the newline after each object
        return data

    def _broken(self) -> SourceError:
        self._proc.poll()
        stderr = b""
        if self._proc.returncode is not None and self._proc.stderr is not None:
            stderr = self._proc.stderr.read()
        detail = _stderr_text(stderr) or "the process ended early"
        return SourceError(f"git cat-file failed in {self._git_dir}: {detail}")


@dataclass(frozen=True, slots=True)
class Repo:
    """A repository opened for reading: `git_dir` is local, `display` is what messages show.

    `fetched` is the revision a cache fetch asked the remote for and the commit it named then:
    a shallow cache keeps no branches, so that answer is the revision's meaning for this run.
    """

    git_dir: str
    display: str
    fetched: tuple[str, str] | None = None

    def git(self, *args: str, what: str, timeout: float = LOCAL_TIMEOUT_SECONDS) -> bytes:
        return _run_git(["--git-dir", self.git_dir, *args], what=what, timeout=timeout)

    def resolve(self, revision: str) -> str:
        """The full commit SHA that a branch, tag, short or full SHA, or HEAD names."""
        check_revision(revision)
        if self.fetched is not None and self.fetched[0] == revision:
            return self.fetched[1]
        argv = ["--git-dir", self.git_dir, "rev-parse", "--verify", "--quiet"]
        argv += ["--end-of-options", f"{revision}^{{commit}}"]
        try:
            out = _run_git(argv, what="rev-parse")
        except SourceError:
            raise SourceError(
                f"unknown revision {revision!r} in {self.display}",
                hint="use a branch, tag or commit SHA that exists in the repository",
            ) from None
        return out.decode().strip()

    def has_commit(self, sha: str) -> bool:
        try:
            self.resolve(sha)
        except SourceError:
            return False
        return True

    def blobs(self) -> BlobReader:
        return BlobReader(self.git_dir)

    def tree(self, commit: str, reader: BlobReader) -> Tree:
        """Every file of the commit, with symlink targets read (they are small and few)."""
        raw = self.git("ls-tree", "-r", "-z", "--long", commit, what=f"ls-tree {commit}")
        entries = parse_ls_tree(raw)
        links = [e for e in entries.values() if e.is_symlink]
        targets = reader.read_many([e.sha for e in links])
        decoded = (target.decode("utf-8", "surrogateescape") for target in targets)
        link_map = {e.path: target for e, target in zip(links, decoded, strict=True)}
        return Tree(commit=commit, entries=entries, links=link_map)


def parse_ls_tree(raw: bytes) -> dict[str, TreeEntry]:
    """`ls-tree -r -z --long` output: `<mode> <type> <sha> <size>\\t<path>\\0` per entry."""
    entries: dict[str, TreeEntry] = {}
    for record in raw.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, _kind, sha, size = meta.decode().split()
        path = raw_path.decode("utf-8", "surrogateescape")
        entries[path] = TreeEntry(
            path=path, mode=mode, sha=sha, size=0 if size == "-" else int(size)
        )
    return entries


def check_revision(revision: str) -> None:
    if not revision:
        raise InputError("the Git revision is empty", key="revision")
    if revision.startswith("-"):
        # an option in disguise (`--output=...`): never let it reach a git command line
        raise InputError(f"invalid Git revision {revision!r}: it starts with '-'", key="revision")


def open_repo(repo: str, *, revision: str, cache_dir: str | None = None) -> Repo:
    """The repository to read: a local clone as is, a URL through a bare cached clone."""
    if _TRANSPORT_PREFIX.match(repo):
        raise SourceError(
            f"repository {redact_url(repo)!r} uses a `transport::` address, which is not allowed"
        )
    if os.path.exists(repo):
        return _open_local(repo)
    if is_url(repo):
        return _open_cached(repo, revision=revision, cache_dir=cache_dir)
    raise SourceError(f"repository {repo!r} not found: not a local path or a Git URL")


def _open_local(path: str) -> Repo:
    what = f"{path} is not a Git repository"
    out = _run_git(
        ["-C", path, "rev-parse", "--absolute-git-dir", "--is-bare-repository", "--show-prefix"],
        what=what,
    )
    lines = out.decode().splitlines()
    git_dir, bare = lines[0], lines[1] == "true"
    prefix = lines[2] if len(lines) > 2 else ""
    if not bare and prefix:
        # git would find the enclosing repository: paths would silently mean something else
        top = _run_git(["-C", path, "rev-parse", "--show-toplevel"], what=what).decode().strip()
        raise SourceError(
            f"{path} is a folder inside the Git repository {top}, not the repository itself",
            hint=f"use --repo {top} --path {prefix.rstrip('/')}",
        )
    return Repo(git_dir=git_dir, display=path)


def cache_root(cache_dir: str | None) -> Path:
    if cache_dir:
        return Path(cache_dir).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "auditor" / "repos"


def cache_path(url: str, cache_dir: str | None) -> Path:
    return cache_root(cache_dir) / hashlib.sha256(url.encode()).hexdigest()[:16]


def _open_cached(url: str, *, revision: str, cache_dir: str | None) -> Repo:
    """A URL through a bare cache reused from run to run: each run fetches only the commit its
    revision names, shallow (`fetch --depth 1`), never a clone of the whole history."""
    target = cache_path(url, cache_dir)
    shown = redact_url(url)
    with locked_beside(target):  # two audits at once must not fetch into one cache together
        if not (target / "HEAD").exists():
            _create_cache(target)
        repo = Repo(git_dir=str(target), display=shown)
        if _FULL_SHA.fullmatch(revision) and repo.has_commit(revision):
            return repo  # a pinned SHA already cached cannot change: no network at all
        commit = _fetch(repo, url, revision)
    return Repo(git_dir=repo.git_dir, display=shown, fetched=(revision, commit))


def _create_cache(target: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix=".clone-", dir=target.parent))
    try:
        _run_git(["init", "--bare", "--quiet", str(staging / "repo")], what="git init")
        # rename is atomic: a killed run never leaves a half-made cache behind
        os.replace(staging / "repo", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# Kept per fetched revision, so the cache's objects stay reachable (gc never drops them) and
# a pinned SHA fetched once is answered from the cache from then on.
_KEPT = "refs/auditor/"


def _fetch(repo: Repo, url: str, revision: str) -> str:
    """The commit `revision` names on the remote now, fetched with depth 1."""
    log.info("fetching %s at %s", repo.display, revision)
    check_revision(revision)
    try:
        repo.git(
            "fetch", "--quiet", "--depth", "1", "--no-tags", "--", url, revision,
            what=f"cannot fetch {revision!r} from {repo.display}",
            timeout=NETWORK_TIMEOUT_SECONDS,
        )  # fmt: skip
        commit = repo.git("rev-parse", "--verify", "FETCH_HEAD^{commit}", what="fetched commit")
    except SourceError as exc:
        raise SourceError(
            redact_url(exc.message.replace(url, repo.display)),
            hint="check the URL and that the revision is a branch, tag or commit the remote has",
        ) from None
    sha = commit.decode().strip()
    name = _KEPT + hashlib.sha256(revision.encode()).hexdigest()[:16]
    repo.git("update-ref", name, sha, what="keep the fetched commit")
    return sha

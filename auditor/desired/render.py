"""Rendering kustomize directories exactly as the pinned commit declares them.

kustomize reads files from disk, so the commit's tree is written to a private temp
folder first (never the working tree: local edits must not count). Before kustomize
runs, every kustomization it would reach is read here: remote bases and Helm charts would
make kustomize reach for the network and render something other than the commit.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from auditor.desired.git import BlobReader, Tree, TreeEntry, short
from auditor.desired.manifests import (
    KustomizeDir,
    RawObject,
    kustomization_file,
    objects_of,
    relocated,
)
from auditor.errors import InputError, SourceError
from auditor.safeyaml import check_size, load_documents, load_one
from auditor.tempdirs import make_temp_dir

log = logging.getLogger(__name__)

RENDER_TIMEOUT_SECONDS = 300.0
# Blobs up to this size are fetched in one pipelined batch when the tree is written out;
# bigger ones are streamed to disk one at a time so they never sit in memory.
_BATCH_BLOB_BYTES = 1 << 20

# Fields whose entries kustomize may load from a URL: each one is checked for remoteness.
_REMOTE_CAPABLE = ("resources", "bases", "components", "generators", "transformers", "validators")
_LOCAL_FILE_LISTS = ("crds", "configurations", "patchesStrategicMerge")
_PATH_OBJECT_LISTS = ("patches", "patchesJson6902", "replacements")
_HELM_FIELDS = ("helmCharts", "helmChartInflationGenerator", "helmGlobals")
_REMOTE = re.compile(
    r"""^(?:
        [A-Za-z][A-Za-z0-9+.-]*://     # https://, ssh://, file://
      | [A-Za-z][A-Za-z0-9+.-]*::      # git::https://...
      | [\w.-]+@[\w.-]+:               # git@github.com:org/repo
      | (?:github\.com|gitlab\.com|bitbucket\.org)/
    )""",
    re.VERBOSE,
)
_KLOG_ERROR = re.compile(r'^E\d{4} [^\]]*\] "command failed" err="(.*)"$', re.DOTALL)
_REMOTE_QUERY = re.compile(r"\?(?:.*&)?(?:ref|version|submodules|timeout)=")


def is_remote(reference: str) -> bool:
    """Whether kustomize would fetch this resources/bases entry over the network."""
    return bool(_REMOTE.match(reference) or _REMOTE_QUERY.search(reference))


def _looks_like_host(reference: str) -> bool:
    # kustomize falls back to cloning `example.com/org/repo` when no such local path exists
    first = reference.split("/", 1)[0]
    return "." in first.strip(".") and "/" in reference


def check_kustomization(
    tree: Tree, reader: BlobReader, kustomization: str, *, max_bytes: int
) -> str:
    """Reads every kustomization reachable from this one; returns the root's kind.

    Raises SourceError for remote bases and Helm charts, InputError for references that
    leave the repository or do not exist at the commit.
    """
    root_kind = ""
    pending = [kustomization]
    seen: set[str] = set()
    while pending:
        current = pending.pop()
        real = tree.resolve(current)
        if real in seen:
            continue
        seen.add(real)
        data = _load_kustomization(tree, reader, current, real, max_bytes=max_bytes)
        if current == kustomization:
            root_kind = str(data.get("kind") or "Kustomization")
        pending.extend(_references(tree, current, data))
    return root_kind


def _load_kustomization(
    tree: Tree, reader: BlobReader, path: str, real: str, *, max_bytes: int
) -> dict[str, Any]:
    entry = tree.entries.get(real)
    if entry is None or entry.is_submodule:
        raise InputError("kustomization file does not exist at the commit", file=tree.at(path))
    check_size(entry.size, tree.at(path), max_bytes)
    try:
        data = load_one(reader.read(entry.sha), source=path, max_bytes=max_bytes)
    except InputError as exc:
        raise relocated(exc, tree.at(path)) from None
    if not isinstance(data, dict):
        raise InputError("a kustomization must be a mapping", file=tree.at(path))
    return data


def _references(tree: Tree, kustomization: str, data: dict[str, Any]) -> Iterator[str]:
    """Checks each path the kustomization names; yields the kustomizations it includes."""
    where = tree.at(kustomization)
    for key in _HELM_FIELDS:
        if data.get(key):
            raise SourceError(
                f"{key} is not supported: rendering Helm charts needs kustomize --enable-helm "
                "and the network, and auditor reads only the pinned commit",
                file=where,
                key=key,
                hint="commit the chart's rendered manifests (helm template) instead",
            )
    base = posixpath.dirname(kustomization)
    for key in _REMOTE_CAPABLE:
        for item in _strings(data.get(key)):
            if "\n" in item:
                continue  # an inline generator/transformer config, not a path
            if is_remote(item):
                raise _remote(item, where, key)
            real = _local(tree, base, item, where, key, remote_capable=True)
            if tree.is_dir(real):
                included = kustomization_file(tree, real)
                if included is None:
                    raise InputError(
                        f"{key} entry {item!r} is a folder with no kustomization file",
                        file=where,
                        key=key,
                    )
                yield included
    for item in _local_paths(data):
        _local(tree, base, item, where, "path", remote_capable=False)


def _local_paths(data: dict[str, Any]) -> Iterator[str]:
    """Every plain file path a kustomization names (patches, generator sources...)."""
    for key in _LOCAL_FILE_LISTS:
        yield from (s for s in _strings(data.get(key)) if "\n" not in s)
    for key in _PATH_OBJECT_LISTS:
        for item in _list(data.get(key)):
            if isinstance(item, dict) and isinstance(item.get("path"), str):
                yield item["path"]
    openapi = data.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        yield openapi["path"]
    for key in ("configMapGenerator", "secretGenerator"):
        for gen in _list(data.get(key)):
            if not isinstance(gen, dict):
                continue
            for source in _strings(gen.get("files")):
                yield source.split("=", 1)[-1]  # `key=path` or `path`
            yield from _strings(gen.get("envs"))
            if isinstance(gen.get("env"), str):
                yield gen["env"]


def _local(tree: Tree, base: str, item: str, where: str, key: str, *, remote_capable: bool) -> str:
    """The repo path `item` names from a kustomization in `base`: inside the repo and present."""
    joined = posixpath.normpath(posixpath.join(base, item))
    if item.startswith("/") or joined == ".." or joined.startswith("../"):
        raise InputError(f"{key} entry {item!r} is outside the repository", file=where, key=key)
    real = tree.resolve(joined)
    if real in tree.entries or tree.is_dir(real):
        return real
    if remote_capable and _looks_like_host(item):
        raise _remote(item, where, key)
    raise InputError(
        f"{key} entry {item!r} does not exist at commit {short(tree.commit)}", file=where, key=key
    )


def _remote(item: str, where: str, key: str) -> SourceError:
    return SourceError(
        f"remote base {item!r} is not allowed: auditor reads only the pinned commit (no network)",
        file=where,
        key=key,
        hint="vendor the base into the repository and reference it by a relative path",
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    return [v for v in _list(value) if isinstance(v, str)]


class Checkout:
    """The commit's tree written to a private temp folder, on first use, removed on exit."""

    def __init__(self, tree: Tree, reader: BlobReader) -> None:
        self._tree = tree
        self._reader = reader
        self._root: Path | None = None

    def __enter__(self) -> Checkout:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._root is not None:
            shutil.rmtree(self._root.parent, ignore_errors=True)
            self._root = None

    @property
    def root(self) -> Path:
        if self._root is None:
            root = make_temp_dir("render") / "repo"
            root.mkdir()
            self._root = root
            write_tree(self._tree, self._reader, root)
        return self._root


def write_tree(tree: Tree, reader: BlobReader, root: Path) -> None:
    """Writes the commit's files under `root`; only symlinks that stay inside are created."""
    files = [e for e in tree.entries.values() if not e.is_symlink and not e.is_submodule]
    small = [e for e in files if e.size <= _BATCH_BLOB_BYTES]
    for entry, content in zip(small, reader.read_many([e.sha for e in small]), strict=True):
        with _create(root, entry) as out:
            out.write(content)
    for entry in files:
        if entry.size > _BATCH_BLOB_BYTES:
            with _create(root, entry) as out:
                reader.copy_to(entry.sha, out)
    for path, target in tree.links.items():
        try:
            tree.resolve(path)
        except InputError:
            log.debug("not writing %s: its target leaves the repository", path)
            continue
        dest = _destination(root, path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, dest)


def _destination(root: Path, path: str) -> Path:
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        # git itself refuses such trees; a crafted object must still not write elsewhere
        raise SourceError(f"unsafe path {path!r} in the Git tree")
    return root.joinpath(*parts)


def _create(root: Path, entry: TreeEntry) -> Any:
    dest = _destination(root, entry.path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o755 if entry.mode == "100755" else 0o644
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    return os.fdopen(os.open(dest, flags, mode), "wb")


def kustomize_command() -> list[str]:
    """`kubectl kustomize`, else a standalone `kustomize build`."""
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize"]
    kustomize = shutil.which("kustomize")
    if kustomize:
        return [kustomize, "build"]
    raise SourceError(
        "rendering kustomize directories needs `kubectl` or `kustomize` on PATH; neither found",
        hint="install kubectl (it embeds kustomize), or pass --path for plain-YAML folders only",
    )


def run_kustomize(root: Path, directory: str, *, where: str) -> bytes:
    """kustomize's output for one directory of the checkout; its stderr names the problem."""
    target = root.joinpath(*directory.split("/")) if directory else root
    argv = [*kustomize_command(), str(target)]
    try:
        proc = subprocess.run(
            argv, capture_output=True, cwd=root, timeout=RENDER_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise SourceError(
            f"kustomize did not finish within {RENDER_TIMEOUT_SECONDS:.0f}s", file=where
        ) from None
    if proc.returncode != 0:
        detail = _kustomize_error(proc.stderr, root) or f"exit status {proc.returncode}"
        raise SourceError(f"kustomize failed: {detail}", file=where)
    return proc.stdout


def _kustomize_error(stderr: bytes, root: Path) -> str:
    text = stderr.decode("utf-8", "replace").strip()
    # kubectl wraps the message in a klog line: keep what kustomize said
    match = _KLOG_ERROR.search(text)
    if match:
        text = match.group(1).replace('\\"', '"')
    # repo-relative paths, not our temp folder
    return text.replace(f"{root}/", "").replace(str(root), ".")


def render_kustomization(
    tree: Tree,
    reader: BlobReader,
    kdir: KustomizeDir,
    checkout: Checkout,
    *,
    max_manifest_bytes: int,
    max_output_bytes: int,
) -> list[RawObject]:
    """The objects one kustomize directory renders to at the commit."""
    kind = check_kustomization(tree, reader, kdir.kustomization, max_bytes=max_manifest_bytes)
    if kind == "Component":
        log.info(
            "skipping %s: a kustomize Component renders only inside a kustomization", kdir.path
        )
        return []
    where = tree.at(kdir.kustomization)
    output = run_kustomize(checkout.root, kdir.path, where=where)
    # line numbers below count in kustomize's output, which "(rendered)" makes plain
    shown = f"{where} (rendered)"
    docs = load_documents(output, source=shown, max_bytes=max_output_bytes)
    origin = f"{kdir.kustomization}@{tree.commit}"
    return list(objects_of(docs, file=shown, origin=origin, rendered=True))

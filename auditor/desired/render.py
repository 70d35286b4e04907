"""Rendering kustomize directories exactly as the pinned commit declares them.

kustomize reads files from disk, so the commit's tree is written to a private temp
folder first (never the working tree: local edits must not count). Before kustomize
runs, every kustomization it would reach is read here: remote bases and Helm charts would
make kustomize reach for the network and render something other than the commit, and every
file (or inline patch) it would parse goes through the same guard as a manifest (size, alias
expansion, depth, duplicate keys): kustomize expands YAML aliases without limit, and an alias
bomb of a few hundred bytes grows it to tens of GiB. kustomize itself then runs with a time,
memory and output limit (`limits.render_*`), so a render that still runs away is an error
naming the kustomization, not a machine out of memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import re
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from auditor.config import Limits
from auditor.desired.git import BlobReader, Tree, TreeEntry
from auditor.desired.manifests import (
    KustomizeDir,
    RawObject,
    kustomization_file,
    objects_of,
    relocated,
)
from auditor.errors import InputError, SourceError
from auditor.model import short_sha
from auditor.rlimits import lowered
from auditor.safeyaml import check_size, load_documents, load_one
from auditor.tempdirs import make_temp_dir

log = logging.getLogger(__name__)

# Blobs up to this size are fetched in one pipelined batch when the tree is written out;
# bigger ones are streamed to disk one at a time so they never sit in memory.
_BATCH_BLOB_BYTES = 1 << 20

# Fields whose entries kustomize may load from a URL: each one is checked for remoteness.
_REMOTE_CAPABLE = ("resources", "bases", "components", "generators", "transformers", "validators")
# Fields listing files kustomize parses as YAML (or JSON), and fields of objects with a `path`.
_LOCAL_FILE_LISTS = ("crds", "configurations", "patchesStrategicMerge")
_PATH_OBJECT_LISTS = ("patches", "patchesJson6902", "replacements")
# Fields whose objects may carry YAML inline, as a string kustomize parses.
_INLINE_PATCH_LISTS = ("patches", "patchesJson6902")
_INLINE_CONFIG_LISTS = ("patchesStrategicMerge", "generators", "transformers", "validators")
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
# What a Go program prints when it cannot get memory (heap growth or its start-up reservations).
_OUT_OF_MEMORY = re.compile(rb"out of memory|cannot allocate memory|failed to reserve")
_STDERR_TAIL = 64 * 1024
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
    """Reads every kustomization reachable from this one, and checks every file they make
    kustomize read; returns the root's kind.

    Raises SourceError for remote bases and Helm charts, InputError for references that
    leave the repository or do not exist at the commit, and for any file (or inline patch)
    kustomize would parse that a manifest could not be: too large, an alias bomb, nested too
    deeply, a key given twice.
    """
    root_kind = ""
    pending = [kustomization]
    seen: set[str] = set()
    files: dict[str, bool] = {}  # repo path -> parsed as YAML by kustomize (else read as data)
    while pending:
        current = pending.pop()
        real = tree.resolve(current)
        if real in seen:
            continue
        seen.add(real)
        data = _load_kustomization(tree, reader, current, real, max_bytes=max_bytes)
        if current == kustomization:
            root_kind = str(data.get("kind") or "Kustomization")
        _check_inline_yaml(data, tree.at(current), max_bytes)
        pending.extend(_references(tree, current, data, files))
    _check_files(tree, reader, files, max_bytes)
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


def _references(
    tree: Tree, kustomization: str, data: dict[str, Any], files: dict[str, bool]
) -> list[str]:
    """Checks each path the kustomization names and records the files among them in `files`;
    returns the kustomizations it includes."""
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
    included: list[str] = []
    for key in _REMOTE_CAPABLE:
        for item in _strings(data.get(key)):
            if "\n" in item:
                continue  # an inline generator/transformer config, not a path
            if is_remote(item):
                raise _remote(item, where, key)
            real = _local(tree, base, item, where, key, remote_capable=True)
            if not tree.is_dir(real):
                files[real] = True  # a resource, or a generator/transformer config
                continue
            found = kustomization_file(tree, real)
            if found is None:
                raise InputError(
                    f"{key} entry {item!r} is a folder with no kustomization file",
                    file=where,
                    key=key,
                )
            included.append(found)
    for item, parsed in _local_paths(data):
        real = _local(tree, base, item, where, "path", remote_capable=False)
        if not tree.is_dir(real):
            files[real] = files.get(real, False) or parsed
    return included


def _local_paths(data: dict[str, Any]) -> Iterator[tuple[str, bool]]:
    """Every plain file path a kustomization names (patches, generator sources...), and
    whether kustomize parses it as YAML: generator sources are data, read as bytes."""
    for key in _LOCAL_FILE_LISTS:
        yield from ((s, True) for s in _strings(data.get(key)) if "\n" not in s)
    for key in _PATH_OBJECT_LISTS:
        for item in _list(data.get(key)):
            if isinstance(item, dict) and isinstance(item.get("path"), str):
                yield item["path"], True
    openapi = data.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        yield openapi["path"], True
    for key in ("configMapGenerator", "secretGenerator"):
        for gen in _list(data.get(key)):
            if not isinstance(gen, dict):
                continue
            for source in _strings(gen.get("files")):
                yield source.split("=", 1)[-1], False  # `key=path` or `path`
            yield from ((s, False) for s in _strings(gen.get("envs")))
            if isinstance(gen.get("env"), str):
                yield gen["env"], False


def _inline_yaml(data: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, text) of every YAML document a kustomization carries as a string: the outer
    file's guard saw only a string, kustomize parses (and expands) what is inside."""
    for key in _INLINE_PATCH_LISTS:
        for index, item in enumerate(_list(data.get(key))):
            if isinstance(item, dict) and isinstance(item.get("patch"), str):
                yield f"{key}[{index}].patch", item["patch"]
    for key in _INLINE_CONFIG_LISTS:
        for index, item in enumerate(_list(data.get(key))):
            if isinstance(item, str) and "\n" in item:
                yield f"{key}[{index}]", item


def _check_inline_yaml(data: dict[str, Any], where: str, max_bytes: int) -> None:
    for key, text in _inline_yaml(data):
        try:
            load_documents(text, source=where, max_bytes=max_bytes)
        except InputError as exc:
            # the line is inside the string, not in the file: name the key instead
            raise InputError(exc.message, file=where, key=key) from None


def _check_files(tree: Tree, reader: BlobReader, files: dict[str, bool], max_bytes: int) -> None:
    """Sizes of every file kustomize would read, then the manifest guard over those it parses;
    blobs in one pipelined batch, as plain manifests are read."""
    entries = [tree.entries[path] for path in sorted(files) if path in tree.entries]
    entries = [e for e in entries if not e.is_submodule]
    for entry in entries:
        check_size(entry.size, tree.at(entry.path), max_bytes)
    parsed = [e for e in entries if files[e.path]]
    # closing: a bad file ends the batch at once, so the reader can shut down cleanly
    with contextlib.closing(reader.read_many([e.sha for e in parsed])) as contents:
        for entry, content in zip(parsed, contents, strict=True):
            try:
                load_documents(content, source=entry.path, max_bytes=max_bytes)
            except InputError as exc:
                raise relocated(exc, tree.at(entry.path)) from None


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
        f"{key} entry {item!r} does not exist at commit {short_sha(tree.commit)}",
        file=where,
        key=key,
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


def run_kustomize(root: Path, directory: str, *, where: str, limits: Limits) -> bytes:
    """kustomize's output for one directory of the checkout; its stderr names the problem.

    It runs with `limits.render_timeout_seconds`, `limits.render_memory_bytes` of address
    space, and its output goes to a file it may not grow past `limits.max_snapshot_bytes`, so
    even a render that slips past the checks is bounded in time, memory and output.
    """
    target = root.joinpath(*directory.split("/")) if directory else root
    argv = [*kustomize_command(), str(target)]
    max_output = limits.max_snapshot_bytes
    # next to the checkout: the same private temp folder, removed with it
    with (
        tempfile.TemporaryFile(dir=root.parent) as out,
        tempfile.TemporaryFile(dir=root.parent) as err,
    ):
        try:
            proc = subprocess.run(
                argv,
                stdout=out,
                stderr=err,
                cwd=root,
                timeout=limits.render_timeout_seconds,
                check=False,
                preexec_fn=_child_limits(memory=limits.render_memory_bytes, output=max_output + 1),
            )
        except subprocess.TimeoutExpired:
            raise SourceError(
                f"kustomize did not finish within {limits.render_timeout_seconds:g}s",
                file=where,
                hint="raise limits.render_timeout_seconds in auditor.yaml if the render is legitimate",
            ) from None
        except subprocess.SubprocessError as exc:  # the limits could not be set in the child
            raise SourceError(
                f"cannot start kustomize with its limits: {exc}", file=where
            ) from None
        size = os.fstat(out.fileno()).st_size
        if size > max_output:
            raise SourceError(
                f"kustomize output is over the {max_output}-byte limit",
                file=where,
                hint="raise limits.max_snapshot_bytes in auditor.yaml if the render is legitimate",
            )
        if proc.returncode != 0:
            raise _render_failed(proc.returncode, _tail(err), root, where, limits)
        out.seek(0)
        return out.read(max_output + 1)


def _child_limits(*, memory: int, output: int) -> Callable[[], None]:
    """What a child process runs before exec: caps its address space and the size of any file
    it writes (its output). The values are computed here, in the parent: between fork and exec
    only setrlimit itself runs, which takes no lock another thread could hold."""
    address_space = lowered(resource.RLIMIT_AS, memory)
    file_size = lowered(resource.RLIMIT_FSIZE, output)

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, address_space)
        resource.setrlimit(resource.RLIMIT_FSIZE, file_size)

    return apply


def _tail(stream: IO[bytes]) -> bytes:
    size = os.fstat(stream.fileno()).st_size
    stream.seek(max(0, size - _STDERR_TAIL))
    return stream.read()


def _render_failed(
    returncode: int, stderr: bytes, root: Path, where: str, limits: Limits
) -> SourceError:
    if _OUT_OF_MEMORY.search(stderr):
        return SourceError(
            f"kustomize ran out of memory: a render may use {limits.render_memory_bytes} bytes "
            "of address space (limits.render_memory_bytes)",
            file=where,
            hint="raise limits.render_memory_bytes in auditor.yaml if the render is legitimate; "
            "kustomize (Go) reserves about 1 GiB of address space before it reads a file",
        )
    if returncode < 0:
        return SourceError(f"kustomize was killed by signal {-returncode}", file=where)
    detail = _kustomize_error(stderr, root) or f"exit status {returncode}"
    return SourceError(f"kustomize failed: {detail}", file=where)


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
    limits: Limits,
) -> list[RawObject]:
    """The objects one kustomize directory renders to at the commit."""
    kind = check_kustomization(
        tree, reader, kdir.kustomization, max_bytes=limits.max_manifest_bytes
    )
    if kind == "Component":
        log.info(
            "skipping %s: a kustomize Component renders only inside a kustomization", kdir.path
        )
        return []
    where = tree.at(kdir.kustomization)
    output = run_kustomize(checkout.root, kdir.path, where=where, limits=limits)
    # line numbers below count in kustomize's output, which "(rendered)" makes plain
    shown = f"{where} (rendered)"
    docs = load_documents(output, source=shown, max_bytes=limits.max_snapshot_bytes)
    origin = f"{kdir.kustomization}@{tree.commit}"
    return list(objects_of(docs, file=shown, origin=origin, rendered=True))

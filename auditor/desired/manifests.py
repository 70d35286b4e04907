"""Which files of a commit declare objects, and turning their documents into `Resource`s.

Walking and building are pure functions of a `Tree` and parsed documents; only
`read_manifest_files` touches git (through the shared `BlobReader`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import posixpath
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditor.desired.git import BlobReader, Tree, TreeEntry
from auditor.desired.parallel import parse_all
from auditor.errors import InputError
from auditor.kinds import is_namespaced
from auditor.model import Resource, api_group, short_sha
from auditor.objects import flatten, is_object, to_resource
from auditor.repo_paths import RepoPathError, repo_path
from auditor.safeyaml import Document, check_size, load_documents

log = logging.getLogger(__name__)

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# kustomize and kpt never send objects carrying this annotation to the cluster
LOCAL_CONFIG = "config.kubernetes.io/local-config"
# The file that makes a folder a Helm chart (Helm reads no other spelling of it).
HELM_CHART_FILE = "Chart.yaml"
_SHOWN = 5  # files an error lists before "and N more"


@dataclass(frozen=True, slots=True)
class ManifestFile:
    """A plain YAML or JSON file of manifests."""

    path: str  # repo-relative, symlinks resolved
    entry: TreeEntry


@dataclass(frozen=True, slots=True)
class KustomizeDir:
    """A directory rendered with kustomize."""

    path: str  # repo-relative directory, "" for the root
    kustomization: str  # repo-relative path of its kustomization file


Input = ManifestFile | KustomizeDir


@dataclass(frozen=True, slots=True)
class RawObject:
    """One parsed object before namespace defaulting, with where it came from."""

    data: dict[str, Any]
    file: str  # how messages name its file: `path@<short commit>`
    line: int
    origin: str  # `path@<commit>`, the Resource origin
    rendered: bool = False  # by kustomize: `line` counts in its output, not in a Git file


def normalize_path(path: str) -> str:
    """A --path as a clean repo-relative path ("." for the root); escapes are InputErrors."""
    try:
        return repo_path(path, root_ok=True)
    except RepoPathError as exc:
        raise InputError(f"path {exc}", key="path") from None


def kustomization_file(tree: Tree, directory: str) -> str | None:
    for name in KUSTOMIZATION_FILES:
        candidate = f"{directory}/{name}" if directory else name
        if candidate in tree.entries or candidate in tree.links:
            return candidate
    return None


@dataclass(frozen=True, slots=True)
class FoundInputs:
    """What the walk of the paths found, and which of it each path reached."""

    inputs: tuple[Input, ...]  # each file or kustomize directory once, in a stable order
    # each path (normalized) -> the paths of the inputs its walk reached, also those another
    # path reached first: a path counts as declaring what it holds, read once or not
    reached: dict[str, tuple[str, ...]]


def find_inputs(tree: Tree, paths: Sequence[str]) -> FoundInputs:
    """The manifest files and kustomize directories under `paths`, in a stable order.

    A file reached twice (overlapping paths, a symlink to a walked file) is read once. A path
    in or over a Helm chart is an InputError: its templates are not manifests.
    """
    walker = _Walker(tree)
    for path in paths:
        walker.start(path)
    return FoundInputs(inputs=tuple(walker.found), reached=walker.reached)


class _Walker:
    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.found: list[Input] = []
        self.reached: dict[str, tuple[str, ...]] = {}
        self._emitted: set[str] = set()  # inputs in `found`, across paths
        self._seen: set[str] = set()  # folders and files of the current path's walk
        self._reach: list[str] = []

    def start(self, path: str) -> None:
        normal = normalize_path(path)
        real = self.tree.resolve(normal)
        self._seen, self._reach = set(), []
        if real in self.tree.entries:
            self._refuse_helm(posixpath.dirname(real), path=normal)
            self._file(real, explicit=True)
        elif self.tree.is_dir(real):
            self._refuse_helm(real, path=normal)
            self._dir(real)
        else:
            raise InputError(
                f"path {path!r} does not exist at commit {short_sha(self.tree.commit)}", key="path"
            )
        self.reached[normal] = tuple(self._reach)

    def _dir(self, directory: str) -> None:
        if directory in self._seen:  # also stops symlink cycles
            return
        self._seen.add(directory)
        # a chart first: a kustomization beside Chart.yaml post-renders the chart's output
        chart = helm_chart_file(self.tree, directory)
        if chart is not None:
            raise _helm_chart(self.tree, chart)
        kustomization = kustomization_file(self.tree, directory)
        if kustomization is not None:
            self._emit(KustomizeDir(path=directory, kustomization=kustomization))
            return
        for child in self.tree.child_paths(directory):
            name = posixpath.basename(child)
            if name.startswith("."):
                continue
            real = self.tree.resolve(child) if child in self.tree.links else child
            entry = self.tree.entries.get(real)
            if self.tree.is_dir(real):
                self._dir(real)
            elif entry is not None and entry.is_submodule:
                log.warning("skipping submodule %s: auditor does not read submodules", real)
            elif entry is None:
                log.warning("skipping %s: its symlink target does not exist", self.tree.at(child))
            elif name.endswith(MANIFEST_SUFFIXES):
                self._file(real, explicit=False)

    def _file(self, path: str, *, explicit: bool) -> None:
        if path in self._seen:
            return
        self._seen.add(path)
        entry = self.tree.entries[path]
        if entry.is_submodule:
            log.warning("skipping submodule %s: auditor does not read submodules", path)
            return
        if explicit and posixpath.basename(path) in KUSTOMIZATION_FILES:
            directory = posixpath.dirname(path)
            self._emit(KustomizeDir(path=directory, kustomization=path))
            return
        self._emit(ManifestFile(path=path, entry=entry))

    def _emit(self, item: Input) -> None:
        self._reach.append(item.path)
        if item.path not in self._emitted:
            self._emitted.add(item.path)
            self.found.append(item)

    def _refuse_helm(self, directory: str, *, path: str) -> None:
        """A path inside a chart (its `templates/`, one template) is refused like the chart."""
        while True:
            chart = helm_chart_file(self.tree, directory)
            if chart is not None:
                raise _helm_chart(self.tree, chart, path=path)
            if not directory:
                return
            directory = posixpath.dirname(directory)


def helm_chart_file(tree: Tree, directory: str) -> str | None:
    """The folder's `Chart.yaml`, the file that makes a folder a Helm chart, if it has one."""
    candidate = f"{directory}/{HELM_CHART_FILE}" if directory else HELM_CHART_FILE
    return candidate if candidate in tree.entries or candidate in tree.links else None


def _helm_chart(tree: Tree, chart_yaml: str, *, path: str | None = None) -> InputError:
    # Templates are Go text/template, not YAML: most fail to parse ("invalid YAML" named the
    # wrong problem), and those that parse would be compared with `{{ ... }}` in them.
    folder = posixpath.dirname(chart_yaml) or "."
    inside = f"path {path!r} is in {folder!r}, which" if path and path != folder else repr(folder)
    return InputError(
        f"{inside} is a Helm chart ({tree.at(chart_yaml)}): its templates are not manifests; "
        "commit the output of `helm template` and audit that",
        key="path",
        hint="e.g. `helm template RELEASE CHART -n NAMESPACE -f values-prod.yaml > "
        "rendered/RELEASE.yaml`, committed, and --path rendered (git.paths in auditor.yaml)",
    )


def require_objects(
    tree: Tree, found: FoundInputs, produced: Mapping[str, Sequence[RawObject]]
) -> None:
    """Raises InputError naming the first path that declares no Kubernetes object.

    `produced` holds the objects each input (by path) gave. A path that declares nothing
    would compare nothing, and a run that compared nothing must never be reported clean:
    what that path was meant to hold would go unchecked.
    """
    commit = short_sha(tree.commit)
    for path, reached in found.reached.items():
        if not reached:
            raise InputError(
                f"path {path!r} holds no manifests at commit {commit}: no .yaml, .yml or .json "
                "file and no kustomization, so nothing would be compared",
                key="path",
                hint="point --path (git.paths in auditor.yaml) at the folders holding the "
                "manifests you deploy",
            )
        if not any(produced.get(p) for p in reached):
            shown = ", ".join(reached[:_SHOWN]) + (
                f" and {len(reached) - _SHOWN} more" if len(reached) > _SHOWN else ""
            )
            raise InputError(
                f"path {path!r} declares no Kubernetes object at commit {commit}: {shown} "
                "hold none (documents without apiVersion and kind, such as values files, "
                "empty documents and tool configs, are skipped), so nothing would be compared",
                key="path",
            )


def relocated(exc: InputError, file: str) -> InputError:
    """The same error, naming the file as `path@<short commit>`."""
    return InputError(exc.message, file=file, line=exc.line, key=exc.key, hint=exc.hint)


def read_manifest_files(
    tree: Tree, reader: BlobReader, files: Sequence[ManifestFile], *, max_bytes: int
) -> Iterator[list[RawObject]]:
    """The objects of each file, in order; sizes are checked before any blob is read."""
    for f in files:
        check_size(f.entry.size, tree.at(f.path), max_bytes)
    # closing: a failed read ends the batch at once, so the reader can shut down cleanly
    with contextlib.closing(reader.read_many([f.entry.sha for f in files])) as contents:
        blobs = list(zip(files, contents, strict=True))

    def parse(item: tuple[ManifestFile, bytes]) -> list[tuple[dict[str, Any], int]]:
        f, content = item
        return manifest_objects(content, path=f.path, tree=tree, max_bytes=max_bytes)

    parsed = parse_all(blobs, [len(content) for _, content in blobs], parse)
    for f, pairs in zip(files, parsed, strict=True):
        file, origin = tree.at(f.path), f"{f.path}@{tree.commit}"
        yield [RawObject(data=data, file=file, line=line, origin=origin) for data, line in pairs]


def manifest_objects(
    content: bytes, *, path: str, tree: Tree, max_bytes: int
) -> list[tuple[dict[str, Any], int]]:
    """The objects of one manifest file with their lines, as plain pairs: what the parallel
    parser's child sends back, pickled several times faster than frozen dataclasses."""
    file = tree.at(path)
    try:
        docs = load_documents(content, source=path, max_bytes=max_bytes)
    except InputError as exc:
        raise relocated(exc, file) from None
    return list(_object_lines(docs, file))


def objects_of(
    docs: Iterable[Document], *, file: str, origin: str, rendered: bool = False
) -> Iterator[RawObject]:
    """The Kubernetes objects among the documents; values files and tool configs are skipped."""
    for data, line in _object_lines(docs, file):
        yield RawObject(data=data, file=file, line=line, origin=origin, rendered=rendered)


def _object_lines(docs: Iterable[Document], file: str) -> Iterator[tuple[dict[str, Any], int]]:
    for data, line in flatten(docs, file):
        if not is_object(data):
            continue  # a values file, dvc.lock, auditor.yaml...: not ours to apply
        if _is_tool_config(data):
            continue
        yield data, line


def _is_tool_config(data: dict[str, Any]) -> bool:
    api_version = data.get("apiVersion")
    if isinstance(api_version, str) and api_version.startswith("kustomize.config.k8s.io/"):
        return True
    metadata = data.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    return isinstance(annotations, dict) and str(annotations.get(LOCAL_CONFIG)) == "true"


def crd_scopes(objects: Iterable[RawObject]) -> dict[tuple[str, str], bool]:
    """(group, kind) -> namespaced, for the CustomResourceDefinitions Git declares."""
    scopes: dict[tuple[str, str], bool] = {}
    for obj in objects:
        data = obj.data
        api_version = data.get("apiVersion")
        if data.get("kind") != "CustomResourceDefinition" or not isinstance(api_version, str):
            continue
        if api_group(api_version) != "apiextensions.k8s.io":
            continue
        spec = data.get("spec")
        if not isinstance(spec, dict) or not isinstance(spec.get("names"), dict):
            continue
        group, kind, scope = spec.get("group"), spec["names"].get("kind"), spec.get("scope")
        if isinstance(group, str) and isinstance(kind, str) and scope in ("Cluster", "Namespaced"):
            scopes[(group, kind)] = scope == "Namespaced"
    return scopes


def build_resources(
    objects: Sequence[RawObject], *, default_namespace: str, cluster: str
) -> tuple[Resource, ...]:
    """Resources with namespaces defaulted as kubectl does; an object declared twice is an error."""
    scopes = crd_scopes(objects)
    seen: dict[tuple[str, str, str, str], RawObject] = {}
    resources: list[Resource] = []
    for obj in objects:
        data, namespace = _with_namespace(obj.data, scopes, default_namespace)
        resource = to_resource(
            data,
            source=obj.file,
            line=obj.line,
            side="desired",
            cluster=cluster,
            origin=obj.origin,
            namespace=namespace,
        )
        if obj.rendered:
            # no line of a Git file declares it: reports point at the kustomization file
            resource = dataclasses.replace(resource, line=None)
        key = resource.ref.match_key
        first = seen.setdefault(key, obj)
        if first is not obj:
            raise _duplicate(resource, first, obj)
        resources.append(resource)
    return tuple(resources)


def _with_namespace(
    data: dict[str, Any], scopes: dict[tuple[str, str], bool], default_namespace: str
) -> tuple[dict[str, Any], str | None]:
    """The body and namespace as the API server would store them.

    A namespaced object without a namespace lands in the default one; a cluster-scoped
    object's namespace is dropped by the server, so it is dropped here too (else it would
    show up as drift against the live object).
    """
    api_version, kind, metadata = data.get("apiVersion"), data.get("kind"), data.get("metadata")
    if not (isinstance(api_version, str) and isinstance(kind, str) and isinstance(metadata, dict)):
        return data, None  # to_resource names what is missing
    group = api_group(api_version)
    namespaced = scopes.get((group, kind), is_namespaced(group, kind))
    current = metadata.get("namespace")
    if namespaced:
        if isinstance(current, str) and current:
            return data, current
        if current is not None and not isinstance(current, str):
            return data, None  # to_resource reports the bad type
        return {**data, "metadata": {**metadata, "namespace": default_namespace}}, default_namespace
    if "namespace" in metadata:
        trimmed = {k: v for k, v in metadata.items() if k != "namespace"}
        return {**data, "metadata": trimmed}, ""
    return data, ""


def _duplicate(resource: Resource, first: RawObject, second: RawObject) -> InputError:
    both = f"{first.file}:{first.line} and {second.file}:{second.line}"
    rendered = "(rendered)" in first.file or "(rendered)" in second.file
    return InputError(
        f"{resource.ref.display()} is declared twice: {both}",
        file=second.file,
        line=second.line,
        hint=(
            "a kustomize base is rendered on its own when its folder is walked too: "
            "pass --path for the overlay you deploy"
            if rendered
            else "keep one declaration of each object"
        ),
    )

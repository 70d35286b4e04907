"""Loading untrusted YAML and JSON: size limits, alias bombs and clear, located errors.

Everything read from Git, a snapshot or an attestation goes through here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from auditor.errors import InputError
from auditor.gc_pause import gc_paused

try:  # the C loader is an order of magnitude faster; fall back when libyaml is absent
    _Base: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Base = yaml.SafeLoader

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_VALUE = "tag:yaml.org,2002:value"  # a plain `=`: a string as a mapping key (PyYAML's rule)
# The other scalars of plain Kubernetes YAML, built by PyYAML's own constructors.
_SCALARS = frozenset(
    (
        "tag:yaml.org,2002:null",
        "tag:yaml.org,2002:bool",
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
    )
)


# The tag of each plain scalar resolved so far (by _Loader's resolvers, which never change).
_PLAIN_TAGS: dict[str, str] = {}
_REMEMBERED_LENGTH = 64
_REMEMBERED_SCALARS = 100_000


class _Unusual(Exception):
    """A node the tree builder leaves to PyYAML's constructors (explicit tags, non-scalar or
    duplicate keys, nesting deeper than the recursion limit)."""


class _Loader(_Base):  # type: ignore[misc]
    """Safe loading as Kubernetes reads YAML: an unquoted `2024-01-01` stays a string, and a
    key given twice in one mapping is an error.

    kubectl's YAML (sigs.k8s.io/yaml) has no timestamp type; PyYAML would make it a date,
    which is not JSON and would differ from the same value read back from the cluster.
    PyYAML keeps the last of two equal keys; kubectl refuses the file ("mapping key already
    defined"), and so do we: which one "wins" would otherwise be anybody's guess.
    """

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
        for first, resolvers in _Base.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        # Merge keys (`<<: *base`) need the node's own pairs kept aside before PyYAML
        # flattens them in; without `<<` in the text there can be none, and nothing is copied.
        self.may_merge = "<<" in stream or "merge" in stream

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        # The C parser asks this of every scalar, and manifests repeat the same plain scalars
        # (`name`, `metadata`, `TCP`) in every object: their tag is remembered, not matched
        # against the resolvers' regexps again. Short ones only, and so many at most, as the
        # text is untrusted.
        if kind is yaml.ScalarNode and implicit[0] and len(value) <= _REMEMBERED_LENGTH:
            tag = _PLAIN_TAGS.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(_PLAIN_TAGS) < _REMEMBERED_SCALARS:
                    _PLAIN_TAGS[value] = tag
            return tag
        return super().resolve(kind, value, implicit)  # type: ignore[no-any-return]

    def construct_interned_str(self, node: yaml.ScalarNode) -> str:
        # Manifests repeat the same keys and values (`name`, `image`, `TCP`) in every object:
        # one string each halves what parsed manifests hold, and what the parallel parser's
        # child pickles back (pickle writes an object seen before as a reference).
        return sys.intern(self.construct_scalar(node))

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        own = (
            [pair for pair in node.value if pair[0].tag != _MERGE]
            if self.may_merge and isinstance(node, yaml.MappingNode)
            else None
        )
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        # The common case costs one comparison: fewer keys than pairs means a key came twice,
        # or (with merge keys) that the node overrides a merged key, which YAML allows.
        if len(mapping) != len(node.value):
            self._refuse_duplicates(own if own is not None else node.value, deep)
        return mapping

    def construct_plain_document(self, node: yaml.Node) -> Any:
        """The document's data, as `construct_document` builds it, when the stream has no
        anchors or merge keys: then the node tree is a tree, and building it directly is about
        twice as fast as PyYAML's constructors (which keep every object built, by node, for
        aliases, and defer nested collections through generators for recursive ones). Any
        other node goes to those constructors, which build the whole document again."""
        try:
            return self._build(node)
        except (_Unusual, RecursionError):
            return self.construct_document(node)

    def _build(self, node: yaml.Node) -> Any:
        # hot path (every node of every manifest): exact classes and tags, no ABCs
        kind, tag = node.__class__, node.tag
        if kind is yaml.ScalarNode:
            if tag == _STR:
                return sys.intern(node.value)
            if tag in _SCALARS:
                return self.yaml_constructors[tag](self, node)
        elif kind is yaml.MappingNode and tag == _MAP:
            mapping: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key_tag = key_node.tag
                if key_node.__class__ is not yaml.ScalarNode:
                    raise _Unusual
                if key_tag in (_STR, _VALUE):
                    key = sys.intern(key_node.value)
                elif key_tag in _SCALARS:
                    key = self.yaml_constructors[key_tag](self, key_node)
                else:
                    raise _Unusual
                mapping[key] = self._build(value_node)
            if len(mapping) != len(node.value):
                raise _Unusual  # a key given twice: PyYAML's constructors name it, and where
            return mapping
        elif kind is yaml.SequenceNode and tag == _SEQ:
            return [self._build(item) for item in node.value]
        raise _Unusual

    def _refuse_duplicates(self, pairs: list[tuple[yaml.Node, yaml.Node]], deep: bool) -> None:
        first: dict[Any, yaml.Node] = {}
        for key_node, _ in pairs:
            key = self.construct_object(key_node, deep=deep)
            if key in first:
                line = first[key].start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    problem=f"duplicate key {key!r} (first at line {line})",
                    problem_mark=key_node.start_mark,
                )
            first[key] = key_node


_Loader.add_constructor("tag:yaml.org,2002:str", _Loader.construct_interned_str)

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
# A document may use anchors and aliases, but once expanded it may not be more than this many
# nodes: a "billion laughs" document is tiny on disk and explodes when walked.
MAX_EXPANDED_NODES = 1_000_000
MAX_DEPTH = 200


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document of a file: its data and where it starts."""

    data: Any
    line: int  # 1-based line where the document starts
    index: int  # 0-based position in its file
    # The composed node tree (line numbers and scalar styles), kept only when asked for.
    node: yaml.Node | None = field(default=None, compare=False, repr=False)


def check_size(size: int, source: str, max_bytes: int) -> None:
    if size > max_bytes:
        raise InputError(
            f"{size} bytes is over the {max_bytes}-byte limit for one file",
            file=source,
            hint="raise limits.max_manifest_bytes in auditor.yaml if this file is legitimate",
        )


def _expanded_size(node: yaml.Node, source: str) -> None:
    """Counts the nodes of a document as if every alias were expanded, without expanding it."""
    sizes: dict[int, int] = {}

    def size(n: yaml.Node, depth: int) -> int:
        key = id(n)
        if key in sizes:
            return sizes[key]
        if depth > MAX_DEPTH:
            raise InputError(
                f"document nests deeper than {MAX_DEPTH} levels",
                file=source,
                line=n.start_mark.line + 1,
            )
        sizes[key] = 1  # guards against recursive aliases while this node is open
        total = 1
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                total += size(k, depth + 1) + size(v, depth + 1)
        elif isinstance(n, yaml.SequenceNode):
            for item in n.value:
                total += size(item, depth + 1)
        if total > MAX_EXPANDED_NODES:
            raise InputError(
                f"YAML aliases expand to more than {MAX_EXPANDED_NODES} nodes (an alias bomb?)",
                file=source,
                line=n.start_mark.line + 1,
            )
        sizes[key] = total
        return total

    size(node, 0)


class _DuplicateJSONKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def strict_json(data: str | bytes) -> Any:
    """`json.loads` that refuses a key given twice in one object, as a JSONDecodeError (so
    every caller's "not JSON" handling applies). Signed payloads above all: two readers that
    keep different copies of a key would see different statements under one signature."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    try:
        return json.loads(text, object_pairs_hook=_unique_object)
    except _DuplicateJSONKey as exc:
        raise json.JSONDecodeError(f"duplicate key {exc.key!r}", text, 0) from None


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object hook: an object, or _DuplicateJSONKey when a key comes twice.

    Python's json keeps the last of two equal keys; Kubernetes' strict decoding refuses them.
    """
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateJSONKey(key)
            seen.add(key)
    return obj


def _duplicate_json_key(text: str, source: str, key: str) -> InputError:
    """The error for a JSON key given twice, with its line when the YAML parser (JSON is YAML)
    can find it: json's hook sees the pairs, not where they are. Runs only on the error path."""
    try:
        for _ in iter_yaml_documents(text, source):
            pass
    except InputError as exc:
        if "duplicate key" in exc.message:
            return InputError(
                exc.message.replace("invalid YAML", "invalid JSON"), file=source, line=exc.line
            )
    return InputError(f"invalid JSON: duplicate key {key!r}", file=source)


def _may_alias(text: str) -> bool:
    return "*" in text or "<<" in text


def iter_yaml_documents(text: str, source: str, *, keep_nodes: bool = False) -> Iterator[Document]:
    """Yields each document of a multi-document YAML stream with its start line (and, with
    `keep_nodes`, its node tree, from the same parse)."""
    check_aliases = _may_alias(text)
    loader = _Loader(text)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            if check_aliases:
                _expanded_size(node, source)
                data = loader.construct_document(node)
            elif keep_nodes:  # PyYAML's constructors retag `=` keys in the tree kept
                data = loader.construct_document(node)
            else:
                data = loader.construct_plain_document(node)
            kept = node if keep_nodes else None
            yield Document(data=data, line=node.start_mark.line + 1, index=index, node=kept)
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(f"invalid YAML: {problem}", file=source, line=line) from None
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", file=source) from None
    except RecursionError:
        raise InputError(
            f"document nests too deeply (over {MAX_DEPTH} levels)", file=source
        ) from None
    finally:
        loader.dispose()


def decode_text(content: bytes, source: str) -> str:
    """A file's bytes as text (UTF-8, a byte-order mark dropped), InputError naming the file
    when they are not. A caller holding a large file decodes it first and lets the bytes go,
    so that they are not kept alongside the text and the objects parsed from it."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", file=source) from None


def _looks_json(text: str) -> bool:
    """`{` first and `}` last, whitespace aside, without copying the text (a snapshot can be
    hundreds of megabytes)."""
    start, end = 0, len(text) - 1
    while start <= end and text[start].isspace():
        start += 1
    while end > start and text[end].isspace():
        end -= 1
    return start < end and text[start] == "{" and text[end] == "}"


def load_documents(
    content: bytes | str,
    source: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    keep_nodes: bool = False,
) -> list[Document]:
    """Every document of a YAML or JSON file, size-checked first.

    JSON is read with the json module (faster, exact line numbers); anything else as YAML.
    With `keep_nodes` every file is composed as YAML (JSON is YAML), so each document keeps
    its node tree for locating values.
    """
    size = len(content)
    check_size(size, source, max_bytes)
    text = decode_text(content, source) if isinstance(content, bytes) else content
    if not keep_nodes and (source.endswith(".json") or _looks_json(text)):
        try:
            with gc_paused():
                data = json.loads(text, object_pairs_hook=_unique_object)
            return [Document(data=data, line=1, index=0)]
        except _DuplicateJSONKey as exc:
            raise _duplicate_json_key(text, source, exc.key) from None
        except RecursionError:
            raise InputError("JSON nests too deeply", file=source) from None
        except json.JSONDecodeError as exc:
            if source.endswith(".json"):
                raise InputError(f"invalid JSON: {exc.msg}", file=source, line=exc.lineno) from None
            # `{...}` that is not JSON may still be flow-style YAML
    with gc_paused():
        return list(iter_yaml_documents(text, source, keep_nodes=keep_nodes))


def load_located(
    content: bytes, source: str, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[Any, yaml.Node | None]:
    """One YAML document and its node tree (for line numbers), from one parse.

    The same guards as `load_documents`: size, UTF-8, alias bombs, depth; InputError with the
    line for every problem. An empty document is (None, None).
    """
    docs = load_documents(content, source, max_bytes=max_bytes, keep_nodes=True)
    if len(docs) > 1:
        raise InputError(
            "expected one YAML document, found several", file=source, line=docs[1].line
        )
    if not docs:
        return None, None
    return docs[0].data, docs[0].node


def load_one(content: bytes | str, source: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """A file that must hold exactly one document (a config, a policy parameter file)."""
    docs = [d for d in load_documents(content, source, max_bytes=max_bytes) if d.data is not None]
    if not docs:
        raise InputError("file is empty", file=source)
    if len(docs) > 1:
        raise InputError(
            "expected one YAML document, found several", file=source, line=docs[1].line
        )
    return docs[0].data

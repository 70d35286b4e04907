"""Which top-level documents under `data`, and which keys of `input`, Rego modules may read,
from their syntax trees.

A run loads Gatekeeper's `data.inventory` (every object in scope: 10,000 objects are 4 MB of
JSON, seconds to build and load into the engine and a cost on every evaluation) only when
something can read it. The answer errs on the side of reading: `data` used whole
(`walk(data, ...)`, `import data`) or indexed by a value computed at run time (`data[k]`) may
read any document, so it counts as reading every one.

The same reading of `input` lets the engine hand a policy only the input's keys some module
may read: an audit input carries the resource, its desired and live versions and more (the
live object twice, as `resource` and `live`), and the shipped library reads a third of that
text. What no module can read need not be encoded, scanned and parsed for every evaluation.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from typing import Any

import regorus

from auditor.policy.engine import RegoModule

# A key that stands for "any document": `data` whole, or indexed dynamically.
ANY = None


def _first_key(kind: str, ref: dict[str, Any]) -> str | None:
    """The key a `data.<key>` / `data["key"]` reference reads, ANY when computed."""
    if kind == "RefDot":
        field = ref.get("field")
        if isinstance(field, list) and len(field) == 2 and isinstance(field[1], str):
            return field[1]
        return ANY
    index = ref.get("index")
    if isinstance(index, dict) and set(index) == {"String"}:
        value = index["String"].get("value")
        return value if isinstance(value, str) else ANY
    return ANY


def _is_root(node: Any, root: str) -> bool:
    return isinstance(node, dict) and node.get("Var", {}).get("value") == root


def _is_data(node: Any) -> bool:
    return _is_root(node, "data")


def _object_get_key(call: Any, root: str) -> tuple[bool, str | None]:
    """For `object.get(<root>, "k" | ["k", ...], default)`: (True, "k"), or (True, ANY) when
    the key is computed; (False, None) for any other call."""
    if not isinstance(call, dict):
        return False, None
    fcn, params = call.get("fcn"), call.get("params")
    if not (
        isinstance(fcn, dict)
        and _is_root(fcn.get("RefDot", {}).get("refr"), "object")
        and fcn["RefDot"].get("field", [None, None])[1] == "get"
        and isinstance(params, list)
        and len(params) == 3
        and _is_root(params[0], root)
    ):
        return False, None
    path = params[1]
    if isinstance(path, dict) and "Array" in path:
        items = path["Array"].get("items") or []
        path = items[0] if items else None
    if isinstance(path, dict) and set(path) == {"String"}:
        value = path["String"].get("value")
        return True, value if isinstance(value, str) else ANY
    return True, ANY


def root_keys(ast: Any, root: str) -> set[str | None]:
    """The first keys under `root` (`data` or `input`) that a syntax tree (regorus's AST JSON)
    reads: `root.k`, `root["k"]`, `object.get(root, "k" or ["k", ...], default)`; ANY among
    them when it reads `root` whole (passed to a function, `walk`, `print`, imported whole) or
    by a computed key. Iterative: any node with a `RefDot`, `RefBrack`, `Call` or `Var` entry
    counts, wherever it is, so nothing is missed."""
    keys: set[str | None] = set()
    stack: list[Any] = [ast]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        for kind, body in node.items():
            if (
                kind in ("RefDot", "RefBrack")
                and isinstance(body, dict)
                and _is_root(body.get("refr"), root)
            ):
                keys.add(_first_key(kind, body))
                stack.extend(value for name, value in body.items() if name != "refr")
                continue
            is_get, key = _object_get_key(body, root) if kind == "Call" else (False, None)
            if is_get:
                keys.add(key)
                stack.extend(body["params"][1:])
            elif kind == "Var" and isinstance(body, dict) and body.get("value") == root:
                keys.add(ANY)
            else:
                stack.append(body)
    return keys


def data_keys(ast: Any) -> set[str | None]:
    """`root_keys` under `data`."""
    return root_keys(ast, "data")


def input_keys(ast: Any) -> frozenset[str] | None:
    """The top-level keys of the input document that a syntax tree may read; None when it may
    read any (the input whole, or by a computed key)."""
    keys = root_keys(ast, "input")
    if ANY in keys:
        return None
    return frozenset(k for k in keys if k is not None)


# Syntax trees are large (a tenth of a megabyte for a big module) and a long-lived process
# (the admission webhook) reloads edited policies: the last few are kept, enough for a
# library of policies loaded once; what is read from them is kept apart, small.
_TREES_KEPT = 128


@functools.lru_cache(maxsize=_TREES_KEPT)
def module_ast(source: str, text: str, v0: bool) -> Any:
    """The syntax tree of one module (regorus's AST JSON, parsed), in the given syntax; the
    RuntimeError of regorus when it does not parse. Parsed once for the loader, which reads
    the package and rules from it, `may_read` and the engine, which read which documents and
    input keys the module reads (three parses of the shipped library were a tenth of a
    second of every audit). Callers only read it."""
    engine = regorus.Engine()
    engine.set_rego_v0(v0)
    engine.add_policy(source, text)
    return json.loads(engine.get_ast_as_json())[0]["ast"]


def module_data_keys(module: RegoModule) -> frozenset[str | None]:
    """`data_keys` of one module, parsed in its own syntax (v0 or v1)."""
    return _module_data_keys(module.source, module.text, module.v0)


@functools.lru_cache(maxsize=1024)
def _module_data_keys(source: str, text: str, v0: bool) -> frozenset[str | None]:
    return frozenset(data_keys(module_ast(source, text, v0)))


@functools.lru_cache(maxsize=1024)
def _module_input_keys(source: str, text: str, v0: bool) -> frozenset[str] | None:
    return input_keys(module_ast(source, text, v0))


def modules_input_keys(modules: Sequence[RegoModule]) -> frozenset[str] | None:
    """`input_keys` of these modules together."""
    keys: set[str] = set()
    for module in modules:
        read = _module_input_keys(module.source, module.text, module.v0)
        if read is None:
            return None
        keys |= read
    return frozenset(keys)


def may_read(modules: Iterable[RegoModule], key: str) -> bool:
    """Whether any of `modules` may read `data.<key>`."""
    for module in modules:
        keys = module_data_keys(module)
        if ANY in keys or key in keys:
            return True
    return False


__all__ = [
    "ANY",
    "data_keys",
    "input_keys",
    "may_read",
    "module_ast",
    "module_data_keys",
    "modules_input_keys",
    "root_keys",
]

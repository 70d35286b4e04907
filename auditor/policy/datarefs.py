"""Which top-level documents under `data` Rego modules may read, from their syntax trees.

A run loads Gatekeeper's `data.inventory` (every object in scope: 10,000 objects are 4 MB of
JSON, seconds to build and load into the engine and a cost on every evaluation) only when
something can read it. The answer errs on the side of reading: `data` used whole
(`walk(data, ...)`, `import data`) or indexed by a value computed at run time (`data[k]`) may
read any document, so it counts as reading every one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
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


def _is_data(node: Any) -> bool:
    return isinstance(node, dict) and node.get("Var", {}).get("value") == "data"


def data_keys(ast: Any) -> set[str | None]:
    """The first keys under `data` that a module's syntax tree (regorus's AST JSON) reads;
    ANY among them when it reads `data` whole or by a computed key. Iterative: any node with
    a `RefDot`, `RefBrack` or `Var` entry counts, wherever it is, so nothing is missed."""
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
                and _is_data(body.get("refr"))
            ):
                keys.add(_first_key(kind, body))
                stack.extend(value for name, value in body.items() if name != "refr")
            elif kind == "Var" and isinstance(body, dict) and body.get("value") == "data":
                keys.add(ANY)
            else:
                stack.append(body)
    return keys


def module_data_keys(module: RegoModule) -> set[str | None]:
    """`data_keys` of one module, parsed in its own syntax (v0 or v1)."""
    engine = regorus.Engine()
    engine.set_rego_v0(module.v0)
    engine.add_policy(module.source, module.text)
    return data_keys(json.loads(engine.get_ast_as_json()))


def may_read(modules: Iterable[RegoModule], key: str) -> bool:
    """Whether any of `modules` may read `data.<key>`."""
    for module in modules:
        keys = module_data_keys(module)
        if ANY in keys or key in keys:
            return True
    return False


__all__ = ["ANY", "data_keys", "may_read", "module_data_keys"]

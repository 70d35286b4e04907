"""The shape of the code, as rules that fail when broken (docs/architecture.md).

- A stage (`desired`, `live`, `drift`, `provenance`, `policy`, `store`, `reports`,
  `admission`, `fleet`) never imports another stage: what crosses a boundary is a value in
  `auditor/model.py`, and only `pipeline.py` (and the CLI) put stages together.
- The shared modules below the stages never import a stage.
- No two modules import each other, directly or around a loop, at module level or inside a
  function, or through `importlib.import_module("auditor...")`.
- No function is longer than 80 lines: a longer one is doing several jobs (schema
  migrations, declarative and frozen once shipped, excepted).

Imports are read from the source with `ast`, never by importing it, so a lazy import inside a
function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "auditor"
STAGES = (
    "desired",
    "live",
    "drift",
    "provenance",
    "policy",
    "store",
    "reports",
    "admission",
    "fleet",
)
# What may put stages together: the orchestration and the command line.
# `doctor` checks each stage's part of a setup (Git, clusters, store, report) as the audit uses it.
COMPOSERS = ("pipeline", "doctor", "cli", "__main__")
MAX_FUNCTION_LINES = 80
# Schema migrations are declarative tables, and frozen once shipped: a released migration is
# never edited (stores in the field ran it as it was), so it is not split either.
LENGTH_EXEMPT = ("auditor.store.migrations.",)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module, dotted
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(name: str) -> str:
    """The module an import names: itself, or the package it is an attribute of."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def imports_of(module: str) -> Iterator[Import]:
    path = MODULES[module]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, path, node)
            # `from auditor.policy import engine` imports the submodule when there is one
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        else:
            continue
        for name in names:
            target = _resolve(name) if name.startswith("auditor") else ""
            if target and target != module:
                yield Import(module, target, node.lineno)


ALL_IMPORTS = [i for m in MODULES for i in imports_of(m)]


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def test_the_rules_see_every_stage_and_the_model() -> None:
    # guards the test itself: a rule over nothing would always pass
    assert "auditor.model" in MODULES
    assert {stage_of(m) for m in MODULES} >= {"desired", "live", "drift", "provenance", "policy"}
    assert any(i.target == "auditor.model" for i in ALL_IMPORTS)


def test_no_stage_imports_another_stage() -> None:
    crossings = [
        f"{MODULES[i.module].relative_to(ROOT.parent)}:{i.line}: {i.module} imports {i.target}"
        for i in ALL_IMPORTS
        if stage_of(i.module) and stage_of(i.target) and stage_of(i.module) != stage_of(i.target)
    ]
    assert not crossings, "stages talk only through auditor/model.py:\n" + "\n".join(crossings)


def test_shared_modules_never_import_a_stage() -> None:
    shared = [
        i
        for i in ALL_IMPORTS
        if stage_of(i.module) is None
        and i.module.split(".")[1] not in COMPOSERS
        and i.module != "auditor"
        and stage_of(i.target)
    ]
    found = [f"{i.module}:{i.line} imports {i.target}" for i in shared]
    assert not found, "shared modules sit below every stage:\n" + "\n".join(found)


def _cycles() -> list[list[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for i in ALL_IMPORTS:
        # a package's __init__ importing its own submodules is how a package exports them
        if not i.target.startswith(i.module + "."):
            graph[i.module].add(i.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    cycles = _cycles()
    assert not cycles, "modules that import each other:\n" + "\n".join(map(" <-> ".join, cycles))


def _functions() -> Iterator[tuple[str, str, int]]:
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                yield module, node.name, node.end_lineno - node.lineno + 1


def test_no_function_is_longer_than_80_lines() -> None:
    long = [
        f"{m}.{name}: {n} lines"
        for m, name, n in _functions()
        if n > MAX_FUNCTION_LINES and not m.startswith(LENGTH_EXEMPT)
    ]
    assert not long, "split these by job:\n" + "\n".join(long)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import auditor.policy.stage\n", "auditor.policy.stage"),
        ("from auditor.drift import compute_drift\n", "auditor.drift"),
        ("import importlib\nimportlib.import_module('auditor.store')\n", "auditor.store"),
    ],
)
def test_imports_are_found_in_every_form(
    source: str, expected: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    monkeypatch.setitem(MODULES, "auditor.probe", probe)
    assert expected in {i.target for i in imports_of("auditor.probe")}

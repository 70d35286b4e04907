"""The same Rego evaluated by regorus's compiled VM (RVM) and by its interpreter, side by side.

regorus compiles modules to bytecode (`Program.compile_from_modules`) that `Rvm` runs several
times faster than the tree-walking `Engine`; the VM is young and parts of Rego it gets wrong
or cannot compile are pinned in `test_rvm_divergences.py` (docs/rvm.md lists them). Used by
`test_rvm_equivalence.py` (the shipped library through both, on the equivalence corpus and on
the inputs of every `*_test.rego` case) and by `bench/policy/equivalence.py --rvm` (the same
on the benchmark's inputs).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import regorus

from auditor.policy.loader import load_policy_files
from tests.policy.library_equivalence import LIBRARY, SHIPPED, library_rules

Modules = Sequence[tuple[str, str]]  # (module id, Rego text)

_BATCH = "rvm_compare_interpreter"


def program(modules: Modules, data: Mapping[str, Any], entry_points: Sequence[str]) -> Any:
    """`modules` compiled for the RVM with `entry_points` (rule paths) callable."""
    return regorus.Program.compile_from_modules(json.dumps(data), list(modules), list(entry_points))


def shipped() -> tuple[list[tuple[str, str]], dict[str, Any], list[str]]:
    """The shipped policies (tests excluded), their data, and the entry points compared: every
    rule a policy reports through (deny, warn, ...) and every rule of the library."""
    loaded = load_policy_files([str(SHIPPED)], hooks=())
    modules = [(m.source, m.text) for m in loaded.modules]
    rules = [f"data.{p.package}.{r}" for p in loaded.policies for r in p.rules]
    rules += [f"{LIBRARY}.{name}" for name in library_rules()]
    return modules, dict(loaded.data), rules


class SideBySide:
    """The RVM and the interpreter over the same modules, data and rule entry points."""

    def __init__(self, modules: Modules, data: Mapping[str, Any], entry_points: Sequence[str]):
        self.entry_points = tuple(entry_points)
        self._vm = regorus.Rvm()
        self._vm.load_program(program(modules, data, self.entry_points))
        self._engine = regorus.Engine()
        for key, text in modules:
            self._engine.add_policy(key, text)
        # The interpreter answers all entry points in one evaluation of a generated rule (it
        # keeps rule values within an evaluation: 4-5x faster than one evaluation each), with
        # "<undefined>" for an undefined one as eval_rule gives; one by one when it fails.
        lines = [f"package {_BATCH}", "", "import rego.v1", ""]
        for i, rule in enumerate(self.entry_points):
            lines.append(f'r{i} := x if {{ x = {rule} }} else := "<undefined>"')
        lines.extend(["all := [", *(f"\tr{i}," for i in range(len(self.entry_points))), "]"])
        self._engine.add_policy(f"<{_BATCH}>", "\n".join(lines) + "\n")
        self.set_data(data)

    def set_data(self, data: Mapping[str, Any]) -> None:
        text = json.dumps(data)
        self._vm.set_data_json(text)
        self._engine.clear_data()
        self._engine.add_data_json(text)

    def values(self, doc: Any) -> list[tuple[str, Any, Any]]:
        """(entry point, RVM value, interpreter value) of every entry point for input `doc`:
        JSON values, "<undefined>" for undefined, ("error",) where evaluation raised."""
        text = json.dumps(doc)
        self._vm.set_input_json(text)
        self._engine.set_input_json(text)
        interpreted = _run(self._engine.eval_rule_as_json, f"data.{_BATCH}.all")
        if not isinstance(interpreted, list):  # an error: which rule raised
            interpreted = [_run(self._engine.eval_rule_as_json, r) for r in self.entry_points]
        return [
            (rule, _run(self._vm.execute_entry_point, rule), value)
            for rule, value in zip(self.entry_points, interpreted, strict=True)
        ]

    def differences(self, doc: Any, label: str = "") -> list[str]:
        """One line per entry point whose value differs between the two for `doc`."""
        return [
            f"{label}{rule}: rvm {json.dumps(vm)[:300]}, interpreter {json.dumps(interp)[:300]}"
            for rule, vm, interp in self.values(doc)
            if vm != interp
        ]


def _run(evaluate: Any, rule: str) -> Any:
    try:
        return json.loads(evaluate(rule))
    except RuntimeError:
        return ("error",)


# -- the inputs of the `*_test.rego` cases


def case_inputs(folder: Path) -> list[tuple[Any, dict[str, Any]]]:
    """(input, data overrides by dotted path) of every `... with input as X [with data.p as Y]`
    a test case of `folder` evaluates: each such line gets a print of its `with` values before
    it, and the interpreter runs every test and gathers the prints. The RVM compiles no
    `with`, so this is how the cases' inputs reach it."""
    engine = regorus.Engine()
    engine.set_gather_prints(True)
    tests: list[str] = []
    for path in sorted(folder.rglob("*.rego")):
        text = path.read_text()
        if path.name.endswith("_test.rego"):
            text = _print_withs(text)
            package = re.search(r"^package (\S+)", text, re.MULTILINE)
            assert package is not None, path
            names = re.findall(r"^(test_[a-z0-9_]+)", text, re.MULTILINE)
            tests += [f"data.{package.group(1)}.{name}" for name in dict.fromkeys(names)]
        engine.add_policy(str(path), text)
    engine.add_data_json((folder / "data" / "defaults.json").read_text())
    engine.set_input_json("{}")
    cases: list[tuple[Any, dict[str, Any]]] = []
    for test in tests:
        engine.eval_rule_as_json(test)
        for line in engine.take_prints():
            _, found, value = line.partition(_MARK)
            if found:
                withs = dict(json.loads(value))
                cases.append((withs.pop("input"), withs))
    return cases


_MARK = "RVMCASE "


def _print_withs(text: str) -> str:
    out = []
    for line in text.split("\n"):
        clauses = [c.strip() for c in _split_outside_brackets(line, " with ")[1:]]
        if any(c.startswith("input as ") for c in clauses):
            pairs = []
            for clause in clauses:
                target, _, value = clause.partition(" as ")
                pairs.append(f"[{json.dumps(target)}, {value}]")
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f'{indent}print("{_MARK.strip()}", json.marshal([{", ".join(pairs)}]))')
        out.append(line)
    return "\n".join(out)


def _split_outside_brackets(text: str, separator: str) -> list[str]:
    parts, depth, start, quote, i = [], 0, 0, "", 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in '"`':
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(separator, i):
            parts.append(text[start:i])
            start = i = i + len(separator)
            continue
        i += 1
    parts.append(text[start:])
    return parts


def with_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with each `data.a.b` override of a test case put in place."""
    out = copy.deepcopy(dict(data))
    for target, value in overrides.items():
        keys = target.split(".")
        assert keys[0] == "data", target
        node = out
        for key in keys[1:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return out


__all__ = ["SideBySide", "case_inputs", "program", "shipped", "with_overrides"]

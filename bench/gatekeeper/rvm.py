"""gatekeeper-library's templates through regorus's compiled VM (RVM) and its interpreter.

    .venv/bin/python bench/gatekeeper/rvm.py LIBRARY_DIR [--filter TEXT] [-v]

LIBRARY_DIR as for bench/gatekeeper/run.py, whose suite walk this reuses: each case's template
and constraint load through auditor's Gatekeeper loader and each reviewed object becomes the
input auditor builds (`gatekeeper_input`). The VM parses only Rego v1 (docs/rvm.md) and the
library's templates are v0, so each module is also rewritten to v1 mechanically (`if` before
each body, `contains` for a partial set, `:= true` for a bodiless function head): enough for
the library's style, not a general converter. Then, per case, `violation` is evaluated three
ways: the interpreter on the template as written, the interpreter on the rewrite (which must
agree, or the rewrite is wrong) and the VM on the rewrite. Prints the cases where they differ
and one JSON object: templates, how many compile as written / after the rewrite, cases, and
how many agree.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import regorus

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import Case, case_review, iter_cases, read_yaml_all

from auditor.policy import gatekeeper
from auditor.policy.engine import RegoModule

_SET_HEAD = re.compile(r"^([a-zA-Z_][a-zA-Z0-9_]*)\[(.+)\]$")
_FUNCTION_HEAD = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.]*\(.*\)$")


def to_v1(text: str) -> str:
    """A v0 module of gatekeeper-library's style in v1 syntax (see the module docstring)."""
    out = []
    for line in text.split("\n"):
        s = line.rstrip()
        if s.startswith("import future.keywords"):
            continue
        if s.startswith("package "):
            s += "\nimport rego.v1"
        elif s.startswith("} else") and s.endswith("{"):
            s = s[:-1].rstrip() + " if {"
        elif s and not s[0].isspace() and not s.startswith(("#", "import", "default", "}")):
            i = _body_start(s)
            if i > 0:
                s = _head(s[:i]) + " if " + s[i:]
            elif _FUNCTION_HEAD.match(s) and " = " not in s and " := " not in s:
                s += " := true"
            elif _SET_HEAD.match(s):
                s = _head(s)
        out.append(s)
    return "\n".join(out)


def _head(head: str) -> str:
    m = _SET_HEAD.match(head.rstrip())
    return f"{m.group(1)} contains {m.group(2)}" if m else head.rstrip()


def _body_start(s: str) -> int:
    """Where the body of a rule on line `s` opens: its last `{` if the line ends with one, or
    the `{` that the line's last `}` closes (a one-line body); -1 for none."""
    if s.endswith("{"):
        return len(s) - 1
    if not s.endswith("}"):
        return -1
    depth = 0
    for i in range(len(s) - 1, -1, -1):
        depth += {"}": 1, "{": -1}.get(s[i], 0)
        if depth == 0:
            before = s[:i].rstrip()
            # an object value (`= {...}`) is not a body
            return i if before and before[-1] not in "=:,([" else -1
    return -1


def _value(evaluate: Any, rule: str) -> Any:
    try:
        value = json.loads(evaluate(rule))
    except RuntimeError:
        return ("error",)
    return (
        sorted(json.dumps(v, sort_keys=True) for v in value) if isinstance(value, list) else value
    )


def _interpreter(modules: Sequence[tuple[str, str, bool]], data: str) -> Any:
    engine = regorus.Engine()
    for key, text, v0 in modules:
        engine.set_rego_v0(v0)
        engine.add_policy(key, text)
    engine.set_rego_v0(False)
    engine.add_data_json(data)
    return engine


def compare_case(case: Case, stats: dict[str, Any]) -> list[str]:
    """The three evaluations of each policy of `case` on its object; a line per difference."""
    modules, policies = gatekeeper.load_gatekeeper(
        [case.template, case.constraint], enforcement_point=gatekeeper.GATOR
    )
    keyed = [(f"{n}:{m.source}", m) for n, m in enumerate(modules)]
    inventory_objects = [o for p in case.inventory for o in read_yaml_all(p)]
    data = json.dumps({"inventory": gatekeeper.build_inventory(inventory_objects)})
    written = _interpreter([(k, m.text, m.v0) for k, m in keyed], data)
    rewritten_modules = [(k, to_v1(m.text) if m.v0 else m.text) for k, m in keyed]
    rewritten = _interpreter([(k, t, False) for k, t in rewritten_modules], data)
    entry_points = [f"data.{p.package}.violation" for p in policies]
    template = str(case.template)
    try:
        program = regorus.Program.compile_from_modules(data, rewritten_modules, entry_points)
    except RuntimeError as exc:
        stats["not_compiled"].setdefault(template, " ".join(str(exc).split())[:160])
        return []
    stats["compiled"].add(template)
    vm = regorus.Rvm()
    vm.load_program(program)
    vm.set_data_json(data)
    namespaces = gatekeeper.namespaces_from(inventory_objects)
    out = []
    subject, old, extra = case_review(case)
    if subject is None:
        return []
    for policy in policies:
        if not gatekeeper.matches(policy, subject, namespaces, old_object=old):
            continue
        doc = json.dumps(gatekeeper.gatekeeper_input(policy, subject, old_object=old, **extra))
        written.set_input_json(doc)
        rewritten.set_input_json(doc)
        vm.set_input_json(doc)
        rule = f"data.{policy.package}.violation"
        a, b, c = (
            _value(e, rule)
            for e in (
                written.eval_rule_as_json,
                rewritten.eval_rule_as_json,
                vm.execute_entry_point,
            )
        )
        stats["evaluations"] += 1
        stats["rewrite_agrees"] += a == b
        stats["rvm_agrees"] += b == c
        if a != b:
            out.append(f"{case.label}: rewrite differs: {a} / {b}")
        if b != c:
            out.append(
                f"{case.label}: RVM {json.dumps(c)[:300]}, interpreter {json.dumps(b)[:300]}"
            )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("library", type=Path)
    parser.add_argument("--filter", default="")
    args = parser.parse_args(argv)
    stats: dict[str, Any] = {
        "compiled": set(),
        "not_compiled": {},
        "evaluations": 0,
        "rewrite_agrees": 0,
        "rvm_agrees": 0,
    }
    templates: set[str] = set()
    as_written = 0
    for case in iter_cases(args.library, args.filter):
        try:
            if str(case.template) not in templates:
                templates.add(str(case.template))
                modules, _ = gatekeeper.load_gatekeeper(
                    [case.template], enforcement_point=gatekeeper.GATOR
                )
                as_written += _compiles_as_written(modules)
            for line in compare_case(case, stats):
                print(line)
        except Exception as exc:  # a case the loader refuses: say so, go on
            print(f"{case.label}: not evaluated: {' '.join(str(exc).split())[:200]}")
    summary = {
        "templates": len(templates),
        "compile_as_written": as_written,
        "compile_after_v1_rewrite": len(stats["compiled"]),
        "not_compiled": stats["not_compiled"],
        "evaluations": stats["evaluations"],
        "rewrite_agrees_with_template": stats["rewrite_agrees"],
        "rvm_agrees_with_interpreter": stats["rvm_agrees"],
    }
    print(json.dumps(summary, indent=2))
    return 0


def _compiles_as_written(modules: Sequence[RegoModule]) -> int:
    try:
        regorus.Program.compile_from_modules(
            "{}", [(f"{n}:{m.source}", m.text) for n, m in enumerate(modules)], []
        )
    except RuntimeError:
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())

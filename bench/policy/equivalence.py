"""The shipped serving library against its reference form on the benchmark's audit inputs;
with --rvm, the shipped library through regorus's compiled VM against its interpreter.

    .venv/bin/python bench/policy/equivalence.py [--size 10000] [--sample N] [--rvm]

Builds (or reuses) the inputs `bench/run` audits (`bench/.work/run/r<size>`), then evaluates
every shipped policy on every input twice, with policies/lib/serving.rego and with
tests/policy/reference/ in its place, and compares every result, message and detail and every
rule of the library (`tests/policy/library_equivalence.py`; the suite runs the same comparison
on a generated corpus). Prints one JSON object; exits 1 on any difference.

--rvm: compiles every shipped module for the VM with every policy's rules and every library
rule as entry points and compares every entry point's value on every input
(`tests/policy/rvm_compare.py`; the suite: `tests/policy/test_rvm_equivalence.py`, docs/rvm.md).
Then times, for each input, the rules of the policies that apply to its kind: the interpreter
as the policy stage asks it (one generated rule whose value is the array of them) and the VM
(one entry point per rule), with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=0, help="every Nth input only")
    parser.add_argument("--rvm", action="store_true", help="the VM against the interpreter")
    args = parser.parse_args()

    import run as bench_run  # bench/run.py: builds the inputs an audit evaluates

    from tests.policy.library_equivalence import mismatches, reference_tree

    started = time.perf_counter()
    _, inputs, _ = bench_run.audit_inputs(args.size)
    if args.sample > 1:
        inputs = inputs[:: args.sample]
    if args.rvm:
        return rvm_against_interpreter(inputs)
    docs = [i.document for i in inputs]
    with tempfile.TemporaryDirectory() as tmp:
        found = mismatches(reference_tree(Path(tmp)), docs, {}, limit=50)
    print(
        json.dumps(
            {
                "inputs": len(docs),
                "mismatches": found,
                "seconds": round(time.perf_counter() - started, 1),
            },
            indent=2,
        )
    )
    return 1 if found else 0


def rvm_against_interpreter(inputs: list[Any]) -> int:
    from tests.policy.rvm_compare import SideBySide, shipped

    modules, data, entry_points = shipped()
    both = SideBySide(modules, data, entry_points)
    started = time.perf_counter()
    found: list[str] = []
    for i, item in enumerate(inputs):
        found.extend(both.differences(item.document, f"input {i} ({item.ref.kind}): "))
        if len(found) >= 50:
            break
    compared_s = time.perf_counter() - started
    timings = _timings(modules, data, [(i.ref, i.document) for i in inputs])
    print(
        json.dumps(
            {
                "inputs": len(inputs),
                "entry_points": len(entry_points),
                "mismatches": found[:50],
                "compare_s": round(compared_s, 1),
                **timings,
            },
            indent=2,
        )
    )
    return 1 if found else 0


def _timings(modules: Any, data: Any, pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    import regorus

    from auditor.policy.applies import applies
    from auditor.policy.loader import load_policy_files
    from tests.policy.library_equivalence import SHIPPED
    from tests.policy.rvm_compare import program

    policies = load_policy_files([str(SHIPPED)], hooks=()).policies
    by_kind: dict[tuple[str, str], list[str]] = {}
    for ref, _ in pairs:
        key = (ref.group, ref.kind)
        if key not in by_kind:
            by_kind[key] = [
                f"data.{p.package}.{r}" for p in policies if applies(p.kinds, *key) for r in p.rules
            ]
    batch_modules, batches = [], {}
    for n, (key, rules) in enumerate(by_kind.items()):
        package = f"bench_batch.b{n}"
        # `x = rule`, not `x := rule`: the VM would take an undefined rule for a value
        body = "".join(f"r{i} := x if {{ x = {r} }} else := null\n" for i, r in enumerate(rules))
        names = ", ".join(f"r{i}" for i in range(len(rules)))
        batch_modules.append(
            (f"<{package}>", f"package {package}\nimport rego.v1\n{body}all := [{names}]\n")
        )
        batches[key] = f"data.{package}.all"
    engine = regorus.Engine()
    for key, text in [*modules, *batch_modules]:
        engine.add_policy(key, text)
    engine.add_data_json(json.dumps(data))
    each_rule = sorted({r for rules in by_kind.values() for r in rules})
    vm = regorus.Rvm()
    vm.load_program(program([*modules, *batch_modules], data, [*each_rule, *batches.values()]))
    vm.set_data_json(json.dumps(data))

    def interpreter(key: tuple[str, str]) -> Any:
        return json.loads(engine.eval_rule_as_json(batches[key]))

    def vm_batch(key: tuple[str, str]) -> Any:
        return json.loads(vm.execute_entry_point(batches[key]))

    def vm_rules(key: tuple[str, str]) -> Any:
        return [json.loads(vm.execute_entry_point(r)) for r in by_kind[key]]

    load_before = os.getloadavg()
    seconds, values = {}, {}
    for name, evaluate, set_input in [
        ("interpreter_batch", interpreter, engine.set_input_json),
        ("rvm_batch", vm_batch, vm.set_input_json),
        ("rvm_entry_points", vm_rules, vm.set_input_json),
    ]:
        start = time.perf_counter()
        out = []
        for ref, document in pairs:
            set_input(json.dumps(document))
            out.append(evaluate((ref.group, ref.kind)))
        seconds[name] = time.perf_counter() - start
        values[name] = out
    return {
        **{f"{name}_s": round(s, 3) for name, s in seconds.items()},
        "interpreter_over_rvm_batch": round(seconds["interpreter_batch"] / seconds["rvm_batch"], 2),
        "batches_equal": values["interpreter_batch"]
        == values["rvm_batch"]
        == values["rvm_entry_points"],
        "load_average": [
            [round(x, 2) for x in load_before],
            [round(x, 2) for x in os.getloadavg()],
        ],
    }


if __name__ == "__main__":
    sys.exit(main())

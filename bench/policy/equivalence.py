"""The shipped serving library against its reference form on the benchmark's audit inputs.

    .venv/bin/python bench/policy/equivalence.py [--size 10000] [--sample N]

Builds (or reuses) the inputs `bench/run` audits (`bench/.work/run/r<size>`), then evaluates
every shipped policy on every input twice, with policies/lib/serving.rego and with
tests/policy/reference/ in its place, and compares every result, message and detail and every
rule of the library (`tests/policy/library_equivalence.py`; the suite runs the same comparison
on a generated corpus). Prints one JSON object; exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=0, help="every Nth input only")
    args = parser.parse_args()

    import run as bench_run  # bench/run.py: builds the inputs an audit evaluates

    from tests.policy.library_equivalence import mismatches, reference_tree

    started = time.perf_counter()
    _, inputs, _ = bench_run.audit_inputs(args.size)
    docs = [i.document for i in inputs]
    if args.sample > 1:
        docs = docs[:: args.sample]
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


if __name__ == "__main__":
    sys.exit(main())

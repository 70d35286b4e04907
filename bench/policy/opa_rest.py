"""Policy benchmark, the REST path: resource x policy evaluations per second through the `opa`
engine (opa-python-client over HTTP) against the OPA-REST test server on 127.0.0.1.

    python bench/policy/opa_rest.py [--resources 2000] [--policies DIR] [--sample]
        [--per-rule-resources 50]

Same policies and resources as bench/policy/run.py (the embedded figure). Two ways of asking:
`batched`, the policy stage as the audit runs it (`evaluate_policies`: one request per
resource, every rule of every policy through one generated module), and `per_rule` (one
request per rule, what `upload: false` does, on fewer resources). The server is the test
double (regorus behind OPA's API, one evaluation at a time), so the figure measures the
client, HTTP and JSON round trips plus regorus, not a real OPA's evaluator. Prints one JSON
object.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import _resource, bench_inputs, sample_policies  # noqa: E402

from auditor.policy import gatekeeper  # noqa: E402
from auditor.policy.evaluate import evaluate_policies  # noqa: E402
from auditor.policy.loader import find_policy_files, load_policy_files  # noqa: E402
from auditor.policy.opa_server import OpaServerEngine  # noqa: E402
from tests.opaserver.server import OpaTestServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=2_000)
    parser.add_argument("--per-rule-resources", type=int, default=50)
    parser.add_argument("--policies", default=str(ROOT / "policies"))
    parser.add_argument("--sample", action="store_true", help="use the built-in sample")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, OpaTestServer() as server:
        policy_dir = Path(args.policies)
        rego, _ = find_policy_files([str(policy_dir)]) if policy_dir.is_dir() else ([], [])
        source = str(policy_dir)
        if args.sample or not [p for p in rego if not p.name.endswith("_test.rego")]:
            sample_policies(Path(tmp))
            source = "built-in sample"
            policy_dir = Path(tmp)
        policy_set = load_policy_files([str(policy_dir)], hooks=(gatekeeper.HOOKS,))

        resources = [_resource(i) for i in range(args.resources)]
        inputs = bench_inputs(resources)

        with OpaServerEngine(server.url) as engine:
            started = time.perf_counter()
            engine.load(policy_set.modules, policy_set.data)
            load_s = time.perf_counter() - started

            server.clear_requests()
            started = time.perf_counter()
            outcome = evaluate_policies(policy_set, inputs, engine=engine)
            batched_s = time.perf_counter() - started
            batched_requests = len(server.requests)

            # the same server, its policies already in place: ask rule by rule
            few = inputs[: args.per_rule_resources]
            with OpaServerEngine(server.url, upload=False) as per_rule:
                per_rule.load((), {})
                server.clear_requests()
                started = time.perf_counter()
                slow = evaluate_policies(policy_set, few, engine=per_rule)
                per_rule_s = time.perf_counter() - started
                per_rule_requests = len(server.requests)

    evaluations = len(outcome.evaluations)
    print(
        json.dumps(
            {
                "engine": "opa",
                "server": "tests/opaserver (OPA REST API, regorus)",
                "policies_from": source,
                "policies": len(policy_set.policies),
                "resources": len(resources),
                "load_s": round(load_s, 3),
                "batched": {
                    "evaluations": evaluations,
                    "results": outcome.counts(),
                    "requests": batched_requests,
                    "evaluate_s": round(batched_s, 3),
                    "evaluations_per_s": round(evaluations / batched_s),
                    "requests_per_s": round(batched_requests / batched_s),
                },
                "per_rule": {
                    "resources": len(few),
                    "evaluations": len(slow.evaluations),
                    "requests": per_rule_requests,
                    "evaluate_s": round(per_rule_s, 3),
                    "evaluations_per_s": round(len(slow.evaluations) / per_rule_s),
                    "requests_per_s": round(per_rule_requests / per_rule_s),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

"""Policy benchmark: resource x policy evaluations per second with the embedded engine.

    python bench/policy/run.py [--resources 10000] [--policies DIR] [--sample]

Policies: the shipped library (`policies/`) when it holds Rego, else (or with `--sample`) a
built-in sample of 20 simple policies, half in Rego v1 and half in v0. Resources: generated
KServe InferenceServices and Deployments over 20 namespaces, a quarter of them violating
something. Prints one JSON object: load time, input-building time, the policy stage
(`evaluate_policies`: evaluations, findings included) and evaluations per second: in this
process without a time budget, in one worker process with a budget (what `auditor audit` and
`policy eval` do), and split over `--workers` worker processes (default: every core).
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

from auditor.model import Resource, ResourceRef  # noqa: E402
from auditor.policy import gatekeeper  # noqa: E402
from auditor.policy.evaluate import evaluate_policies, load_engine  # noqa: E402
from auditor.policy.inputs import build_input  # noqa: E402
from auditor.policy.loader import find_policy_files, load_policy_files  # noqa: E402
from auditor.serving import model_ref  # noqa: E402

_V1 = """# METADATA
# custom:
#   severity: {severity}
package bench.p{i}

import rego.v1

deny contains msg if {{
	some c in input.resource.spec.template.spec.containers
	endswith(c.image, ":latest")
	msg := sprintf("container %s uses :latest ({i})", [c.name])
}}

deny contains msg if {{
	input.resource.kind == "InferenceService"
	not startswith(input.model.uri, "oci://")
	msg := sprintf("model %s is not from a registry ({i})", [input.model.uri])
}}

warn contains msg if {{
	not input.resource.metadata.labels.team
	msg := "no team label ({i})"
}}
"""

_V0 = """package bench.p{i}

deny[msg] {{
	input.resource.spec.replicas > {limit}
	msg := sprintf("replicas %v over {limit}", [input.resource.spec.replicas])
}}

deny[msg] {{
	input.model.digest == null
	input.resource.kind == "InferenceService"
	msg := "model is not digest-pinned ({i})"
}}

warn[msg] {{
	count(object.get(input.resource.metadata, "annotations", {{}})) == 0
	msg := "no annotations ({i})"
}}
"""


def sample_policies(directory: Path, count: int = 20) -> None:
    for i in range(count):
        if i % 2:
            text = _V0.format(i=i, limit=3 + i)
        else:
            text = _V1.format(i=i, severity=("high", "medium", "critical")[i % 3])
        (directory / f"p{i}.rego").write_text(text)


def _resource(i: int) -> Resource:
    namespace = f"team-{i % 20}"
    bad = i % 4 == 0
    if i % 2:
        body: dict[str, Any] = {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": f"model-{i}", "namespace": namespace, "labels": {"team": "ml"}},
            "spec": {
                "predictor": {
                    "minReplicas": 1,
                    "model": {
                        "modelFormat": {"name": "sklearn", "version": "1"},
                        "storageUri": f"gs://models/m{i}"
                        if bad
                        else f"oci://registry.example.com/m{i}@sha256:{i:064x}",
                        "resources": {"limits": {"cpu": "1", "memory": "2Gi"}},
                    },
                }
            },
        }
    else:
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": f"server-{i}",
                "namespace": namespace,
                "annotations": {"auditor.gitops.ml/model-uri": f"s3://models/m{i}"},
            },
            "spec": {
                "replicas": 12 if bad else 2,
                "template": {
                    "metadata": {"labels": {"app": f"server-{i}"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "server",
                                "image": "example.com/server:latest" if bad else "server:1.2",
                                "resources": {"limits": {"cpu": "1"}},
                            }
                        ]
                    },
                },
            },
        }
    meta = body["metadata"]
    ref = ResourceRef("bench", body["apiVersion"], body["kind"], meta["namespace"], meta["name"])
    return Resource(ref=ref, body=body, side="live", origin="bench")


def bench_inputs(resources: list[Resource]) -> list[tuple[ResourceRef, dict[str, Any]]]:
    """One audit-time input document per resource: live and Git agree, no drift."""
    return [
        (
            r.ref,
            build_input(
                resource=None,
                desired=r,
                live=r,
                drift=(),
                git={"repo": "bench", "commit": "0" * 40, "path": "x.yaml"},
                cluster="bench",
                context="audit",
                model=model_ref(r.body),
                provenance=None,
            ),
        )
        for r in resources
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--policies", default=str(ROOT / "policies"))
    parser.add_argument("--sample", action="store_true", help="use the built-in sample")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes for the parallel run"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        policy_dir = Path(args.policies)
        rego, _ = find_policy_files([str(policy_dir)]) if policy_dir.is_dir() else ([], [])
        library = [p for p in rego if not p.name.endswith("_test.rego")]
        source = str(policy_dir)
        if args.sample or not library:
            sample_policies(Path(tmp))
            source = "built-in sample"
            policy_dir = Path(tmp)

        started = time.perf_counter()
        policy_set = load_policy_files([str(policy_dir)], hooks=(gatekeeper.HOOKS,))
        engine = load_engine(policy_set)
        load_s = time.perf_counter() - started

        resources = [_resource(i) for i in range(args.resources)]
        started = time.perf_counter()
        inputs = bench_inputs(resources)
        inputs_s = time.perf_counter() - started

        started = time.perf_counter()
        outcome = evaluate_policies(policy_set, inputs, engine=engine)
        eval_s = time.perf_counter() - started

        # what `auditor audit` does: a time budget per evaluation, so through worker processes
        started = time.perf_counter()
        budgeted = evaluate_policies(policy_set, inputs, engine=engine, timeout=5.0)
        worker_s = time.perf_counter() - started
        assert budgeted.counts() == outcome.counts()

        started = time.perf_counter()
        parallel = evaluate_policies(
            policy_set, inputs, engine=engine, workers=args.workers, timeout=5.0
        )
        parallel_s = time.perf_counter() - started
        assert parallel.counts() == outcome.counts()

    evaluations = len(outcome.evaluations)
    print(
        json.dumps(
            {
                "engine": engine.name,
                "policies_from": source,
                "policies": len(policy_set.policies),
                "resources": len(resources),
                "evaluations": evaluations,
                "results": outcome.counts(),
                "findings": len(outcome.findings),
                "load_s": round(load_s, 3),
                "build_inputs_s": round(inputs_s, 3),
                "evaluate_s": round(eval_s, 3),
                "evaluations_per_s": round(evaluations / eval_s),
                "policy_stage_s": round(inputs_s + eval_s, 3),
                "worker_evaluate_s": round(worker_s, 3),
                "worker_evaluations_per_s": round(evaluations / worker_s),
                "workers": args.workers,
                "parallel_evaluate_s": round(parallel_s, 3),
                "parallel_evaluations_per_s": round(evaluations / parallel_s),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

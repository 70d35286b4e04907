"""Fleet merge benchmark: peak memory and time of `auditor store merge` as the fleet grows.

    python bench/fleet/merge.py [--clusters 20 80] [--resources 2000] [--per-shard 10]

One snapshot cluster of `--resources` objects (bench/drift's generator, 1% drifted, the
shipped policy library on every object) is audited once by `auditor audit`; its stored run
(findings, every policy x resource evaluation, resources, attestations) is then recorded
again under each cluster name of a simulated fleet, into shard stores of `--per-shard`
clusters each, as `auditor audit --shard I/N --run-id ID` would leave them. Each fleet's
shard stores are merged by a fresh `auditor store merge` process, whose wall and CPU time
and peak RSS are measured; `--baseline PATH` also merges them with the auditor at PATH (a
checkout, e.g. one before the merge streamed) for comparison.

Prints one JSON object, with the uptime load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "drift"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate
from run import _timed

from auditor.model import Finding, ResourceRef, Run, RunReport
from auditor.shards import Shard, order_findings, positions, shard_of
from auditor.store import Store

RUN_ID = "bench-fleet-merge"


def _audited_cluster(work: Path, resources: int) -> RunReport:
    generate(work, resources)
    config = work / "one.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "git": {"repo": str(work / "repo")},
                "clusters": [{"name": "template", "snapshot": str(work / "live.json")}],
            }
        )
    )
    auditor = shutil.which("auditor", path=os.path.dirname(sys.executable)) or "auditor"
    store = work / "one.db"
    subprocess.run(
        [auditor, "audit", "--config", str(config), "--store", str(store)],
        stdout=subprocess.DEVNULL,
        check=False,
    )
    with Store.open(store) as opened:
        report = opened.report("latest")
    assert report is not None and report.run.status == "complete", "the template audit failed"
    return report


def _as(ref: ResourceRef | None, cluster: str) -> ResourceRef | None:
    return dataclasses.replace(ref, cluster=cluster) if ref is not None else None


def _finding(finding: Finding, cluster: str) -> Finding:
    # the fingerprint is made again, for the cluster's own object
    ref = dataclasses.replace(finding.ref, cluster=cluster)
    return dataclasses.replace(finding, ref=ref, recorded_fingerprint="")


def _write_shard(path: Path, template: RunReport, shard: Shard, fleet: list[str]) -> None:
    names = [n for n in fleet if shard.holds(n)]
    run: Run = dataclasses.replace(
        template.run,
        id=RUN_ID,
        clusters=tuple(dataclasses.replace(template.run.clusters[0], name=n) for n in names),
        counts={k: v * len(names) for k, v in template.run.counts.items()},
    )
    with Store.open(path) as store:
        store.begin_run(run)
        store.record_shard(RUN_ID, shard, fleet)
        store.finish_run(
            run,
            resources=[
                dataclasses.replace(r, ref=_as(r.ref, n)) for n in names for r in template.resources
            ],
            # in the fleet's order (by stage block, then cluster), as a shard writes them
            findings=order_findings(
                [_finding(f.finding, n) for n in names for f in template.findings],
                positions(fleet),
            ),
            errors=[],
            exit_code=template.exit_code or 0,
            evaluations=[
                dataclasses.replace(e, ref=_as(e.ref, n))
                for n in names
                for e in template.evaluations
            ],
            attestations=[
                dataclasses.replace(a, ref=_as(a.ref, n))
                for n in names
                for a in template.attestations
            ],
            policies=template.policies,
        )


def _fleet(work: Path, template: RunReport, clusters: int, per_shard: int) -> list[Path]:
    fleet = [f"cluster-{i:03d}" for i in range(clusters)]
    count = max(1, clusters // per_shard)
    folder = work / f"fleet-{clusters}"
    folder.mkdir()
    stores = []
    for index in range(count):
        path = folder / f"shard-{index}.db"
        _write_shard(path, template, Shard(index, count), fleet)
        stores.append(path)
    largest = max(sum(shard_of(n, count) == i for n in fleet) for i in range(count))
    print(f"fleet of {clusters}: {count} shards, at most {largest} clusters", file=sys.stderr)
    return stores


def _merge(auditor: list[str], out: Path, stores: list[Path]) -> dict[str, Any]:
    out.unlink(missing_ok=True)
    measured = _timed([*auditor, "store", "merge", str(out), *map(str, stores)])
    measured["store_mib"] = round(out.stat().st_size / 2**20, 1)
    with Store.open(out) as store:
        [run] = store.runs()
        measured["status"] = run["status"]
    return measured


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clusters", type=int, nargs="+", default=[20, 80])
    parser.add_argument("--resources", type=int, default=2000)
    parser.add_argument("--per-shard", type=int, default=10)
    parser.add_argument("--baseline", help="a checkout of auditor to merge with as well")
    parser.add_argument(
        "--work", default=str(Path(__file__).resolve().parents[1] / ".work" / "fleet-merge")
    )
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    template = _audited_cluster(work, args.resources)
    this = [sys.executable, "-m", "auditor"]
    baseline = [sys.executable, "-c", _BASELINE, args.baseline] if args.baseline else None
    fleets: dict[str, Any] = {}
    for clusters in args.clusters:
        stores = _fleet(work, template, clusters, args.per_shard)
        fleets[str(clusters)] = {
            "shards": len(stores),
            "merge": _merge(this, work / "m.db", stores),
        }
        if baseline:
            fleets[str(clusters)]["baseline"] = _merge(baseline, work / "b.db", stores)
        print(json.dumps({clusters: fleets[str(clusters)]}), file=sys.stderr)
    print(
        json.dumps(
            {
                "resources_per_cluster": args.resources,
                "evaluations_per_cluster": len(template.evaluations),
                "findings_per_cluster": len(template.findings),
                "cores": os.cpu_count(),
                "load_average": os.getloadavg(),
                "fleets": fleets,
            },
            indent=2,
        )
    )


# Runs `auditor` from another checkout (argv[1]) with the rest of the arguments.
_BASELINE = (
    "import sys, runpy\n"
    "sys.path.insert(0, sys.argv.pop(1))\n"
    "sys.argv[0] = 'auditor'\n"
    "runpy.run_module('auditor', run_name='__main__')\n"
)


if __name__ == "__main__":
    main()

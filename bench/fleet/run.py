"""Fleet benchmark: time per snapshot cluster, one process vs shards merged, and the
projection for a fleet of 500 clusters (docs/scale.md).

    python bench/fleet/run.py [--clusters 10] [--resources 2000] [--shards 3] [--concurrency 4]

Every cluster is a `kubectl get -o json` snapshot of `--resources` objects (bench/drift's
generator: InferenceServices, Deployments, Services and ConfigMaps with what an API server adds,
1% drifted) against the same Git commit; the shipped policy library is evaluated on every
object. Timed, each as a fresh `auditor` process (imports included):

- `auditor audit` over 1 cluster and over `--clusters` clusters: the difference is the time
  one more cluster costs, the rest the run's fixed cost (Git, policy loading, the store);
- the same fleet as `--shards` runs of `auditor audit --shard I/N` (one after another, as
  separate pods would run them at once) and `auditor store merge` of their stores.

Prints one JSON object, with the uptime load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "drift"))
from generate import generate

TARGET_SECONDS = 3600.0
FLEET = 500


def _timed(argv: list[str]) -> dict[str, Any]:
    """Wall and CPU seconds, peak RSS (MiB) and exit code of one child process."""
    script = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter()\n"
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
        "wall = time.perf_counter() - t\n"
        "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "cpu = usage.ru_utime + usage.ru_stime\n"
        "print(json.dumps([wall, cpu, usage.ru_maxrss / 1024, rc]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, check=True
    )
    wall, cpu, rss, rc = json.loads(out.stdout)
    return {
        "seconds": round(wall, 2),
        # CPU time of the process and its policy workers: what a shared machine's load
        # cannot inflate, and what a pod's CPU request must cover
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mib": round(rss),
        "exit_code": rc,
    }


def _config(work: Path, clusters: int, concurrency: int) -> Path:
    path = work / f"auditor-{clusters}.yaml"
    config = {
        "git": {"repo": str(work / "repo")},
        "clusters": [
            {"name": f"cluster-{i:03d}", "snapshot": str(work / "live.json")}
            for i in range(clusters)
        ],
        "concurrency": concurrency,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--resources", type=int, default=2000)
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--work", default=str(Path(__file__).resolve().parents[1] / ".work" / "fleet")
    )
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    inputs = generate(work, args.resources)
    auditor = shutil.which("auditor", path=os.path.dirname(sys.executable)) or "auditor"

    def audit(config: Path, store: Path, *extra: str) -> dict[str, Any]:
        return _timed([auditor, "audit", "--config", str(config), "--store", str(store), *extra])

    one = audit(_config(work, 1, args.concurrency), work / "one.db")
    fleet_config = _config(work, args.clusters, args.concurrency)
    fleet = audit(fleet_config, work / "fleet.db")
    shards = [
        audit(
            fleet_config,
            work / f"shard-{i}.db",
            "--shard",
            f"{i}/{args.shards}",
            "--run-id",
            "bench-fleet",
        )
        for i in range(args.shards)
    ]
    stores = [str(work / f"shard-{i}.db") for i in range(args.shards)]
    merge = _timed([auditor, "store", "merge", str(work / "merged.db"), *stores])

    per_cluster = (fleet["seconds"] - one["seconds"]) / (args.clusters - 1)
    cpu_per_cluster = (fleet["cpu_seconds"] - one["cpu_seconds"]) / (args.clusters - 1)
    fixed = one["seconds"] - per_cluster
    merge_per_cluster = merge["seconds"] / args.clusters
    # a shard must finish with time left for the merge of the whole fleet
    budget = TARGET_SECONDS - merge_per_cluster * FLEET - fixed
    shards_needed = math.ceil(FLEET * per_cluster / budget) if budget > 0 else None
    print(
        json.dumps(
            {
                "inputs": {**inputs, "clusters": args.clusters, "shards": args.shards},
                "cores": os.cpu_count(),
                "load_average": os.getloadavg(),
                "one_cluster": one,
                "fleet_one_process": fleet,
                "fleet_shards": shards,
                "merge": merge,
                "seconds_per_cluster": round(per_cluster, 2),
                "cpu_seconds_per_cluster": round(cpu_per_cluster, 2),
                "fixed_seconds": round(fixed, 2),
                "merge_seconds_per_cluster": round(merge_per_cluster, 3),
                "projection": {
                    "clusters": FLEET,
                    "one_process_seconds": round(fixed + FLEET * per_cluster),
                    "shards_for_one_hour": shards_needed,
                    "clusters_per_shard": math.ceil(FLEET / shards_needed)
                    if shards_needed
                    else None,
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

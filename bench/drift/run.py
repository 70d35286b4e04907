"""Drift benchmark: `auditor drift` over N resources against merely parsing the inputs.

    python bench/drift/run.py [--resources 10000] [--work bench/.work/drift]

Prints one JSON object with wall time, peak memory and the ratio to the parse baseline
(every Git manifest and the snapshot loaded with PyYAML's C loader), for a JSON snapshot
(`kubectl get -o json`) and a YAML one (`-o yaml`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate


def _child(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB) and exit code of a child process."""
    script = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter()\n"
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
        "wall = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps([wall, rss, rc]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, check=True
    )
    wall, rss, rc = json.loads(out.stdout)
    return wall, rss, rc


def parse_baseline(repo: Path, snapshot: Path) -> float:
    """Seconds to parse every manifest and the snapshot with the C loader, nothing else."""
    start = time.perf_counter()
    for path in sorted(repo.rglob("*.yaml")):
        list(yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader))
    yaml.load(snapshot.read_bytes(), Loader=yaml.CSafeLoader)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument(
        "--work", default=str(Path(__file__).resolve().parents[1] / ".work" / "drift")
    )
    parser.add_argument("--keep", action="store_true", help="reuse a generated work dir")
    args = parser.parse_args()
    work = Path(args.work)
    if work.exists() and not args.keep:
        shutil.rmtree(work)
    info_file = work / "inputs.json"
    if work.exists() and not info_file.exists():  # made by an older run: start over
        shutil.rmtree(work)
    if not work.exists():
        work.mkdir(parents=True)
        info_file.write_text(json.dumps(generate(work, args.resources)))
    info = json.loads(info_file.read_text())
    auditor = shutil.which("auditor", path=os.path.dirname(sys.executable)) or "auditor"
    results: dict[str, object] = {"inputs": info, "cores": os.cpu_count()}
    for fmt in ("json", "yaml"):
        snapshot = work / f"live.{fmt}"
        baseline = min(parse_baseline(work / "repo", snapshot) for _ in range(2))
        runs = [
            _child(
                [
                    auditor,
                    "drift",
                    "--repo",
                    str(work / "repo"),
                    "--live-snapshot",
                    str(snapshot),
                    "-o",
                    "json",
                ]
            )
            for _ in range(3)
        ]
        wall = min(r[0] for r in runs)
        results[f"snapshot_{fmt}"] = {
            "snapshot_mib": round(snapshot.stat().st_size / 2**20, 1),
            "auditor_drift_seconds": round(wall, 2),
            "peak_rss_mib": round(max(r[1] for r in runs), 1),
            "exit_code": runs[0][2],
            "parse_baseline_seconds": round(baseline, 2),
            "ratio_to_parse": round(wall / baseline, 2),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

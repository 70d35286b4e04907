"""Drift benchmark: `auditor drift` over N resources against merely reading its inputs.

    python bench/drift/run.py [--resources 10000] [--work bench/.work/drift] [--keep]

The floor is what any tool must do to read the same inputs, nothing else: `git ls-tree` and
one `git cat-file --batch` for the manifests at the commit, PyYAML's C loader over them, and
`json.loads` of the JSON snapshot, with the cyclic GC off. `auditor drift -o json` runs in a
fresh process (import time included, bytecode compiled as an installed package has it), best
of 3, and its output is checked: exit code 1, every resource counted, and exactly the planted
drifts reported (by kind, namespace and name). Prints one JSON object; the YAML snapshot
variant (`--yaml`) is PyYAML's cost and has no floor of its own here.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import generate

PROJECT = Path(__file__).resolve().parents[2]


def child_env() -> dict[str, str]:
    """The environment of the timed processes: bytecode written and read, as after an install
    (a sandbox's PYTHONDONTWRITEBYTECODE would add compiling every module to each start)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def timed_child(argv: list[str]) -> dict[str, Any]:
    """Wall and user+system CPU seconds, peak RSS (MiB), exit code and stdout of a child."""
    script = (
        "import resource, subprocess, sys, time, json\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
        "wall = time.perf_counter() - t\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "sys.stderr.buffer.write(p.stdout)\n"
        "err = p.stderr.decode(errors='replace')[-4000:]\n"
        "print(json.dumps([wall, u.ru_utime + u.ru_stime, u.ru_maxrss / 1024, p.returncode, err]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, *argv],
        capture_output=True,
        check=True,
        env=child_env(),
    )
    # the child's stderr (its logs) kept apart: mixed into its stdout it broke the JSON it prints
    wall, cpu, rss, rc, err = json.loads(out.stdout)
    return {"wall": wall, "cpu": cpu, "rss_mib": rss, "rc": rc, "stdout": out.stderr, "stderr": err}


def read_floor(repo: Path, snapshot: Path) -> float:
    """Seconds to read the inputs and nothing else (the module docstring)."""
    gc.disable()
    try:
        start = time.perf_counter()
        listing = subprocess.run(
            ["git", "-C", str(repo), "ls-tree", "-r", "-z", "HEAD"],
            capture_output=True,
            check=True,
        ).stdout
        shas = [entry.split(b"\t")[0].split()[2] for entry in listing.split(b"\0") if entry]
        blobs = subprocess.run(
            ["git", "-C", str(repo), "cat-file", "--batch"],
            input=b"\n".join(shas) + b"\n",
            capture_output=True,
            check=True,
        ).stdout
        pos = 0
        while pos < len(blobs):
            header_end = blobs.index(b"\n", pos)
            size = int(blobs[pos:header_end].split()[2])
            list(yaml.load_all(blobs[header_end + 1 : header_end + 1 + size], yaml.CSafeLoader))
            pos = header_end + 2 + size
        json.loads(snapshot.read_bytes())
        return time.perf_counter() - start
    finally:
        gc.enable()


def floor_in_child(repo: Path, snapshot: Path) -> float:
    """`read_floor` in a fresh process, as the command it is compared with runs."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from run import read_floor; "
        "from pathlib import Path; print(read_floor(Path(sys.argv[2]), Path(sys.argv[3])))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), str(repo), str(snapshot)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout)


def auditor_command() -> str:
    return shutil.which("auditor", path=os.path.dirname(sys.executable)) or "auditor"


def drift_argv(work: Path, snapshot: Path) -> list[str]:
    return [
        auditor_command(),
        "drift",
        "--repo",
        str(work / "repo"),
        "--live-snapshot",
        str(snapshot),
        "-o",
        "json",
    ]


def check_drift_output(stdout: bytes, rc: int, info: dict[str, Any]) -> list[str]:
    """What is wrong with one `auditor drift -o json` run of the generated inputs ([] if
    nothing): the exit code, the counts and exactly the planted drifts."""
    problems = []
    expected = 1 if info["planted"] else 0
    if rc != expected:
        problems.append(f"exit code {rc}, expected {expected}")
    try:
        document = json.loads(stdout)
    except json.JSONDecodeError as exc:
        return [*problems, f"output is not JSON: {exc}"]
    summary = document.get("summary", {})
    if summary.get("resources") != info["resources"]:
        problems.append(f"{summary.get('resources')} resources, expected {info['resources']}")
    drifted = sorted(
        {
            (f["resource"]["kind"], f["resource"]["namespace"], f["resource"]["name"])
            for f in document.get("findings", [])
        }
    )
    planted = sorted(tuple(p) for p in info["planted"])
    if drifted != planted:
        missed = len(set(planted) - set(drifted))
        extra = len(set(drifted) - set(planted))
        problems.append(f"planted drifts: {missed} not reported, {extra} reported but not planted")
    if summary.get("drifted") != len(planted):
        problems.append(f"summary.drifted {summary.get('drifted')}, planted {len(planted)}")
    return problems


def prepare(work: Path, resources: int, *, keep: bool, yaml_snapshot: bool) -> dict[str, Any]:
    """The generated inputs under `work` (reused with `keep` when they match), their info."""
    info_file = work / "inputs.json"
    if work.exists() and keep and info_file.exists():
        info: dict[str, Any] = json.loads(info_file.read_text())
        same = info.get("resources") == resources and "planted" in info
        if same and (not yaml_snapshot or (work / "live.yaml").exists()):
            return info
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    info = generate(work, resources, yaml_snapshot=yaml_snapshot)
    info_file.write_text(json.dumps(info))
    return info


def compile_bytecode() -> None:
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(PROJECT / "auditor")],
        check=True,
        env=child_env(),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--work", default=str(PROJECT / "bench" / ".work" / "drift"))
    parser.add_argument("--keep", action="store_true", help="reuse a generated work dir")
    parser.add_argument("--yaml", action="store_true", help="also time a YAML snapshot")
    args = parser.parse_args()
    work = Path(args.work)
    info = prepare(work, args.resources, keep=args.keep, yaml_snapshot=args.yaml)
    compile_bytecode()
    floor = min(floor_in_child(work / "repo", work / "live.json") for _ in range(3))
    runs = [timed_child(drift_argv(work, work / "live.json")) for _ in range(3)]
    best = min(runs, key=lambda r: r["wall"])
    results: dict[str, Any] = {
        "resources": info["resources"],
        "planted": info["drifted"],
        "cores": os.cpu_count(),
        "floor_s": round(floor, 2),
        "auditor_drift_s": round(best["wall"], 2),
        "auditor_drift_cpu_s": round(best["cpu"], 2),
        "peak_rss_mib": round(max(r["rss_mib"] for r in runs), 1),
        "ratio_to_floor": round(best["wall"] / floor, 2),
        "problems": check_drift_output(best["stdout"], best["rc"], info),
        "load_average": os.getloadavg(),
    }
    if args.yaml:
        yaml_run = timed_child(drift_argv(work, work / "live.yaml"))
        results["yaml_snapshot_s"] = round(yaml_run["wall"], 2)
        results["yaml_snapshot_problems"] = check_drift_output(
            yaml_run["stdout"], yaml_run["rc"], info
        )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

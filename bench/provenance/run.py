"""Model-signature verification throughput: `auditor verify model` against raw hashing.

    .venv/bin/python bench/provenance/run.py [--size-mib 1024] [--files 8] [--repeat 5] [--keep]

Generates a model of `--files` equal random files (1 GiB in 8 by default) in a temp dir,
signs it with a fresh EC P-256 key through model-signing, then times over the same bytes:

- `raw_hashlib_2_threads`: the honest baseline. hashlib.sha256 over every file, the files
  split into as many halves as there are cores and hashed by that many threads (hashlib
  releases the GIL), 1 MiB reads into a reused buffer. No manifest, no signature: the most
  any verifier could do on this machine.
- `raw_hashlib_1_thread`: the same on one thread, for scale.
- `model_signing_hash`: model_signing.hashing.Config().hash(model): its own thread pool.
- `auditor_verify_library`: auditor.provenance.signing.verify_model (cache off).
- `auditor_verify_cli`: `auditor verify model ... -o json` in a fresh process (import incl.).
- `model_signing_cli`: `python -m model_signing verify key ...` in a fresh process.

Files are read once before timing, so every run hashes from the page cache: the figures
compare hashing, not the disk. Variants run round-robin, best of `--repeat` (5). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import model_signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from auditor.provenance.signing import verify_model  # noqa: E402
from auditor.trust.policy import load_trust_policy  # noqa: E402

CHUNK = 1024 * 1024
# The CLI entry with the `verify` group added when auditor.cli does not register it yet.
ENTRY = (
    "import sys; from auditor import cli; from auditor.cli.verify import verify; "
    "'verify' in cli.cli.commands or cli.cli.add_command(verify); cli.main(sys.argv[1:])"
)


def make_model(directory: Path, size: int, files: int) -> list[Path]:
    directory.mkdir(parents=True)
    per_file = size // files
    paths = []
    block = os.urandom(16 * CHUNK)  # random per block offset below: incompressible, fast
    for index in range(files):
        path = directory / f"model-{index:05d}-of-{files:05d}.safetensors"
        with path.open("wb") as handle:
            written = 0
            while written < per_file:
                piece = block[: min(len(block), per_file - written)]
                handle.write(index.to_bytes(4, "little") + piece[4:])
                written += len(piece)
        paths.append(path)
    return paths


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as handle:
        while n := handle.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def raw_hashlib(paths: list[Path], threads: int) -> None:
    # Each thread takes an equal share of the files, as two halves of the file set.
    shares = [paths[i::threads] for i in range(threads)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(lambda share: [hash_file(p) for p in share], shares))


def run_process(args: list[str], expect: int = 0) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, cwd=PROJECT)
    if proc.returncode != expect:
        raise SystemExit(f"{args[:4]} exited {proc.returncode}: {proc.stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    options = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="auditor-bench-provenance-"))
    try:
        size = options.size_mib * CHUNK
        model = workdir / "model"
        paths = make_model(model, size, options.files)
        total = sum(p.stat().st_size for p in paths)
        key = ec.generate_private_key(ec.SECP256R1())
        (workdir / "release.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (workdir / "release.pub").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        signature = workdir / "model.sig"
        model_signing.signing.Config().use_elliptic_key_signer(
            private_key=workdir / "release.key"
        ).sign(model, signature)
        policy_file = workdir / "trust.yaml"
        policy_file.write_text(
            "trust:\n  authorities: [{name: release-key, key: release.pub}]\n"
            "  models: [{match: {}, require: [release-key]}]\n"
        )
        policy = load_trust_policy(policy_file)
        raw_hashlib(paths, 1)  # warm the page cache

        cores = os.cpu_count() or 1

        def library() -> None:
            result = verify_model(model, signature, policy, use_cache=False)
            assert result.verified, result.findings

        cli = [sys.executable, "-c", ENTRY, "verify", "model", str(model)]
        cli += ["--signature", str(signature), "--trust-policy", str(policy_file), "-o", "json"]
        upstream = [sys.executable, "-m", "model_signing", "verify", "key"]
        upstream += ["--signature", str(signature), "--public_key", str(workdir / "release.pub")]
        upstream += [str(model)]
        variants: dict[str, Callable[[], object]] = {
            "raw_hashlib_2_threads": lambda: raw_hashlib(paths, 2),
            "raw_hashlib_1_thread": lambda: raw_hashlib(paths, 1),
            "model_signing_hash": lambda: model_signing.hashing.Config().hash(model),
            "auditor_verify_library": library,
            "auditor_verify_cli": lambda: run_process(cli),
            "model_signing_cli": lambda: run_process(upstream),
        }
        # Round-robin, best of `repeat`: on a shared machine a neighbour's burst then costs one
        # sample of one variant, not a whole variant's figures.
        timings = {name: float("inf") for name in variants}
        for _ in range(options.repeat):
            for name, run in variants.items():
                start = time.perf_counter()
                run()
                timings[name] = min(timings[name], time.perf_counter() - start)

        gib = total / 1024**3
        baseline = timings["raw_hashlib_2_threads"]
        report = {
            "model": {"bytes": total, "files": len(paths), "page_cache": "warm"},
            "cores": cores,
            "repeat": options.repeat,
            "seconds": {k: round(v, 3) for k, v in timings.items()},
            "gib_per_second": {k: round(gib / v, 3) for k, v in timings.items()},
            "ratio_to_raw_hashlib_2_threads": {
                k: round(baseline / v, 3) for k, v in timings.items()
            },
        }
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    finally:
        if options.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

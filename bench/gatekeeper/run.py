"""Agreement with gatekeeper-library's own test suites, case by case.

    .venv/bin/python bench/gatekeeper/run.py LIBRARY_DIR [--cli] [--filter TEXT] [-v]

LIBRARY_DIR is a local checkout of open-policy-agent/gatekeeper-library (or any folder of
`suite.yaml` files laid out like its `library/`). Every `suite.yaml` (kind Suite) is walked
as `gator verify` walks it: each test loads its template and constraint, each case reviews
one object (with its `inventory` objects in `data.inventory`) and checks every assertion:
`violations: yes | no | N` over the results whose message matches the `message` regex.

By default each case goes through the library calls `auditor policy eval` makes
(`load_gatekeeper`, `matches`, `gatekeeper_input`, the embedded engine); `--cli` runs the
command itself, `auditor policy eval --policy DIR [--inventory FILE]... OBJECT -o json`,
with the template and constraint copied into a fresh DIR.

Prints one line per failing case and, last, one JSON object:
`{"agree", "total", "unavailable", "seconds", "failures": [...]}`. A case whose files are not
in the checkout is `unavailable`, not counted in `total`.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from auditor.policy.embedded import EmbeddedEngine
from auditor.policy.engine import PolicyEvalError, PolicyLoadError
from auditor.policy.gatekeeper import (
    GATOR,
    build_inventory,
    gatekeeper_input,
    load_gatekeeper,
    matches,
    namespaces_from,
)

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Case:
    suite: Path
    test: str
    name: str
    template: Path
    constraint: Path
    object: Path
    inventory: list[Path]
    assertions: list[Mapping[str, Any]]

    @property
    def label(self) -> str:
        return f"{self.suite.parent.name}/{self.test}/{self.name}"

    def files(self) -> list[Path]:
        return [self.template, self.constraint, self.object, *self.inventory]


@dataclass
class Outcome:
    agree: bool
    messages: list[str] = field(default_factory=list)
    reason: str = ""


def read_yaml_all(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def iter_cases(root: Path, text_filter: str) -> list[Case]:
    cases: list[Case] = []
    for suite_path in sorted(root.rglob("suite.yaml")):
        if "artifacthub" in suite_path.parts:
            continue  # published copies of the same suites
        suite = read_yaml_all(suite_path)
        if not suite or suite[0].get("kind") != "Suite" or suite[0].get("skip"):
            continue
        base = suite_path.parent
        for test in suite[0].get("tests") or []:
            if test.get("skip") or test.get("invalid"):
                continue  # `invalid` tests check constraint schema validation, not cases
            for case in test.get("cases") or []:
                if case.get("skip"):
                    continue
                item = Case(
                    suite=suite_path,
                    test=str(test.get("name")),
                    name=str(case.get("name")),
                    template=base / str(test.get("template")),
                    constraint=base / str(test.get("constraint")),
                    object=base / str(case.get("object")),
                    inventory=[base / p for p in case.get("inventory") or []],
                    assertions=list(case.get("assertions") or []),
                )
                if text_filter in item.label:
                    cases.append(item)
    return cases


def assertions_hold(assertions: Sequence[Mapping[str, Any]], messages: Sequence[str]) -> str:
    """ "" when every assertion holds (gator's semantics), else why not."""
    for assertion in assertions:
        pattern = assertion.get("message")
        matching = sum(1 for m in messages if pattern is None or re.search(str(pattern), m))
        want = assertion.get("violations", "yes")
        if want is True:  # YAML 1.1 reads an unquoted `yes` as true
            want = "yes"
        if want is False:
            want = "no"
        ok = (
            matching > 0
            if want == "yes"
            else matching == 0
            if want == "no"
            else matching == int(want)
        )
        if not ok:
            about = f" matching {pattern!r}" if pattern is not None else ""
            return f"want {want} violations{about}, got {matching}"
    return ""


def _admission_request(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if obj.get("kind") == "AdmissionReview" and str(obj.get("apiVersion", "")).startswith(
        "admission.k8s.io/"
    ):
        request = obj.get("request")
        return request if isinstance(request, Mapping) else {}
    return None


def case_review(
    case: Case,
) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None, dict[str, Any]]:
    """The object a case reviews, its old object, and `gatekeeper_input`'s other arguments
    (from an AdmissionReview's request)."""
    objects = read_yaml_all(case.object)
    if len(objects) != 1:
        raise PolicyLoadError(f"{len(objects)} objects to review, want 1", file=str(case.object))
    request = _admission_request(objects[0])
    if request is None:
        return objects[0], None, {}
    subject, old = request.get("object"), request.get("oldObject")
    # Gatekeeper reviews a DELETE's old object as the object (util.SetObjectOnDelete).
    if subject is None and request.get("operation") == "DELETE":
        subject = old
    extra = {
        "operation": str(request.get("operation") or ""),
        "user_info": request.get("userInfo") or {},
        "uid": str(request.get("uid") or ""),
    }
    return subject, old, extra


def run_library(case: Case) -> list[str]:
    """The messages of the violations auditor's library calls find for one case."""
    modules, policies = load_gatekeeper([case.template, case.constraint], enforcement_point=GATOR)
    inventory_objects = [o for p in case.inventory for o in read_yaml_all(p)]
    engine = EmbeddedEngine()
    engine.load(modules, {"inventory": build_inventory(inventory_objects)})
    namespaces = namespaces_from(inventory_objects)
    subject, old, extra = case_review(case)
    messages: list[str] = []
    for policy in policies:
        if subject is None or not matches(policy, subject, namespaces, old_object=old):
            continue
        doc = gatekeeper_input(policy, subject, old_object=old, **extra)
        result = engine.evaluate(f"data.{policy.package}.violation", doc) or []
        messages.extend(str(r.get("msg", "")) for r in result)
    return messages


def run_cli(case: Case) -> list[str]:
    """The messages `auditor policy eval ... -o json` reports for one case."""
    with tempfile.TemporaryDirectory() as tmp:
        policy_dir = Path(tmp) / "policy"
        policy_dir.mkdir()
        shutil.copy(case.template, policy_dir / "template.yaml")
        shutil.copy(case.constraint, policy_dir / "constraint.yaml")
        command = [sys.executable, "-m", "auditor", "policy", "eval", "--policy", str(policy_dir)]
        for path in case.inventory:
            command += ["--inventory", str(path)]
        command += [str(case.object), "-o", "json"]
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
        if done.returncode not in (0, 1):
            raise RuntimeError(f"exit {done.returncode}: {done.stderr.strip()[-400:]}")
        report = json.loads(done.stdout)
        errors = [e for e in report.get("evaluations", []) if e.get("result") == "error"]
        if errors:
            raise PolicyEvalError("; ".join(str(e.get("messages")) for e in errors))
        return [
            str(f.get("message", ""))
            for f in report.get("findings", [])
            if f.get("category") == "policy"
        ]


def check(case: Case, use_cli: bool) -> Outcome:
    try:
        messages = run_cli(case) if use_cli else run_library(case)
    except (PolicyLoadError, PolicyEvalError, RuntimeError, ValueError) as exc:
        return Outcome(agree=False, reason=f"{type(exc).__name__}: {exc}")
    reason = assertions_hold(case.assertions, messages)
    return Outcome(agree=not reason, messages=messages, reason=reason)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("library", type=Path, help="gatekeeper-library checkout")
    parser.add_argument("--cli", action="store_true", help="run `auditor policy eval` per case")
    parser.add_argument("--filter", default="", help="only cases whose label contains this")
    parser.add_argument("-v", "--verbose", action="store_true", help="print agreeing cases too")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    agree = total = 0
    unavailable: list[str] = []
    failures: list[dict[str, str]] = []
    for case in iter_cases(args.library, args.filter):
        missing = [str(p.relative_to(args.library)) for p in case.files() if not p.is_file()]
        if missing:
            unavailable.append(f"{case.label}: missing {', '.join(missing)}")
            continue
        total += 1
        outcome = check(case, args.cli)
        if outcome.agree:
            agree += 1
            if args.verbose:
                print(f"ok    {case.label}", file=sys.stderr)
            continue
        failures.append({"case": case.label, "reason": outcome.reason})
        print(f"FAIL  {case.label}: {outcome.reason} {outcome.messages}", file=sys.stderr)
    if args.verbose:
        for line in unavailable:
            print(f"n/a   {line}", file=sys.stderr)
    summary = {
        "agree": agree,
        "total": total,
        "unavailable": len(unavailable),
        "seconds": round(time.perf_counter() - started, 2),
        "failures": failures,
    }
    print(json.dumps(summary, indent=2))
    return 0 if agree == total else 1


if __name__ == "__main__":
    sys.exit(main())

"""The real-world manifests of `realworld/` and the live objects a cluster made of them.

`realworld/desired/` holds public manifests (each cites its origin); `realworld/live/` what
`kubectl get -o yaml --show-managed-fields` returns once Argo CD applied them. Tests load
them through here and change only what they are about (`edited` records an edit in
managedFields as the API server does).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from auditor.config import DriftSettings
from auditor.drift import compute_drift
from auditor.kinds import is_namespaced
from auditor.model import DriftResult, Finding, Resource
from auditor.objects import flatten, to_resource
from auditor.safeyaml import load_documents
from auditor.scope import Scope
from tests.conftest import CliResult, run_cli

REALWORLD = Path(__file__).parent / "realworld"
FILES = sorted(p.name for p in (REALWORLD / "desired").glob("*.yaml"))
NAMESPACE = "demo"  # where the manifests without a namespace are applied
EDITED_AT = "2026-11-20T02:13:00Z"


def _group(body: dict[str, Any]) -> str:
    api_version = str(body["apiVersion"])
    return api_version.split("/")[0] if "/" in api_version else ""


def read(path: Path) -> list[dict[str, Any]]:
    source = str(path)
    return [obj for obj, _ in flatten(load_documents(path.read_text(), source), source)]


def desired(name: str) -> list[dict[str, Any]]:
    return read(REALWORLD / "desired" / name)


def live(name: str) -> list[dict[str, Any]]:
    return read(REALWORLD / "live" / name)


def as_desired(body: dict[str, Any], name: str) -> Resource:
    # namespaces defaulted as kubectl (and the desired reader) does
    namespaced = is_namespaced(_group(body), str(body["kind"]))
    namespace = (body["metadata"].get("namespace") or NAMESPACE) if namespaced else ""
    return to_resource(
        copy.deepcopy(body),
        source=name,
        line=1,
        side="desired",
        cluster="prod",
        origin=f"{name}@abc123",
        namespace=namespace,
    )


def as_live(body: dict[str, Any]) -> Resource:
    return to_resource(
        copy.deepcopy(body), source="cluster", line=1, side="live", cluster="prod", origin="prod"
    )


def drift(
    want: list[dict[str, Any]], have: list[dict[str, Any]], settings: DriftSettings | None = None
) -> DriftResult:
    resources = [as_desired(b, "manifests.yaml") for b in want]
    return compute_drift(
        resources,
        [as_live(b) for b in have],
        scope=Scope.from_desired(resources),
        settings=settings or DriftSettings(),
    )


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def edited(
    body: dict[str, Any], manager: str, fields: dict[str, Any], *, steal: bool = True
) -> dict[str, Any]:
    """Records an Update by `manager` owning `fields`, as the API server does for an edit.

    An Update takes the fields it changed away from every other manager (`steal`).
    """
    entries = body["metadata"]["managedFields"]
    if steal:
        for entry in entries:
            _disown(entry["fieldsV1"], fields)
    entries.append(
        {
            "apiVersion": body["apiVersion"],
            "fieldsType": "FieldsV1",
            "fieldsV1": copy.deepcopy(fields),  # later edits take fields away from it
            "manager": manager,
            "operation": "Update",
            "time": EDITED_AT,
        }
    )
    return body


def _disown(owned: dict[str, Any], taken: dict[str, Any]) -> None:
    for token, sub in taken.items():
        if token not in owned:
            continue
        if sub and isinstance(owned[token], dict):
            _disown(owned[token], sub)
        else:
            del owned[token]


def summary(finding: Finding) -> tuple[Any, ...]:
    who = finding.changed_by
    return (
        finding.check,
        finding.ref.kind,
        finding.ref.name,
        finding.path,
        finding.drift_class,
        finding.severity,
        finding.expected,
        finding.actual,
        None if who is None else (who.manager, who.operation, who.time),
    )


def snapshot_file(path: Path, objects: list[dict[str, Any]]) -> Path:
    """`objects` as `kubectl get -o json` prints a list of them."""
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    return path


def drift_cli(repo: Path, snapshot: Path, *args: str) -> CliResult:
    """`auditor drift` on the repo's `apps/` against a snapshot, as the real-world tests run it."""
    return run_cli(
        "drift",
        "--repo",
        str(repo),
        "--path",
        "apps",
        "--live-snapshot",
        str(snapshot),
        "--default-namespace",
        NAMESPACE,
        *args,
    )

"""compute_drift: desired and live `Resource`s in, findings and per-object status out.

A pure function: no I/O, no clock, inputs never mutated, output order deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from auditor.checks import DRIFT_ADDED as ADDED
from auditor.checks import DRIFT_CHANGED as CHANGED
from auditor.checks import DRIFT_MISSING as MISSING
from auditor.checks import DRIFT_REMOVED as REMOVED
from auditor.checks import DRIFT_UNMANAGED as UNMANAGED
from auditor.checks import default_severity
from auditor.config import DriftSettings
from auditor.drift.added import added_by, find_added, outside
from auditor.drift.attribute import changed_by
from auditor.drift.canonical import canonical_view
from auditor.drift.classify import classify_kind, classify_path
from auditor.drift.compare import compare_bodies
from auditor.drift.coverage import blind_spots
from auditor.drift.ignore import IgnoreMatcher, ObjectIgnores, hpa_targets
from auditor.drift.kserve import admitted_view
from auditor.drift.managed_fields import managed_entries
from auditor.drift.normalize import is_typed, quantity_parents_for
from auditor.drift.owned import is_tracking_metadata
from auditor.drift.pointer import Step, merge_key, to_pointer, tokens_of
from auditor.drift.removed import find_removed, last_applied_value
from auditor.drift.unmanaged import can_be_unmanaged
from auditor.drift.versions import served_view
from auditor.model import (
    ChangedBy,
    DriftClass,
    DriftResult,
    DriftSummary,
    Finding,
    Resource,
    ResourceRef,
    ResourceStatus,
    Severity,
)
from auditor.model import ResourceStatusName as Status
from auditor.scope import Scope

_MAX_SHOWN = 120  # characters of a value a message shows before eliding


def compute_drift(
    desired: Sequence[Resource],
    live: Sequence[Resource],
    *,
    scope: Scope,
    settings: DriftSettings,
) -> DriftResult:
    """Compares what Git declares with what one cluster holds.

    Desired objects are matched to live ones by group, kind, namespace and name. Each is
    `missing`, `in_sync` or `drifted`; live objects in scope that Git does not declare and
    no object owns are `unmanaged`. Findings are sorted by namespace, kind, name and path.
    `notes` say what could not be checked (compared objects without managedFields).
    """
    live_by_key = {r.ref.match_key: r for r in live}
    ignores = IgnoreMatcher(
        settings.ignore,
        hpa_targets=hpa_targets([*desired, *live]) if settings.ignore_hpa_replicas else frozenset(),
        ignore_aggregated_roles=settings.ignore_aggregated_roles,
    )
    differ = _Differ(settings)
    findings: list[Finding] = []
    statuses: list[ResourceStatus] = []
    declared: set[tuple[str, str, str, str]] = set()
    compared: list[Resource] = []  # the live side of every pair compared field by field

    for want in desired:
        key = want.ref.match_key
        if key in declared:
            continue  # the desired reader reports duplicates; compare the first only
        declared.add(key)
        ignored = ignores.for_object(want.ref, want.body)
        have = live_by_key.get(key)
        if have is None:
            if ignored.whole:
                statuses.append(ResourceStatus(want.ref, "in_sync", want.origin, want.line))
                continue
            findings.append(differ.missing(want))
            statuses.append(ResourceStatus(want.ref, "missing", want.origin, want.line))
            continue
        if not ignored.whole:
            compared.append(have)
        found = [] if ignored.whole else differ.object_drift(want, have, ignored)
        findings.extend(found)
        status: Status = "drifted" if found else "in_sync"
        statuses.append(ResourceStatus(have.ref, status, want.origin, want.line))

    for have in live:
        if have.ref.match_key in declared or not scope.includes(have.ref):
            continue
        if not can_be_unmanaged(have) or ignores.for_ref(have.ref).whole:
            continue
        findings.append(differ.unmanaged(have))
        statuses.append(ResourceStatus(have.ref, "unmanaged", None))

    findings.sort(key=_finding_order)
    statuses.sort(key=lambda s: _ref_order(s.ref))
    counts = {name: 0 for name in ("in_sync", "drifted", "missing", "unmanaged")}
    for entry in statuses:
        counts[entry.status] += 1
    summary = DriftSummary(resources=len(statuses), **counts)
    return DriftResult(
        findings=tuple(findings),
        summary=summary,
        statuses=tuple(statuses),
        notes=blind_spots(compared),
    )


def _ref_order(ref: ResourceRef) -> tuple[str, ...]:
    return (ref.namespace, ref.kind, ref.name, ref.group, ref.cluster)


def _finding_order(finding: Finding) -> tuple[str, ...]:
    ref = finding.ref
    return (ref.namespace, ref.kind, ref.name, finding.path, finding.check, ref.group)


class _Differ:
    """Builds the findings of one run's settings."""

    def __init__(self, settings: DriftSettings) -> None:
        self.settings = settings
        self.gitops: Collection[str] = frozenset(settings.gitops_managers)
        self.human: Collection[str] = frozenset(settings.human_managers)

    def severity(self, check: str, drift_class: DriftClass) -> Severity:
        """A missing or unmanaged object has its check's severity; a changed, removed or added
        field its class's. Config's per-check overrides are applied later, for every category."""
        if check in (MISSING, UNMANAGED):
            return default_severity(check)
        return self.settings.class_severity.get(drift_class, "medium")

    def missing(self, want: Resource) -> Finding:
        cls = classify_kind(want.ref.group, want.ref.kind)
        return Finding(
            category="drift",
            check=MISSING,
            severity=self.severity(MISSING, cls),
            ref=want.ref,
            path="",
            message=f"{want.ref.display()}: declared in Git ({want.origin}), not live",
            drift_class=cls,
            details={"origin": want.origin},
        )

    def unmanaged(self, have: Resource) -> Finding:
        cls = classify_kind(have.ref.group, have.ref.kind)
        return Finding(
            category="drift",
            check=UNMANAGED,
            severity=self.severity(UNMANAGED, cls),
            ref=have.ref,
            path="",
            message=(
                f"{have.ref.display()}: live, but not declared in Git and not owned by "
                "another object"
            ),
            drift_class=cls,
            details={"origin": have.origin},
        )

    def object_drift(self, want: Resource, have: Resource, ignored: ObjectIgnores) -> list[Finding]:
        ref = have.ref
        # Git in the version live was read at, as admission webhooks that rewrite (not just
        # default) fields would store it, in the API server's canonical form
        wanted = admitted_view(ref.group, ref.kind, served_view(want.body, have.body), have.body)
        wanted = canonical_view(ref.group, ref.kind, wanted, have.body)
        typed = is_typed(ref.group, ref.kind)
        changes = [
            c
            for c in compare_bodies(
                wanted, have.body, quantity_parents_for(ref.group, ref.kind), typed=typed
            )
            if not ignored.ignores(tokens_of(c.steps))
        ]
        entries = managed_entries(have.body)
        removals = [
            r
            for r in find_removed(wanted, have.body, entries, self.gitops)
            if not ignored.ignores(tokens_of(r.steps))
        ]
        added = find_added(wanted, have.body, entries, self.human, self.gitops)
        # each path is one check's: what Git sets is changed, what it stopped setting removed
        additions = [
            a
            for a in outside(added, [c.steps for c in changes] + [r.steps for r in removals])
            if not ignored.ignores(tokens_of(a.steps))
        ]
        out = []
        for change in changes:
            who = changed_by(entries, change.steps, self.gitops)
            if not self._tool_tracking(change.steps, change.actual, who, have):
                out.append(
                    self.finding(
                        CHANGED, ref, change.steps, change.expected, change.actual, who, {}
                    )
                )
        for removal in removals:
            who = changed_by(entries, removal.steps, self.gitops)
            details = {"source": removal.source}
            out.append(
                self.finding(REMOVED, ref, removal.steps, None, removal.actual, who, details)
            )
        for addition in additions:
            who = added_by(entries, addition)
            out.append(self.finding(ADDED, ref, addition.steps, None, addition.actual, who, {}))
        return out

    def _tool_tracking(
        self, steps: tuple[Step, ...], actual: Any, who: ChangedBy | None, have: Resource
    ) -> bool:
        """A tracking label the GitOps tool itself overwrote (Argo CD's label tracking sets
        `app.kubernetes.io/instance` to the application's name, whatever Git says).

        Only when the tool is the witness: it owns the field in managedFields, or its
        last-applied configuration holds the live value. Someone else's edit is drift.
        """
        tokens = tokens_of(steps)
        if not is_tracking_metadata(tokens):
            return False
        if who is not None and who.manager in self.gitops:
            return True
        return actual is not None and last_applied_value(have.body, tokens) == actual

    def finding(
        self,
        check: str,
        ref: ResourceRef,
        steps: tuple[Step, ...],
        expected: Any,
        actual: Any,
        who: ChangedBy | None,
        details: dict[str, Any],
    ) -> Finding:
        cls = classify_path(ref.group, ref.kind, steps)
        path = to_pointer(tokens_of(steps))
        key = merge_key(steps)
        if key is not None:
            details = {**details, "key": key}
        return Finding(
            category="drift",
            check=check,
            severity=self.severity(check, cls),
            ref=ref,
            path=path,
            message=_message(check, ref, path, key, expected, actual, who),
            expected=expected,
            actual=actual,
            drift_class=cls,
            changed_by=who,
            details=details,
        )


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _message(
    check: str,
    ref: ResourceRef,
    path: str,
    key: dict[str, Any] | None,
    expected: Any,
    actual: Any,
    who: ChangedBy | None,
) -> str:
    where = path
    if key is not None and path.rsplit("/", 1)[-1].isdigit():
        # an element: name it by its key, the index alone says little
        where += " (" + ", ".join(f"{k} {_show(v)}" for k, v in key.items()) + ")"
    if check == REMOVED:
        text = f"{where} is no longer set in Git but still live as {_show(actual)}"
    elif check == ADDED:
        text = f"{where} is not set in Git; added live as {_show(actual)}"
    elif actual is None:
        shown = "set" if isinstance(expected, (dict, list)) else f"{_show(expected)}"
        text = f"{where} is {shown} in Git, absent live"
    else:
        text = f"{where} is {_show(expected)} in Git, {_show(actual)} live"
    if who is not None:
        text += f" (changed by {who.manager}" + (f" at {who.time})" if who.time else ")")
    return f"{ref.display()}: {text}"

"""`auditor doctor`: whether a config can run, part by part, before the nightly job finds out.

Each part is checked the way the audit will use it: the config loaded and validated; Git
opened and the revision resolved (and the manifests read); each cluster reached with its own
credentials and asked, with a SelfSubjectAccessReview, whether it may list every kind the
audit lists (the same list `auditor deploy rbac` grants, `pipeline.read_access`'s); the trust
roots and keys read; the store and report writable. Every broken part is named, not only the
first: a check that fails never stops the others that do not depend on it.

Like `pipeline.py`, this module puts stages together (desired, live, store, reports).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.config import ClusterSource, Config, load_config, parse_config
from auditor.errors import AuditorError, ConfigError
from auditor.exit_codes import ExitCode
from auditor.located import read_yaml_mapping
from auditor.model import DesiredState, short_sha
from auditor.pipeline import scope_and_access
from auditor.rbac import ReadAccess
from auditor.scope import Scope

DOCTOR_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Check:
    """One part of the setup, and what was found."""

    part: str  # config, git, cluster prod, cluster prod: list secrets in ml, trust, store, ...
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"part": self.part, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Diagnosis:
    checks: tuple[Check, ...]
    config_loaded: bool

    @property
    def broken(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    @property
    def exit_code(self) -> ExitCode:
        """0 when every part works; 2 when the config cannot be loaded; 3 when a part is
        broken (unreachable, unreadable, forbidden, not writable)."""
        if not self.config_loaded:
            return ExitCode.USAGE
        return ExitCode.INCOMPLETE if self.broken else ExitCode.CLEAN


def diagnose(config_path: str) -> Diagnosis:
    """Every check for the config at `config_path`; never raises for what it finds."""
    checks: list[Check] = []
    config = _load(config_path, checks)
    if config is None:
        return Diagnosis(tuple(checks), config_loaded=False)
    desired = _attempt(checks, "git", lambda: _read_git(config))
    access = _access(config, desired, checks)
    for cluster in config.clusters:
        checks.extend(_cluster_checks(config, cluster, access))
    checks.extend(_trust_checks(config))
    checks.extend(_policy_checks(config))
    checks.extend(_output_checks(config))
    return Diagnosis(tuple(checks), config_loaded=True)


def _load(path: str, checks: list[Check]) -> Config | None:
    """The config; with a broken `trust:` section, the rest of it (so the other parts are
    still checked) and a failed trust check."""
    try:
        config = load_config(path)
    except AuditorError as exc:
        rest = _without_trust(path)
        if rest is None:
            checks.append(Check("config", False, exc.diagnostics()))
            return None
        checks.append(Check("config", True, f"{path}: valid apart from trust:"))
        checks.append(Check("trust", False, exc.diagnostics()))
        return rest
    checks.append(Check("config", True, f"{path}: valid"))
    return config


def _without_trust(path: str) -> Config | None:
    try:
        raw, lines = read_yaml_mapping(path, what="config file", not_mapping="not a mapping")
        if "trust" not in raw:
            return None
        rest = {k: v for k, v in raw.items() if k != "trust"}
        return parse_config(rest, source=path, lines=lines)
    except AuditorError:
        return None


def _attempt(checks: list[Check], part: str, step: Callable[[], tuple[Any, str]]) -> Any:
    """Runs `step` (returning a value and what to say about it) as the check `part`."""
    try:
        value, detail = step()
    except AuditorError as exc:
        checks.append(Check(part, False, exc.diagnostics()))
        return None
    checks.append(Check(part, True, detail))
    return value


def _read_git(config: Config) -> tuple[DesiredState, str]:
    from auditor.desired import read_desired

    desired = read_desired(config.git, limits=config.limits, keep_files=False)
    paths = ", ".join(config.git.paths)
    detail = (
        f"{desired.repo} at {desired.revision}: commit {short_sha(desired.commit)}, "
        f"{len(desired.resources)} objects under {paths}"
    )
    return desired, detail


def _access(
    config: Config, desired: DesiredState | None, checks: list[Check]
) -> tuple[Scope, list[ReadAccess]] | None:
    """The scope and the kinds to list in it; None when they cannot be known (Git unread and
    no `scope.kinds`), which the failed git check already says."""
    if desired is None and config.scope.kinds is None:
        return None
    resources = desired.resources if desired is not None else ()
    try:
        return scope_and_access(config, resources)
    except ConfigError as exc:
        checks.append(Check("scope", False, exc.diagnostics()))
        return None


def _cluster_checks(
    config: Config, cluster: ClusterSource, access: tuple[Scope, list[ReadAccess]] | None
) -> Iterator[Check]:
    part = f"cluster {cluster.name}"
    if cluster.snapshots:
        unreadable = [s for s in cluster.snapshots if not _readable_file(s)]
        if unreadable:
            yield Check(part, False, f"snapshot not a readable file: {', '.join(unreadable)}")
        else:
            yield Check(part, True, f"snapshot {', '.join(cluster.snapshots)}")
        return
    from auditor.live.access import AccessReviewer

    try:
        reviewer = AccessReviewer.connect(cluster, timeout=DOCTOR_TIMEOUT_SECONDS)
    except AuditorError as exc:
        yield Check(part, False, exc.diagnostics())
        return
    with reviewer:
        reached = reviewer.reach()
        yield Check(part, reached.ok, reached.detail)
        if not reached.ok or access is None:
            return
        scope, kinds = access
        for kind in kinds:
            for namespace in _namespaces(kind, scope):
                where = f" in {namespace}" if namespace else ""
                answer = reviewer.may_list(kind, namespace)
                yield Check(f"{part}: list {kind.qualified}{where}", answer.ok, answer.detail)


def _namespaces(kind: ReadAccess, scope: Scope) -> Sequence[str]:
    """Where the live stage lists `kind`: each literal namespace in scope, or "" for one
    cluster-wide list."""
    if not kind.namespaced:
        return ("",)
    return scope.namespaces_to_list() or ("",)


def _trust_checks(config: Config) -> Iterator[Check]:
    if config.trust is not None:
        names = ", ".join(a.name for a in config.trust.authorities)
        yield Check("trust", True, f"{len(config.trust.authorities)} authorities read: {names}")
    signers = config.provenance
    for path in (signers.ssh_allowed_signers, *signers.gpg_keys):
        if path is not None:
            ok = _readable_file(path)
            yield Check("commit signers", ok, path if ok else f"{path}: not a readable file")
    if config.models_root is not None:
        ok = os.path.isdir(config.models_root) and os.access(config.models_root, os.R_OK)
        detail = config.models_root if ok else f"{config.models_root}: not a readable folder"
        yield Check("models root", ok, detail)


def _policy_checks(config: Config) -> Iterator[Check]:
    """The policies load and compile as an audit would load them, and on which engine."""
    if not config.policy.enabled:
        return
    from auditor.policy.stage import describe_engine

    try:
        yield Check("policy", True, describe_engine(config.policy))
    except AuditorError as exc:
        yield Check("policy", False, exc.diagnostics())


def _output_checks(config: Config) -> Iterator[Check]:
    if config.store:
        yield _store_check(config.store)
    if config.report:
        from auditor.reports.files import check_report_path

        try:
            check_report_path(config.report)
            yield Check("report", True, f"{config.report}: writable")
        except AuditorError as exc:
            yield Check("report", False, exc.diagnostics())


def _store_check(path: str) -> Check:
    """The store can take a write: an existing one gives its write lock (and gives it back
    untouched), a new one can be created in its folder (nothing is left there)."""
    target = Path(path)
    try:
        if target.exists():
            db = sqlite3.connect(f"file:{target}?mode=rw", uri=True, timeout=5)
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute("ROLLBACK")
            finally:
                db.close()
            return Check("store", True, f"{path}: writable")
        folder = _existing_parent(target)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".auditor-doctor-"):
            pass
        return Check("store", True, f"{path}: will be created (in {folder}, writable)")
    except (OSError, sqlite3.Error) as exc:
        return Check("store", False, f"{path}: not writable: {exc}")


def _existing_parent(path: Path) -> Path:
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # the audit creates the folders below it
    return parent


def _readable_file(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.R_OK)


__all__ = ["Check", "Diagnosis", "diagnose"]

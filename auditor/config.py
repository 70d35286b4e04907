"""auditor.yaml: its schema, loading, and errors that name the file, key and line."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.defaults import DEFAULT_POLICY_MEMORY_BYTES, DEFAULT_POLICY_TIMEOUT_SECONDS
from auditor.errors import ConfigError
from auditor.located import (
    NO_LINES,
    Lines,
    key_text,
    located_error,
    read_yaml_mapping,
    resolve_path,
    validate,
    validate_trust,
)
from auditor.model import Severity
from auditor.repo_paths import RepoPathError, repo_path

if TYPE_CHECKING:
    from auditor.trust import TrustPolicy

# Field managers that apply Git's content. A field one of these owns that Git no longer
# sets is `drift.removed`; a field another manager wrote is attributed to that manager.
DEFAULT_GITOPS_MANAGERS: tuple[str, ...] = (
    "argocd-controller",
    "argocd-application-controller",
    "kustomize-controller",
    "helm-controller",
    "kubectl-client-side-apply",
    "kubectl",
)

# Field managers people drive by hand. A field Git does not set that one of these owns in
# managedFields, and no GitOps manager or controller does, is `drift.added`. A manager in both
# lists (kubectl-client-side-apply by default) counts as a GitOps applier: see
# auditor/drift/added.py for why.
DEFAULT_HUMAN_MANAGERS: tuple[str, ...] = (
    "kubectl-edit",
    "kubectl-patch",
    "kubectl-set",
    "kubectl-client-side-apply",
    "kubectl-label",
    "kubectl-annotate",
)

DEFAULT_CLASS_SEVERITY: Mapping[str, Severity] = {
    "model": "critical",
    "runtime": "high",
    "traffic": "high",
    "scale": "medium",
    "config": "medium",
}


@dataclass(frozen=True, slots=True)
class GitSource:
    """The `git:` section: the repository, revision and paths audited."""

    repo: str  # a local path or a URL (file://, https://, ssh)
    revision: str = "HEAD"
    paths: tuple[str, ...] = (".",)
    cache_dir: str | None = None  # where URL repos are cloned
    default_namespace: str = "default"


@dataclass(frozen=True, slots=True)
class ClusterSource:
    """One entry of `clusters:`: a kubeconfig context, in-cluster, or snapshot files."""

    name: str
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    snapshots: tuple[str, ...] = ()  # read these files instead of a cluster


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    """Drift to leave alone: objects matched by globs, at JSON pointers (all when empty)."""

    kind: str = "*"  # `Deployment`, `apps/Deployment`, or a glob
    name: str = "*"
    namespace: str = "*"
    pointers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DriftSettings:
    """The `drift:` section: ignore rules, field managers, severities by class."""

    ignore: tuple[IgnoreRule, ...] = ()
    gitops_managers: tuple[str, ...] = DEFAULT_GITOPS_MANAGERS
    human_managers: tuple[str, ...] = DEFAULT_HUMAN_MANAGERS
    class_severity: Mapping[str, Severity] = field(
        default_factory=lambda: dict(DEFAULT_CLASS_SEVERITY)
    )
    # An HPA owns the replicas of the object it scales: built in, as Argo CD users configure it.
    ignore_hpa_replicas: bool = True
    # The rules of a ClusterRole with an aggregationRule are written by a controller: Argo CD's
    # default install ignores them too (resource.compareoptions ignoreAggregatedRoles).
    ignore_aggregated_roles: bool = True


@dataclass(frozen=True, slots=True)
class ScopeSettings:
    """The `scope:` section: the kinds and namespaces audited."""

    kinds: tuple[str, ...] | None = None  # None: the kinds Git declares
    namespaces: tuple[str, ...] | None = None  # None: the namespaces Git declares
    exclude_namespaces: tuple[str, ...] = ()


BUILTIN_POLICIES = "builtin"  # in policy.paths: the library shipped in policies/


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """Which Rego policies `auditor audit` evaluates, and on which engine."""

    enabled: bool = True
    paths: tuple[str, ...] = (BUILTIN_POLICIES,)
    data: tuple[str, ...] = ()  # JSON/YAML data documents (policy parameters)
    engine: str = "embedded"  # embedded | opa
    opa_url: str | None = None
    opa_token_file: str | None = None
    opa_upload: bool = True
    opa_timeout_seconds: float = 10.0
    # The time budget of one evaluation by the embedded engine: a policy that overruns it is
    # stopped, an `error` evaluation (the run incomplete) while the others go on.
    timeout_seconds: float = DEFAULT_POLICY_TIMEOUT_SECONDS
    # The memory one worker of the embedded engine may allocate beyond the inputs it inherits:
    # a policy past it is an `error` evaluation, never the machine's memory.
    memory_bytes: int = DEFAULT_POLICY_MEMORY_BYTES
    # Whether the embedded engine runs the policies on regorus's compiled VM, checked against
    # its interpreter (policy/vm.py); None (`auto`): for the shipped library alone, which its
    # tests hold to the same results on both. gordon-to-regorus 0.13's VM turns an undefined
    # value into a value in ways its output does not always show, so Rego the tests have not
    # compared stays on the interpreter unless `vm: true`.
    vm: bool | None = None

    def uses_vm(self) -> bool:
        """`vm`, or for `auto`: whether the policies are the shipped library alone."""
        return self.vm if self.vm is not None else self.paths == (BUILTIN_POLICIES,)

    def resolved_paths(self) -> tuple[str, ...]:
        """`builtin` replaced by the shipped library's folder."""
        from auditor.shipped import shipped_path

        return tuple(
            str(shipped_path("policies")) if p == BUILTIN_POLICIES else p for p in self.paths
        )


ATTESTATION_PLACEHOLDERS = ("namespace", "name")


@dataclass(frozen=True, slots=True)
class ProvenanceSettings:
    """Where `auditor audit` finds attestations in Git, and who may sign the audited commit.

    Paths in Git (`attestations`, `lockfile`) are repo-relative and read at the audited
    commit; signer files are local trust material, resolved against the config's directory.
    """

    attestations: str | None = None  # e.g. `attestations/{namespace}/{name}`
    lockfile: str | None = None  # dvc.lock in Git; default: trust.datasets.lockfile in the repo
    lockfile_stages: str = "*"  # which dvc.lock stages pin a model's datasets (a glob)
    ssh_allowed_signers: str | None = None
    gpg_keys: tuple[str, ...] = ()

    @property
    def verifies_commits(self) -> bool:
        return self.ssh_allowed_signers is not None or bool(self.gpg_keys)


# The serving kinds judged at admission when neither `admission.kinds` nor `scope.kinds` says.
DEFAULT_ADMISSION_KINDS = (
    "serving.kserve.io/InferenceService",
    "machinelearning.seldon.io/SeldonDeployment",
    "apps/Deployment",
)


@dataclass(frozen=True, slots=True)
class AdmissionSettings:
    """`auditor admission serve`: the webhook's time budget, scope, cache and Git refresh."""

    # Below the ValidatingWebhookConfiguration's timeoutSeconds, so auditor answers (deny)
    # before the API server gives up and applies its own failurePolicy.
    timeout_seconds: float = 2.0
    fail_open_namespaces: tuple[str, ...] = ()  # globs; every other namespace fails closed
    kinds: tuple[str, ...] | None = None  # None: scope.kinds, else DEFAULT_ADMISSION_KINDS
    cluster: str | None = None  # the name decisions carry; default: the first cluster's
    cache_size: int = 1024  # verification results kept (0: no cache)
    cache_ttl_seconds: float = 300.0
    refresh_seconds: float = 60.0  # how often the attestations' Git clone is refreshed
    # The API server sends at most 3 MiB objects; a review is that plus oldObject and framing.
    max_body_bytes: int = 7 * 1024 * 1024
    queue_size: int = 10_000  # decisions waiting for the store before new ones are dropped


@dataclass(frozen=True, slots=True)
class Limits:
    """The `limits:` section: what untrusted input may cost."""

    max_manifest_bytes: int = 8 * 1024 * 1024
    max_snapshot_bytes: int = 1024 * 1024 * 1024
    max_response_bytes: int = 256 * 1024 * 1024
    page_size: int = 500
    request_timeout_seconds: float = 30.0
    # kustomize runs under these: a render that runs away is an error, not a machine out of
    # memory. Go reserves about 1 GiB of address space at start, hence the generous default.
    render_timeout_seconds: float = 300.0
    render_memory_bytes: int = 4 * 1024 * 1024 * 1024


# Cluster reads wait on API servers: a few at once hide most of that wait, and each in flight
# holds one cluster's live objects in memory.
DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True, slots=True)
class Config:
    """A whole auditor.yaml (or `auditor drift`'s flags), validated."""

    path: str  # the file it was loaded from ("" when built from flags)
    git: GitSource
    clusters: tuple[ClusterSource, ...]
    scope: ScopeSettings = ScopeSettings()
    drift: DriftSettings = field(default_factory=DriftSettings)
    policy: PolicySettings = PolicySettings()
    limits: Limits = Limits()
    store: str | None = None
    report: str | None = None
    fail_on: Severity = "high"
    trust: TrustPolicy | None = None  # the `trust:` section, when present
    models_root: str | None = None  # model files reachable here (a mounted volume or mirror)
    provenance: ProvenanceSettings = ProvenanceSettings()
    # `severity.checks`: per check id (drift, provenance, policy ids), applied to every finding
    severity_overrides: Mapping[str, Severity] = field(default_factory=dict)
    # how many clusters are read at once; their results keep the configured order
    concurrency: int = DEFAULT_CONCURRENCY
    admission: AdmissionSettings = AdmissionSettings()

    @property
    def verifies_provenance(self) -> bool:
        """`auditor audit` has provenance to verify: models (a trust policy), or the audited
        commit's signature (`provenance.commit_signers`, which needs no trust policy)."""
        return self.trust is not None or self.provenance.verifies_commits

    @classmethod
    def for_drift(
        cls,
        *,
        config_file: str | None = None,
        repo: str | None = None,
        revision: str | None = None,
        paths: Sequence[str] = (),
        snapshots: Sequence[str] = (),
        kubeconfig: str | None = None,
        contexts: Sequence[str] = (),
        namespaces: Sequence[str] = (),
        default_namespace: str | None = None,
    ) -> Config:
        """The Config `auditor drift` runs with: its flags on top of `config_file`, if given.

        - `repo` replaces the file's whole Git source: revision `HEAD` and path `.` unless
          given, only the file's `cache_dir` and `default_namespace` kept. Without `repo`,
          `revision` and `paths` override the file's.
        - `snapshots` (one cluster named `snapshot`) and `kubeconfig`/`contexts` (one cluster
          per context, or the current context) replace the file's clusters; with none of
          them the file's clusters stay. Snapshots and contexts exclude each other.
        - `namespaces` replace the file's scope; `default_namespace` the Git default.
        - A local `repo` resolves against the current directory; snapshot and kubeconfig
          paths are kept as given, for the command's own working directory.

        Raises ConfigError naming the flag (`--repo` missing without a file, `--live-snapshot`
        with `--kubeconfig`/`--context`), and any error of the file itself.
        """
        # drift verifies nothing: the trust section's shape is checked, its material not read
        base = load_config(config_file, trust_material=False) if config_file else None
        if base is None and not repo:
            raise ConfigError(
                "--repo is required (or --config naming a file with git.repo)", key="--repo"
            )
        if snapshots and (kubeconfig or contexts):
            raise ConfigError(
                "--live-snapshot cannot be combined with --kubeconfig or --context",
                key="--live-snapshot",
            )
        git = _drift_git(base.git if base else None, repo, revision, paths, default_namespace)
        clusters = _drift_clusters(base.clusters if base else None, snapshots, kubeconfig, contexts)
        scope = base.scope if base else ScopeSettings()
        if namespaces:
            scope = dataclasses.replace(scope, namespaces=tuple(namespaces))
        if base is not None:
            return dataclasses.replace(base, git=git, clusters=clusters, scope=scope)
        return cls(path="", git=git, clusters=clusters, scope=scope)


def _drift_git(
    base: GitSource | None,
    repo: str | None,
    revision: str | None,
    paths: Sequence[str],
    default_namespace: str | None,
) -> GitSource:
    """`auditor drift`'s Git source; `base` is None only when `repo` is given."""
    if repo:
        # Another repository: the file's revision and paths name things in its own, so only
        # the settings about where and how to read (cache, default namespace) carry over.
        kept = base or GitSource(repo="")
        git = GitSource(
            repo=repo if is_url(repo) else str(Path(repo).resolve()),
            revision=revision or "HEAD",
            paths=tuple(paths) or (".",),
            cache_dir=kept.cache_dir,
            default_namespace=kept.default_namespace,
        )
    else:
        assert base is not None
        git = dataclasses.replace(
            base, revision=revision or base.revision, paths=tuple(paths) or base.paths
        )
    if default_namespace:
        git = dataclasses.replace(git, default_namespace=default_namespace)
    return git


def _drift_clusters(
    base: tuple[ClusterSource, ...] | None,
    snapshots: Sequence[str],
    kubeconfig: str | None,
    contexts: Sequence[str],
) -> tuple[ClusterSource, ...]:
    """`auditor drift`'s clusters; `base` is the file's, None without a file."""
    if snapshots:
        return (ClusterSource(name="snapshot", snapshots=tuple(str(Path(s)) for s in snapshots)),)
    if kubeconfig or contexts or base is None:
        return tuple(
            ClusterSource(name=ctx or "current", kubeconfig=kubeconfig, context=ctx)
            for ctx in (contexts or (None,))
        )
    return base


# ---------------------------------------------------------------------------------------------
# Loading


SCHEMA_FILE = Path(__file__).parent / "schemas" / "auditor.schema.json"
# a scheme (`https://`, `file://`, `ssh://`, any case) or scp-like `git@host:org/repo`
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^[\w.-]+@[\w.-]+:")


def is_url(repo: str) -> bool:
    """A Git URL (`https://`, `file://`, `ssh://`, `git@host:org/repo`) rather than a path."""
    return bool(_URL.match(repo))


def _strings(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _resolve(base: Path, value: str) -> str:
    return str(resolve_path(base, value))


def parse_config(
    raw: dict[str, Any], *, source: str, lines: Lines | None = None, trust_material: bool = True
) -> Config:
    """Validates a loaded auditor.yaml mapping and builds the `Config`.

    Relative paths resolve against the directory of `source`. Without `trust_material` (a
    command that verifies nothing: `auditor drift`), the `trust:` section is held to the
    schema but its keys, certificates and trust roots are not read, and `trust` is None.
    """
    lines = lines or NO_LINES
    validate(raw, SCHEMA_FILE, source, lines)
    base = Path(source).resolve().parent if source else Path.cwd()
    severity_raw = raw.get("severity", {})
    _check_model_settings(raw, source, lines)
    trust = None
    if "trust" in raw and trust_material:
        # imported here: trust material pulls in sigstore and cryptography (a third of a
        # second), which a command that verifies nothing never needs to pay for
        from auditor.trust import parse_trust

        trust = parse_trust(raw["trust"], source=source, lines=lines, base_dir=base)
    elif "trust" in raw:
        validate_trust(raw["trust"], source, lines)
    models_root = raw.get("models", {}).get("root")
    return Config(
        path=str(Path(source).resolve()) if source else "",
        git=_git_source(raw["git"], base),
        clusters=_cluster_sources(raw["clusters"], base, source, lines),
        scope=_scope_settings(raw.get("scope", {})),
        drift=_drift_settings(raw.get("drift", {}), severity_raw),
        policy=_policy_settings(raw.get("policy", {}), base, source, lines),
        limits=Limits(**raw.get("limits", {})),
        trust=trust,
        models_root=_resolve(base, models_root) if models_root else None,
        provenance=_provenance_settings(raw.get("provenance", {}), base, source, lines),
        store=_resolve(base, raw["store"]) if "store" in raw else None,
        report=_resolve(base, raw["report"]) if "report" in raw else None,
        fail_on=raw.get("fail_on", "high"),
        severity_overrides=dict(severity_raw.get("checks", {})),
        concurrency=raw.get("concurrency", DEFAULT_CONCURRENCY),
        admission=_admission_settings(raw.get("admission", {})),
    )


def _admission_settings(raw: Mapping[str, Any]) -> AdmissionSettings:
    # the schema has checked every key and bound; fields not given keep their defaults
    given = dict(raw)
    for key in ("fail_open_namespaces", "kinds"):
        if key in given:
            given[key] = tuple(given[key])
    return AdmissionSettings(**given)


def _git_source(git_raw: Mapping[str, Any], base: Path) -> GitSource:
    repo = git_raw["repo"]
    return GitSource(
        repo=repo if is_url(repo) else _resolve(base, repo),
        revision=git_raw.get("revision", "HEAD"),
        paths=_strings(git_raw.get("paths")) or (".",),
        cache_dir=_resolve(base, git_raw["cache_dir"]) if "cache_dir" in git_raw else None,
        default_namespace=git_raw.get("default_namespace", "default"),
    )


def _cluster_sources(
    items: Sequence[Mapping[str, Any]], base: Path, source: str, lines: Lines
) -> tuple[ClusterSource, ...]:
    clusters: list[ClusterSource] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        key: list[str | int] = ["clusters", index]
        name = item["name"]
        if name in seen:
            raise located_error(
                f"cluster name {name!r} is used twice", source, lines, [*key, "name"]
            )
        seen.add(name)
        snapshots = _strings(item.get("snapshot"))
        live_keys = [k for k in ("kubeconfig", "context", "in_cluster") if k in item]
        if snapshots and live_keys:
            raise located_error(
                f"cluster {name!r} sets both snapshot and {live_keys[0]}: choose one source",
                source,
                lines,
                [*key, live_keys[0]],
                of_key=True,
            )
        if item.get("in_cluster") and ("kubeconfig" in item or "context" in item):
            raise located_error(
                f"cluster {name!r}: in_cluster cannot be combined with kubeconfig or context",
                source,
                lines,
                [*key, "in_cluster"],
                of_key=True,
            )
        clusters.append(
            ClusterSource(
                name=name,
                kubeconfig=_resolve(base, item["kubeconfig"]) if "kubeconfig" in item else None,
                context=item.get("context"),
                in_cluster=bool(item.get("in_cluster", False)),
                snapshots=tuple(_resolve(base, s) for s in snapshots),
            )
        )
    return tuple(clusters)


def _scope_settings(scope_raw: Mapping[str, Any]) -> ScopeSettings:
    return ScopeSettings(
        kinds=tuple(scope_raw["kinds"]) if "kinds" in scope_raw else None,
        namespaces=tuple(scope_raw["namespaces"]) if "namespaces" in scope_raw else None,
        exclude_namespaces=tuple(scope_raw.get("exclude_namespaces", ())),
    )


def _drift_settings(drift_raw: Mapping[str, Any], severity_raw: Mapping[str, Any]) -> DriftSettings:
    return DriftSettings(
        ignore=tuple(
            IgnoreRule(
                kind=rule.get("kind", "*"),
                name=rule.get("name", "*"),
                namespace=rule.get("namespace", "*"),
                pointers=tuple(rule.get("pointers", ())),
            )
            for rule in drift_raw.get("ignore", ())
        ),
        gitops_managers=tuple(drift_raw.get("gitops_managers", DEFAULT_GITOPS_MANAGERS)),
        human_managers=tuple(drift_raw.get("human_managers", DEFAULT_HUMAN_MANAGERS)),
        class_severity={**DEFAULT_CLASS_SEVERITY, **severity_raw.get("classes", {})},
        ignore_hpa_replicas=drift_raw.get("ignore_hpa_replicas", True),
        ignore_aggregated_roles=drift_raw.get("ignore_aggregated_roles", True),
    )


def _policy_settings(
    policy_raw: Mapping[str, Any], base: Path, source: str, lines: Lines
) -> PolicySettings:
    opa_raw = policy_raw.get("opa", {})
    if policy_raw.get("engine") == "opa" and not opa_raw:
        raise located_error(
            "engine: opa needs an opa: {url: ...} section", source, lines, ["policy", "engine"]
        )
    return PolicySettings(
        enabled=policy_raw.get("enabled", True),
        paths=tuple(
            p if p == BUILTIN_POLICIES else _resolve(base, p)
            for p in _strings(policy_raw.get("paths"))
        )
        or (BUILTIN_POLICIES,),
        data=tuple(_resolve(base, p) for p in _strings(policy_raw.get("data"))),
        engine=policy_raw.get("engine", "embedded"),
        opa_url=opa_raw.get("url"),
        opa_token_file=_resolve(base, opa_raw["token_file"]) if "token_file" in opa_raw else None,
        opa_upload=opa_raw.get("upload", True),
        opa_timeout_seconds=opa_raw.get("timeout_seconds", 10.0),
        timeout_seconds=policy_raw.get("timeout_seconds", DEFAULT_POLICY_TIMEOUT_SECONDS),
        memory_bytes=policy_raw.get("memory_bytes", DEFAULT_POLICY_MEMORY_BYTES),
        vm=_vm_setting(policy_raw.get("vm", "auto")),
    )


def _vm_setting(value: bool | str) -> bool | None:
    return None if value == "auto" else bool(value)


def _repo_relative(value: str, source: str, lines: Lines, path: list[str | int]) -> str:
    """A path inside the audited repository: never absolute, never climbing out of it."""
    try:
        repo_path(value)
    except RepoPathError as exc:
        raise located_error(
            f"{exc}: it must be a path inside the Git repository", source, lines, path
        ) from None
    return value


def _template(value: str, source: str, lines: Lines, at: list[str | int]) -> str:
    """A value where `{namespace}` and `{name}` stand for the resource's."""
    try:
        value.format(**{k: "x" for k in ATTESTATION_PLACEHOLDERS})
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"{value!r} is not a template: {exc!s} (placeholders: "
            + ", ".join(f"{{{k}}}" for k in ATTESTATION_PLACEHOLDERS)
            + ")",
            file=source,
            line=lines.line(at),
            key=key_text(at),
        ) from None
    return value


def _provenance_settings(
    raw: Mapping[str, Any], base: Path, source: str, lines: Lines
) -> ProvenanceSettings:
    template = raw.get("attestations")
    if template is not None:
        at: list[str | int] = ["provenance", "attestations"]
        _template(_repo_relative(template, source, lines, at), source, lines, at)
    lockfile = raw.get("lockfile")
    if lockfile is not None:
        at = ["provenance", "lockfile"]
        _template(_repo_relative(lockfile, source, lines, at), source, lines, at)
    stages = _template(
        raw.get("lockfile_stages", "*"), source, lines, ["provenance", "lockfile_stages"]
    )
    signers = raw.get("commit_signers", {})
    _check_commit_signers(raw, source, lines)
    allowed = signers.get("ssh_allowed_signers")
    return ProvenanceSettings(
        attestations=template,
        lockfile=lockfile,
        lockfile_stages=stages,
        ssh_allowed_signers=_resolve(base, allowed) if allowed else None,
        gpg_keys=tuple(_resolve(base, k) for k in signers.get("gpg_keys", ())),
    )


# Settings that only feed the verification of models: without a trust policy no model is
# verified, so each would silently do nothing. (`provenance.commit_signers` is not among them:
# its trust material is its own signer files, and it verifies the commit without `trust:`.)
MODEL_SETTINGS: tuple[tuple[str, str], ...] = (
    ("provenance", "attestations"),
    ("provenance", "lockfile"),
    ("provenance", "lockfile_stages"),
    ("models", "root"),
)


def _check_model_settings(raw: Mapping[str, Any], source: str, lines: Lines) -> None:
    """A model setting without `trust:`, or stages of a lockfile nobody names, is a
    ConfigError: a security setting that does nothing must never look like it works. Read
    from the file as written (schema-checked), whether or not its trust material is loaded."""
    if "trust" not in raw:
        for section, key in MODEL_SETTINGS:
            if key in raw.get(section, {}):
                raise located_error(
                    "set, and there is no trust: section: no model is verified without a "
                    "trust policy, so it would do nothing; add trust: (authorities and "
                    "models) or remove it",
                    source,
                    lines,
                    [section, key],
                    of_key=True,
                )
    provenance = raw.get("provenance", {})
    datasets = (raw.get("trust") or {}).get("datasets") or {}
    no_lockfile = "trust" in raw and "lockfile" not in datasets
    if "lockfile_stages" in provenance and "lockfile" not in provenance and no_lockfile:
        raise located_error(
            "selects stages of a dvc.lock, and there is no lockfile (provenance.lockfile or "
            "trust.datasets.lockfile): it would do nothing",
            source,
            lines,
            ["provenance", "lockfile_stages"],
            of_key=True,
        )


def _check_commit_signers(raw: Mapping[str, Any], source: str, lines: Lines) -> None:
    """`commit_signers` that name no signer would verify no commit: refused."""
    if "commit_signers" not in raw:
        return
    signers = raw["commit_signers"]
    at: list[str | int] = ["provenance", "commit_signers"]
    if "gpg_keys" in signers and not signers["gpg_keys"]:
        at = [*at, "gpg_keys"]
    elif signers.get("ssh_allowed_signers") or signers.get("gpg_keys"):
        return
    raise located_error(
        "no signer is named (ssh_allowed_signers or gpg_keys): no commit would be verified",
        source,
        lines,
        at,
        of_key=True,
    )


def lockfile_in_repo(config: Config) -> str | None:
    """The dvc.lock to read from Git: `provenance.lockfile`, else `trust.datasets.lockfile`
    taken relative to the (local) repository. ConfigError when that cannot be in Git."""
    if config.provenance.lockfile:
        return config.provenance.lockfile
    assert config.trust is not None
    lockfile = config.trust.datasets.lockfile
    if lockfile is None:
        return None
    if is_url(config.git.repo):
        raise ConfigError(
            "trust.datasets.lockfile is a local path, and the audited repository is a URL: "
            "set provenance.lockfile to its path inside the repository",
            file=config.path or None,
            key="trust.datasets.lockfile",
        )
    repo = Path(config.git.repo).resolve()
    try:
        return Path(lockfile).resolve().relative_to(repo).as_posix()
    except ValueError:
        raise ConfigError(
            f"trust.datasets.lockfile {lockfile} is outside the audited repository {repo}: "
            "auditor reads the lockfile from Git at the audited commit",
            file=config.path or None,
            key="trust.datasets.lockfile",
        ) from None


def load_config(path: str | Path, *, trust_material: bool = True) -> Config:
    """Reads and validates auditor.yaml; every mistake is a ConfigError with file, key and line.
    `trust_material`: as `parse_config`."""
    raw, lines = read_yaml_mapping(
        path,
        what="config file",
        not_mapping="the config must be a mapping of keys (git:, clusters:, ...)",
    )
    return parse_config(raw, source=str(path), lines=lines, trust_material=trust_material)

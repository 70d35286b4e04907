"""The trust policy: which authorities exist, and which must have signed which models.

Read from the `trust:` key of auditor.yaml (`parse_trust`, called by config.py) or from a
standalone file with the same top key (`load_trust_policy`, for `auditor verify
--trust-policy`). Every mistake is a ConfigError naming the file, the key and the line; trust
material (keys, certificates, Sigstore roots) is loaded and checked here, once, so a policy
that loads is a policy that can verify.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from auditor.errors import ConfigError
from auditor.located import (
    NO_LINES,
    Lines,
    located_error,
    read_yaml_mapping,
    resolve_path,
    validate_trust,
)
from auditor.trust.authorities import (
    AllOf,
    AnyOf,
    Authority,
    CertificateChain,
    PublicKey,
    Requirement,
    SigstoreIdentity,
    TrustMaterialError,
    parse_certificates,
    read_trust_file,
)

MAX_POLICY_BYTES = 1024 * 1024
_SOURCES = ("key", "certificate_chain", "sigstore")


@dataclass(frozen=True, slots=True)
class ModelRule:
    """`match` globs over namespace and name, and the requirement for models they match."""

    requirement: Requirement
    namespace: str = "*"
    name: str = "*"
    index: int = 0  # position in `trust.models`, for messages

    def matches(self, namespace: str, name: str) -> bool:
        return fnmatch.fnmatchcase(namespace, self.namespace) and fnmatch.fnmatchcase(
            name, self.name
        )

    def describe(self) -> str:
        return (
            f"trust.models[{self.index}] (namespace {self.namespace!r}, name {self.name!r}): "
            f"{self.requirement.describe()}"
        )


@dataclass(frozen=True, slots=True)
class DatasetPolicy:
    lockfile: str | None = None  # absolute path; existence is checked by whoever reads it


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """A loaded, validated trust policy. `digest` changes when any part of it or its files does."""

    source: str
    authorities: tuple[Authority, ...] = ()
    models: tuple[ModelRule, ...] = ()
    datasets: DatasetPolicy = DatasetPolicy()
    digest: str = ""
    _by_name: Mapping[str, Authority] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def authority(self, name: str) -> Authority:
        return self._by_name[name]

    def rule_for(self, namespace: str, name: str) -> ModelRule | None:
        """The first rule whose globs match; None means the model is unverified (fail closed)."""
        return next((r for r in self.models if r.matches(namespace, name)), None)

    def any_rule(self) -> Requirement | None:
        """Satisfied when some rule's requirement is: for a model known by neither namespace
        nor name (a bare directory), whichever rule it could fall under."""
        if not self.models:
            return None
        return AnyOf([r.requirement for r in self.models])


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(read_trust_file(path)).hexdigest()
    except TrustMaterialError:  # pragma: no cover - the authority just loaded it
        return ""


def parse_trust(
    raw: Any,
    *,
    source: str,
    lines: Lines | None = None,
    base_dir: str | Path | None = None,
) -> TrustPolicy:
    """Validates the value of a `trust:` key and loads its trust material.

    `lines` is the line index of the whole file the key was read from (config.py's
    `Lines`); keys are named from the top (`trust.authorities[0].key`). Relative paths resolve
    against `base_dir`, by default the directory of `source`.
    """
    lines = lines or NO_LINES
    validate_trust(raw, source, lines)
    if base_dir is not None:
        base = Path(base_dir).resolve()
    else:
        base = Path(source).resolve().parent if source else Path.cwd()
    trust: dict[str, Any] = raw or {}
    by_name, described = _authorities(trust.get("authorities", ()), base, source, lines)
    models = trust.get("models", ())
    rules = [_model_rule(item, index, by_name, source, lines) for index, item in enumerate(models)]
    datasets_raw = trust.get("datasets", {})
    datasets = DatasetPolicy(
        lockfile=str(resolve_path(base, datasets_raw["lockfile"]))
        if "lockfile" in datasets_raw
        else None
    )
    # what the digest covers: every authority with its files' content, every rule, datasets,
    # all as written: the same policy checked out elsewhere (another replica, CI) has one digest
    canonical = {
        "authorities": described,
        "models": list(models),
        "datasets": {"lockfile": datasets_raw.get("lockfile")},
    }
    digest = hashlib.sha256(json.dumps(canonical, sort_keys=True, default=str).encode()).hexdigest()
    return TrustPolicy(
        source=str(Path(source).resolve()) if source else "",
        authorities=tuple(by_name.values()),
        models=tuple(rules),
        datasets=datasets,
        digest=f"sha256:{digest}",
        _by_name=by_name,
    )


def _authorities(
    items: Sequence[Mapping[str, Any]], base: Path, source: str, lines: Lines
) -> tuple[dict[str, Authority], list[dict[str, Any]]]:
    """The authorities by name (in file order), and how each is described for the digest."""
    by_name: dict[str, Authority] = {}
    described: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        at: list[str | int] = ["trust", "authorities", index]
        name = item["name"]
        if name in by_name:
            raise located_error(
                f"authority name {name!r} is used twice", source, lines, [*at, "name"]
            )
        given = [k for k in _SOURCES if k in item]
        if len(given) != 1:
            where = [*at, given[1]] if len(given) > 1 else at
            found = f"sets {' and '.join(given)}" if given else "sets none"
            raise located_error(
                f"authority {name!r} {found}: set exactly one of key, certificate_chain, sigstore",
                source,
                lines,
                where,
                of_key=len(given) > 1,
            )
        kind = given[0]
        authority = _load_authority(name, kind, item[kind], base, source, lines, [*at, kind])
        by_name[name] = authority
        described.append(
            {
                "name": name,
                "kind": kind,
                "spec": item[kind],
                "files": [_file_digest(p) for p in authority.files()],
            }
        )
    return by_name, described


def _model_rule(
    item: Mapping[str, Any],
    index: int,
    by_name: Mapping[str, Authority],
    source: str,
    lines: Lines,
) -> ModelRule:
    at: list[str | int] = ["trust", "models", index]
    if "require" not in item and "any_of" not in item:
        raise located_error(
            "a model rule needs `require: [...]` (all of) or `any_of: [...]` (one of)",
            source,
            lines,
            at,
        )
    for key in ("require", "any_of"):
        for position, ref in enumerate(item.get(key, ())):
            if ref not in by_name:
                known = ", ".join(sorted(by_name)) or "none are defined"
                raise located_error(
                    f"unknown authority {ref!r}",
                    source,
                    lines,
                    [*at, key, position],
                    hint=f"authorities: {known}",
                )
    parts: list[Requirement] = []
    if "require" in item:
        parts.append(AllOf(item["require"]))
    if "any_of" in item:
        parts.append(AnyOf(item["any_of"]))
    # Both keys in one rule: all of `require` and one of `any_of`.
    requirement = parts[0] if len(parts) == 1 else AllOf(parts)
    match = item["match"]
    return ModelRule(
        requirement=requirement,
        namespace=match.get("namespace", "*"),
        name=match.get("name", "*"),
        index=index,
    )


def _load_authority(
    name: str,
    kind: str,
    spec: Any,
    base: Path,
    source: str,
    lines: Lines,
    at: list[str | int],
) -> Authority:
    try:
        if kind == "key":
            return PublicKey.load(name, resolve_path(base, spec))
        if kind == "certificate_chain":
            return _load_chain(name, spec, base, source, lines, at)
        return _load_sigstore(name, spec, base, source, lines, at)
    except TrustMaterialError as exc:
        raise located_error(str(exc), source, lines, at) from None


def _load_chain(
    name: str, spec: str | list[str], base: Path, source: str, lines: Lines, at: list[str | int]
) -> CertificateChain:
    """The chain's files, each read (bounded) and then parsed on its own, so an error names
    the one file that is missing, unreadable or no certificate, not the whole list."""
    items = [spec] if isinstance(spec, str) else list(spec)
    paths = [resolve_path(base, item) for item in items]

    def where(position: int) -> list[str | int]:
        return at if isinstance(spec, str) else [*at, position]

    contents: list[bytes] = []
    for position, path in enumerate(paths):
        try:
            contents.append(read_trust_file(path, "certificate file"))
        except TrustMaterialError as exc:
            raise located_error(str(exc), source, lines, where(position)) from None
    certificates: list[x509.Certificate] = []
    for position, (path, data) in enumerate(zip(paths, contents, strict=True)):
        try:
            certificates.extend(parse_certificates(data, path))
        except TrustMaterialError as exc:
            raise located_error(str(exc), source, lines, where(position)) from None
    return CertificateChain(name=name, paths=tuple(paths), certificates=tuple(certificates))


def _load_sigstore(
    name: str, spec: Mapping[str, Any], base: Path, source: str, lines: Lines, at: list[str | int]
) -> SigstoreIdentity:
    if ("subject" in spec) == ("subject_regexp" in spec):
        both = "subject" in spec
        raise located_error(
            f"Sigstore authority {name!r} "
            + (
                "sets both subject and subject_regexp: choose one"
                if both
                else "needs subject or subject_regexp"
            ),
            source,
            lines,
            [*at, "subject_regexp"] if both else at,
            of_key=both,
        )
    if ("trusted_root" in spec) == ("trust_config" in spec):
        both = "trusted_root" in spec
        raise located_error(
            f"Sigstore authority {name!r} "
            + (
                "sets both trusted_root and trust_config: choose one"
                if both
                else "needs trusted_root or trust_config: auditor verifies offline and never "
                "fetches Sigstore's trust root over the network"
            ),
            source,
            lines,
            [*at, "trust_config"] if both else at,
            of_key=both,
        )
    pattern: re.Pattern[str] | None = None
    if "subject_regexp" in spec:
        try:
            pattern = re.compile(spec["subject_regexp"])
        except re.error as exc:
            raise located_error(
                f"invalid regular expression: {exc}", source, lines, [*at, "subject_regexp"]
            ) from None
    root_key = "trusted_root" if "trusted_root" in spec else "trust_config"
    try:
        return SigstoreIdentity.load(
            name,
            issuer=spec["issuer"],
            subject=spec.get("subject"),
            subject_regexp=pattern,
            trusted_root=resolve_path(base, spec["trusted_root"])
            if "trusted_root" in spec
            else None,
            trust_config=resolve_path(base, spec["trust_config"])
            if "trust_config" in spec
            else None,
        )
    except TrustMaterialError as exc:
        raise located_error(str(exc), source, lines, [*at, root_key]) from None


def _read_document(path: str | Path) -> tuple[dict[str, Any], Lines]:
    return read_yaml_mapping(
        path,
        what="trust policy file",
        not_mapping="expected a mapping with a `trust:` key",
        max_bytes=MAX_POLICY_BYTES,
    )


def load_trust_policy(path: str | Path) -> TrustPolicy:
    """A standalone trust-policy file: one top-level key, `trust:` (as in auditor.yaml)."""
    source = str(path)
    raw, lines = _read_document(path)
    extra = sorted(k for k in raw if k != "trust")
    if extra:
        raise ConfigError(
            f"unknown key {extra[0]!r}",
            file=source,
            line=lines.line([extra[0]], of_key=True),
            key=str(extra[0]),
            hint="a trust-policy file holds only `trust:`",
        )
    if "trust" not in raw:
        raise ConfigError("`trust` is required", file=source, line=1, key="trust")
    return parse_trust(raw["trust"], source=source, lines=lines)


def load_trust_from_config(path: str | Path) -> TrustPolicy:
    """The `trust:` section of an auditor.yaml; the rest of the file is config.py's business."""
    source = str(path)
    raw, lines = _read_document(path)
    if "trust" not in raw:
        raise ConfigError(
            "this config has no `trust:` section",
            file=source,
            key="trust",
            hint="add `trust:` with authorities and models (docs/configuration.md, Provenance)",
        )
    return parse_trust(raw["trust"], source=source, lines=lines)


__all__ = [
    "DatasetPolicy",
    "ModelRule",
    "TrustPolicy",
    "load_trust_from_config",
    "load_trust_policy",
    "parse_trust",
]

"""Dataset binding: the datasets a model's provenance names against the datasets Git pins.

Git pins datasets in a DVC `dvc.lock` (the outs of its stages) or in a `datasets` list in
config. The provenance names them in `resolvedDependencies` (see `auditor.provenance.slsa`).
Both sides become `DatasetRef`s matched on `DatasetRef.key`, and compared on digests:

- declared in Git, absent from the provenance: missing;
- in the provenance, not declared in Git: extra;
- on both sides with different digests: different.

Digests are digest sets (algorithm -> value). Two sets agree when every algorithm both carry
has the same value and they share at least one algorithm. DVC records md5 (DVC 3 writes
`hash: md5`; DVC 2 lockfiles omit it and their md5 is DVC's own, computed after dos2unix on
text files): either way the value is taken verbatim as the `md5` algorithm, `.dir` suffix of a
directory included, so the provenance must carry exactly what DVC recorded.

Every disagreement is a `Finding` (category provenance, check `provenance.dataset_mismatch`),
and a subject digest that is not the model digest is `provenance.digest_mismatch`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auditor import checks
from auditor.errors import InputError, SourceError
from auditor.lru import LRU
from auditor.model import CommitFiles, Finding, ResourceRef, short_sha
from auditor.provenance.gitfiles import AttestationPathError, normalize_repo_path, read_file
from auditor.provenance.slsa import DatasetRef, Provenance, dataset_key
from auditor.safeyaml import load_one

MAX_LOCKFILE_BYTES = 8 * 1024 * 1024


# --- Git side --------------------------------------------------------------------------------


def read_dvc_lock(
    content: bytes | str,
    source: str = "dvc.lock",
    *,
    stages: Collection[str] | None = None,
) -> tuple[DatasetRef, ...]:
    """The datasets a `dvc.lock` pins: the outs of every stage (or of the named `stages`).

    Reads lockfile schema 2.0 (DVC 2 and 3) and the older stage-per-key form. Paths stay as
    DVC writes them, relative to the lockfile's directory. Raises `InputError` naming the file
    and key when the lockfile is not one, or a named stage is absent.
    """
    doc = load_one(content, source, max_bytes=MAX_LOCKFILE_BYTES)
    if not isinstance(doc, Mapping):
        raise InputError("dvc.lock is not a mapping", file=source)
    schema = doc.get("schema")
    if schema is not None and not str(schema).startswith("2."):
        raise InputError(
            f"dvc.lock schema {schema!r} is not supported (2.x)", file=source, key="schema"
        )
    if "stages" in doc or schema is not None:
        all_stages = doc.get("stages") or {}
        prefix = "stages."
    else:
        # DVC 1 lockfiles hold the stages at the top level
        all_stages = doc
        prefix = ""
    if not isinstance(all_stages, Mapping):
        raise InputError("stages is not a mapping", file=source, key="stages")
    if stages is not None:
        absent = sorted(set(stages) - set(all_stages))
        if absent:
            raise InputError(
                f"stage {absent[0]} is not in dvc.lock (stages: {', '.join(sorted(all_stages))})",
                file=source,
                key=f"{prefix}{absent[0]}",
            )
    found: dict[str, DatasetRef] = {}
    for stage_name, stage in all_stages.items():
        if stages is not None and stage_name not in stages:
            continue
        where = f"{prefix}{stage_name}"
        if not isinstance(stage, Mapping):
            raise InputError(f"{where} is not a mapping", file=source, key=where)
        outs = stage.get("outs") or []
        if not isinstance(outs, list):
            raise InputError(f"{where}.outs is not a list", file=source, key=f"{where}.outs")
        for index, out in enumerate(outs):
            ref = _dvc_out(out, source, f"{where}.outs[{index}]")
            if ref.key in found:
                raise InputError(
                    f"{ref.key} is an out of two stages", file=source, key=f"{where}.outs[{index}]"
                )
            found[ref.key] = ref
    return tuple(found.values())


@dataclass(frozen=True, slots=True)
class PinnedDatasets:
    """The datasets Git pins for a model, and where: `dvc.lock@1a2b3c4d5e6f`."""

    datasets: tuple[DatasetRef, ...]
    where: str


# Lockfiles already read, by their bytes: the admission webhook needs the same one for every
# decision that verifies, and parsing YAML is most of the cost.
_PINNED: LRU[tuple[str | None, str, str], PinnedDatasets] = LRU(256)


def pinned_datasets(files: CommitFiles, path: str, stages: str = "*") -> PinnedDatasets:
    """The outs of the `dvc.lock` at `path` in the audited commit, of the stages whose names
    match the glob `stages`.

    Raises SourceError naming the lockfile when it cannot be read at the commit: without it
    the datasets cannot be compared, and the run must say it is incomplete.
    """
    where = f"{path}@{short_sha(files.commit)}"
    try:
        file = read_file(files, normalize_repo_path(path))
    except AttestationPathError as exc:
        raise SourceError(f"lockfile {path}: {exc}") from None
    if file is None:
        raise SourceError(f"the lockfile {where} does not exist: datasets cannot be compared")
    if file.data is None:
        raise SourceError(f"{where} is over the size limit")
    key = (file.digest, where, stages)
    found = _PINNED.get(key)
    if found is not None:
        return found
    try:
        names: list[str] | None = None
        if stages != "*":
            names = [n for n in _stage_names(file.data, where) if fnmatch.fnmatchcase(n, stages)]
        found = PinnedDatasets(read_dvc_lock(file.data, where, stages=names), where)
    except InputError as exc:
        raise SourceError(exc.diagnostics()) from None
    _PINNED.put(key, found)
    return found


def _stage_names(data: bytes, source: str) -> list[str]:
    doc = load_one(data, source, max_bytes=MAX_LOCKFILE_BYTES)
    if not isinstance(doc, Mapping):
        return []
    stages = doc.get("stages") if ("stages" in doc or "schema" in doc) else doc
    return [str(n) for n in stages] if isinstance(stages, Mapping) else []


def _dvc_out(out: Any, source: str, where: str) -> DatasetRef:
    if not isinstance(out, Mapping) or not isinstance(out.get("path"), str) or not out["path"]:
        raise InputError(f"{where} has no path", file=source, key=where)
    algorithm = out.get("hash", "md5")
    if not isinstance(algorithm, str):
        raise InputError(f"{where}.hash is not a string", file=source, key=f"{where}.hash")
    value = out.get(algorithm)
    digest: dict[str, str] = {}
    if value is not None:
        if not isinstance(value, str):
            raise InputError(
                f"{where}.{algorithm} is not a string", file=source, key=f"{where}.{algorithm}"
            )
        digest[algorithm] = value.lower()
    # an out without md5 (cloud-versioned, not yet committed) pins nothing: compared, it
    # becomes a finding that says so rather than passing silently
    return DatasetRef(name=out["path"], uri="", digest=digest, origin=f"{source} {where}")


def datasets_from_config(
    items: Sequence[Mapping[str, Any]], source: str = "auditor.yaml"
) -> tuple[DatasetRef, ...]:
    """Datasets listed in config: `[{name, uri, digest}]`, digest `algorithm:hex` or a mapping.

    At least one of name or uri identifies each dataset (matched like provenance datasets).
    """
    found: dict[str, DatasetRef] = {}
    for index, item in enumerate(items):
        where = f"datasets[{index}]"
        name = item.get("name", "")
        uri = item.get("uri", "")
        if not isinstance(name, str) or not isinstance(uri, str) or not (name or uri):
            raise InputError(f"{where} needs a name or a uri", file=source, key=where)
        ref = DatasetRef(
            name=name,
            uri=uri,
            digest=_digest_set(item.get("digest"), source, f"{where}.digest"),
            origin=f"{source} {where}",
        )
        if ref.key in found:
            raise InputError(f"dataset {ref.key} is listed twice", file=source, key=where)
        found[ref.key] = ref
    return tuple(found.values())


def _digest_set(value: Any, source: str, where: str) -> dict[str, str]:
    if isinstance(value, str) and ":" in value:
        algorithm, _, hex_value = value.partition(":")
        return {algorithm.lower(): hex_value.lower()}
    if (
        isinstance(value, Mapping)
        and value
        and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    ):
        return {k.lower(): v.lower() for k, v in value.items()}
    raise InputError(
        f"{where} is neither `algorithm:hex` nor a mapping of algorithm to hex",
        file=source,
        key=where,
    )


# --- comparison ------------------------------------------------------------------------------


def format_digest(digest: Mapping[str, str]) -> str:
    """`md5 0a1b..., sha256 9f8e...` in a stable order; `no digest` when empty."""
    if not digest:
        return "no digest"
    return ", ".join(f"{algorithm} {value}" for algorithm, value in sorted(digest.items()))


def digests_agree(declared: Mapping[str, str], attested: Mapping[str, str]) -> str | None:
    """None when the digest sets agree; otherwise why not, in words."""
    common = sorted(set(declared) & set(attested))
    if not common:
        return "no digest algorithm in common"
    differing = [a for a in common if declared[a] != attested[a]]
    if differing:
        return f"{differing[0]} differs"
    return None


def _pointer_token(text: str) -> str:
    return text.replace("~", "~0").replace("/", "~1")


def _dataset_path(key: str) -> str:
    # one finding per dataset: the path keeps their fingerprints apart across runs
    return f"/provenance/datasets/{_pointer_token(key)}"


def compare_datasets(
    declared: Sequence[DatasetRef],
    attested: Sequence[DatasetRef],
    *,
    ref: ResourceRef,
    declared_in: str = "dvc.lock",
) -> list[Finding]:
    """Findings for every dataset that Git and the provenance disagree on; [] when they agree.

    `declared` comes from Git (`read_dvc_lock`, `datasets_from_config`), `attested` from
    `Provenance.datasets`; `declared_in` names the Git side in messages (`dvc.lock@abc123`).
    """
    findings: list[Finding] = []
    attested_by_key = {d.key: d for d in attested}
    declared_keys = set()
    who = ref.display()
    for want in declared:
        declared_keys.add(want.key)
        have = attested_by_key.get(want.key)
        if have is None:
            findings.append(
                _dataset_finding(
                    ref,
                    want.key,
                    f"{who}: dataset {want.key} ({format_digest(want.digest)}) is pinned in "
                    f"{declared_in} but absent from the provenance",
                    expected=want.to_json(),
                    actual=None,
                    problem="missing",
                )
            )
            continue
        why = digests_agree(want.digest, have.digest)
        if why is not None:
            if want.digest:
                message = (
                    f"{who}: dataset {want.key} is {format_digest(want.digest)} in {declared_in}, "
                    f"{format_digest(have.digest)} in the provenance ({why})"
                )
            else:
                message = (
                    f"{who}: {declared_in} pins no digest for dataset {want.key} "
                    f"({format_digest(have.digest)} in the provenance)"
                )
            findings.append(
                _dataset_finding(
                    ref,
                    want.key,
                    message,
                    expected=want.to_json(),
                    actual=have.to_json(),
                    problem="different",
                )
            )
    for have in attested:
        if have.key not in declared_keys:
            findings.append(
                _dataset_finding(
                    ref,
                    have.key,
                    f"{who}: the provenance names dataset {have.key} "
                    f"({format_digest(have.digest)}) that {declared_in} does not pin",
                    expected=None,
                    actual=have.to_json(),
                    problem="extra",
                )
            )
    return findings


def _dataset_finding(
    ref: ResourceRef, key: str, message: str, *, expected: Any, actual: Any, problem: str
) -> Finding:
    return checks.finding(
        checks.DATASET_MISMATCH,
        ref,
        _dataset_path(key),
        message,
        expected=expected,
        actual=actual,
        details={"dataset": key, "problem": problem},
    )


def check_subject(provenance: Provenance, model_digest: str, *, ref: ResourceRef) -> list[Finding]:
    """A `provenance.digest_mismatch` finding unless a subject digest is the model digest.

    `model_digest` is `algorithm:hex` (`sha256:...`), as `ModelRef.digest` carries it.
    """
    algorithm, _, value = model_digest.lower().partition(":")
    for subject in provenance.subjects:
        if subject.digest.get(algorithm) == value:
            return []
    subjects = ", ".join(provenance.subject_digests) or "none"
    # critical (the registry's default): a subject that is not the model means the provenance
    # describes another model altogether
    return [
        checks.finding(
            checks.DIGEST_MISMATCH,
            ref,
            "/provenance/subject",
            f"{ref.display()}: the provenance is for {subjects}, "
            f"not for the model digest {model_digest}",
            expected=model_digest,
            actual=list(provenance.subject_digests),
        )
    ]


def check_provenance(
    provenance: Provenance,
    *,
    model_digest: str | None,
    declared: Sequence[DatasetRef] | None,
    ref: ResourceRef,
    declared_in: str = "dvc.lock",
) -> list[Finding]:
    """The whole binding for one resource: subject == model digest, datasets == Git's.

    Either side may be skipped with None (no digest declared; no datasets pinned in Git).
    """
    findings: list[Finding] = []
    if model_digest:
        findings += check_subject(provenance, model_digest, ref=ref)
    if declared is not None:
        findings += compare_datasets(
            declared, provenance.datasets, ref=ref, declared_in=declared_in
        )
    return findings


__all__ = [
    "DatasetRef",
    "PinnedDatasets",
    "check_provenance",
    "check_subject",
    "compare_datasets",
    "dataset_key",
    "datasets_from_config",
    "digests_agree",
    "pinned_datasets",
    "read_dvc_lock",
]

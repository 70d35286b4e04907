"""in-toto Statement v1 with an SLSA Provenance v1 predicate: reading a verified payload.

The payload comes out of a verified DSSE envelope (`auditor.provenance.dsse`), but its content
is still untrusted input: a signer can sign anything. It is size-checked, parsed, validated
against the JSON Schemas in `attestations/`, and turned into a typed `Provenance`.

Which resolved dependencies are datasets (attestations/README.md has the same rule):
1. a dependency with the annotation `auditor.gitops.ml/kind` is a dataset exactly when the
   annotation says `dataset` (an explicit annotation always wins);
2. otherwise, one whose uri starts with `dvc://`, `s3://`, `gs://` or `hf://datasets/`;
3. nothing else (source repositories, base images, tools) is a dataset.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema

from auditor.lru import LRU
from auditor.provenance.dsse import (
    IN_TOTO_PAYLOAD_TYPE,
    MAX_PAYLOAD_BYTES,
    DsseError,
    Reason,
    VerifiedPayload,
    verify_envelope,
)
from auditor.safeyaml import strict_json
from auditor.shipped import shipped_path
from auditor.trust.authorities import Authority

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"

STATEMENT_SCHEMA = "in-toto-statement-v1.schema.json"
PROVENANCE_SCHEMA = "slsa-provenance-v1.schema.json"
_SCHEMA_BASE = "https://auditor.gitops.ml/schemas/"

DATASET_KIND_ANNOTATION = "auditor.gitops.ml/kind"
DATASET_URI_PREFIXES = ("dvc://", "s3://", "gs://", "hf://datasets/")
DVC_URI_PREFIX = "dvc://"


class MalformedStatementError(DsseError):
    """A verified payload that is not an in-toto Statement v1 with SLSA Provenance v1."""

    reason: Reason = "malformed"


@dataclass(frozen=True, slots=True)
class DatasetRef:
    """A dataset as provenance or Git names it: its identity and its digest set.

    `key` is what the two sides are matched on (see `dataset_key`).
    """

    name: str
    uri: str
    digest: Mapping[str, str] = field(compare=True, hash=False)
    origin: str = ""  # where it was read: `provenance`, `dvc.lock stages.train.outs[0]`, ...

    @property
    def key(self) -> str:
        return dataset_key(self.name, self.uri)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "uri": self.uri, "digest": dict(self.digest)}


def dataset_key(name: str, uri: str) -> str:
    """The identity a dataset is matched on: its name; else the path of a `dvc://` uri; else the uri.

    DVC names a dataset by its path in the repository (`data/train.csv`), so a provenance
    dependency is matched to a dvc.lock out by `name: data/train.csv` or `uri: dvc://data/train.csv`.
    """
    if name:
        return _normalize_path(name)
    if uri.startswith(DVC_URI_PREFIX):
        return _normalize_path(uri[len(DVC_URI_PREFIX) :])
    return uri


def _normalize_path(path: str) -> str:
    """`./data/x/` and `data/x` are the same DVC path."""
    while path.startswith("./"):
        path = path[2:]
    return path.rstrip("/") or path


@dataclass(frozen=True, slots=True)
class Subject:
    name: str
    digest: Mapping[str, str] = field(compare=True, hash=False)


@dataclass(frozen=True, slots=True)
class Provenance:
    """What auditor reads from an SLSA Provenance v1 statement."""

    subjects: tuple[Subject, ...]
    datasets: tuple[DatasetRef, ...]
    builder_id: str
    build_type: str
    raw: Mapping[str, Any] = field(compare=False, hash=False, repr=False)

    @property
    def subject_digests(self) -> tuple[str, ...]:
        """Every subject digest as `algorithm:hex`, e.g. `sha256:ab12...`."""
        return tuple(
            f"{algorithm}:{value}"
            for subject in self.subjects
            for algorithm, value in sorted(subject.digest.items())
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "subjects": [{"name": s.name, "digest": dict(s.digest)} for s in self.subjects],
            "datasets": [d.to_json() for d in self.datasets],
            "builder_id": self.builder_id,
            "build_type": self.build_type,
        }


# --- schemas ---------------------------------------------------------------------------------


@functools.cache
def _registry() -> referencing.Registry[Any]:
    """Every schema in attestations/, by its $id, so they can $ref each other."""
    resources = []
    for path in sorted(shipped_path("attestations").glob("*.schema.json")):
        contents = json.loads(path.read_text())
        resources.append((contents["$id"], referencing.Resource.from_contents(contents)))
    return referencing.Registry().with_resources(resources)


@functools.cache
def schema_validator(name: str) -> jsonschema.protocols.Validator:
    """A validator for one schema of attestations/ (`in-toto-statement-v1.schema.json`, ...)."""
    registry = _registry()
    schema = registry.contents(_SCHEMA_BASE + name)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, registry=registry)


def schema_errors(instance: Any, schema: str, prefix: str) -> list[str]:
    """Every validation error, as `at /json/pointer: message`, most relevant first."""
    validator = schema_validator(schema)
    errors = sorted(
        validator.iter_errors(instance),
        key=lambda e: (list(e.absolute_path) != [], jsonschema.exceptions.relevance(e)),
    )
    out = []
    for error in errors[:5]:
        pointer = prefix + "".join(f"/{part}" for part in error.absolute_path)
        out.append(f"at {pointer or '/'}: {_short(error.message)}")
    return out


def _short(message: str, limit: int = 200) -> str:
    # jsonschema quotes the offending value, which may be megabytes of attacker-chosen text
    return message if len(message) <= limit else message[:limit] + "..."


def validate_statement(doc: Any, source: str = "statement") -> None:
    """Checks an in-toto Statement v1 carrying SLSA Provenance v1 against attestations/ schemas.

    Raises `MalformedStatementError` naming the first problems by JSON pointer.
    """
    problems = schema_errors(doc, STATEMENT_SCHEMA, "")
    if problems:
        raise MalformedStatementError(
            "not an in-toto Statement v1: " + "; ".join(problems), file=source
        )
    if doc["predicateType"] != SLSA_PROVENANCE_V1:
        raise MalformedStatementError(
            f"predicateType is {_short(doc['predicateType'], 100)!r}, expected {SLSA_PROVENANCE_V1}",
            file=source,
            key="predicateType",
        )
    if "predicate" not in doc:
        raise MalformedStatementError(
            "the statement has no predicate", file=source, key="predicate"
        )
    problems = schema_errors(doc["predicate"], PROVENANCE_SCHEMA, "/predicate")
    if problems:
        raise MalformedStatementError(
            "not an SLSA Provenance v1 predicate: " + "; ".join(problems), file=source
        )


# --- reading -----------------------------------------------------------------------------------


def is_dataset(dependency: Mapping[str, Any]) -> bool:
    """The dataset rule of this module's docstring, for one resolvedDependencies entry."""
    annotations = dependency.get("annotations")
    if isinstance(annotations, Mapping) and DATASET_KIND_ANNOTATION in annotations:
        return annotations[DATASET_KIND_ANNOTATION] == "dataset"
    uri = dependency.get("uri", "")
    return isinstance(uri, str) and uri.startswith(DATASET_URI_PREFIXES)


# Statements already read, by their bytes and name: the admission webhook reads the same
# attestation for every decision that verifies, and schema validation is most of the cost.
_READ: LRU[tuple[bytes, str, str], Provenance] = LRU(1024)


def read_provenance(payload: VerifiedPayload | bytes, *, source: str = "provenance") -> Provenance:
    """The typed provenance of a verified DSSE payload (or bare statement bytes, for tests).

    Raises `MalformedStatementError` when the payload type, JSON, schema or predicate type is
    not an in-toto Statement v1 with SLSA Provenance v1.
    """
    data = payload.payload if isinstance(payload, VerifiedPayload) else payload
    kind = payload.payload_type if isinstance(payload, VerifiedPayload) else ""
    key = (hashlib.sha256(data).digest(), kind, source)
    found = _READ.get(key)
    if found is None:
        found = _read_provenance(payload, source=source)
        _READ.put(key, found)
    return found


def _read_provenance(payload: VerifiedPayload | bytes, *, source: str) -> Provenance:
    if isinstance(payload, VerifiedPayload):
        if payload.payload_type != IN_TOTO_PAYLOAD_TYPE:
            raise MalformedStatementError(
                f"payloadType is {_short(payload.payload_type, 100)!r}, expected {IN_TOTO_PAYLOAD_TYPE}",
                file=source,
            )
        data = payload.payload
    else:
        data = payload
    if len(data) > MAX_PAYLOAD_BYTES:
        raise MalformedStatementError(
            f"statement is {len(data)} bytes, over the {MAX_PAYLOAD_BYTES}-byte limit", file=source
        )
    try:
        doc = strict_json(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedStatementError(f"statement is not JSON: {exc}", file=source) from None
    except RecursionError:
        raise MalformedStatementError("statement JSON nests too deeply", file=source) from None
    validate_statement(doc, source)

    subjects = tuple(
        Subject(name=item.get("name", ""), digest=dict(item["digest"])) for item in doc["subject"]
    )
    build = doc["predicate"]["buildDefinition"]
    datasets = tuple(
        DatasetRef(
            name=dep.get("name", ""),
            uri=dep.get("uri", ""),
            digest=dict(dep.get("digest", {})),
            origin=f"{source} /predicate/buildDefinition/resolvedDependencies/{index}",
        )
        for index, dep in enumerate(build.get("resolvedDependencies", []))
        if is_dataset(dep)
    )
    duplicates = sorted(k for k, n in Counter(d.key for d in datasets).items() if n > 1)
    if duplicates:
        # two entries for one dataset would let the comparison pick whichever agrees
        raise MalformedStatementError(
            f"provenance lists dataset {duplicates[0]} more than once", file=source
        )
    return Provenance(
        subjects=subjects,
        datasets=datasets,
        builder_id=doc["predicate"]["runDetails"]["builder"]["id"],
        build_type=build["buildType"],
        raw=doc,
    )


def verify_provenance(
    data: bytes, authority: Authority, *, source: str = "provenance"
) -> tuple[Provenance, VerifiedPayload]:
    """Verifies a provenance attestation against one authority, then reads it.

    `data` is a DSSE envelope (key authority) or a Sigstore bundle holding one (Sigstore
    authority). Raises the `DsseError` of the first failure: signature, identity, or content.
    """
    verified = verify_envelope(data, authority, source=source)
    return read_provenance(verified, source=source), verified

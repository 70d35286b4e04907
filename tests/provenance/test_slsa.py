"""Reading SLSA Provenance v1 from a verified DSSE payload: schemas, limits, the dataset rule."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from auditor.provenance import dsse
from auditor.provenance.dsse import SignatureInvalidError, verify_with_key
from auditor.provenance.slsa import (
    MalformedStatementError,
    Provenance,
    dataset_key,
    is_dataset,
    read_provenance,
    schema_validator,
    verify_provenance,
)
from auditor.shipped import shipped_path
from tests.provenance.attestation_factory import (
    EVAL_MD5,
    MODEL_DIGEST,
    TRAIN_MD5,
    make_key,
    sign_envelope,
    statement,
    statement_bytes,
)


def verified_provenance(tmp_path: Path, payload: bytes, **kwargs: Any) -> Provenance:
    dsse.clear_cache()
    key = make_key(tmp_path, "ed25519")
    return read_provenance(verify_with_key(sign_envelope(payload, [key], **kwargs), key.authority))


def test_signed_statement_reads_as_typed_provenance(tmp_path: Path) -> None:
    provenance = verified_provenance(tmp_path, statement_bytes())
    assert provenance.subject_digests == (MODEL_DIGEST,)
    assert provenance.builder_id == "https://github.com/acme/models/.github/workflows/train.yml"
    assert provenance.build_type == "https://auditor.gitops.ml/training/v1"
    assert [(d.key, dict(d.digest)) for d in provenance.datasets] == [
        ("data/train.csv", {"md5": TRAIN_MD5}),
        ("data/eval", {"md5": EVAL_MD5}),
    ]
    assert provenance.raw["_type"] == "https://in-toto.io/Statement/v1"


def test_payload_type_other_than_in_toto_is_malformed(tmp_path: Path) -> None:
    with pytest.raises(MalformedStatementError, match="payloadType is 'application/json'"):
        verified_provenance(tmp_path, statement_bytes(), payload_type="application/json")


def test_other_predicate_type_is_malformed() -> None:
    with pytest.raises(
        MalformedStatementError,
        match=re.escape("predicateType is 'https://slsa.dev/provenance/v0.2'"),
    ):
        read_provenance(statement_bytes(predicate_type="https://slsa.dev/provenance/v0.2"))


def _root(path: list[str | int]) -> dict[str, Any]:
    doc = statement()
    target: Any = doc
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return doc


@pytest.mark.parametrize(
    ("path", "pointer"),
    [
        (["subject"], "at /: 'subject' is a required property"),
        (["subject", 0, "digest"], "at /subject/0: 'digest' is a required property"),
        (
            ["predicate", "runDetails", "builder", "id"],
            "at /predicate/runDetails/builder: 'id' is a required property",
        ),
        (
            ["predicate", "buildDefinition", "buildType"],
            "at /predicate/buildDefinition: 'buildType'",
        ),
        (
            ["predicate", "buildDefinition", "externalParameters"],
            "'externalParameters' is a required property",
        ),
        (["predicate"], "the statement has no predicate"),
    ],
)
def test_missing_required_fields_are_named_by_pointer(path: list[str | int], pointer: str) -> None:
    with pytest.raises(MalformedStatementError) as caught:
        read_provenance(json.dumps(_root(path)).encode())
    assert pointer in caught.value.message
    assert caught.value.check == "provenance.malformed"


@pytest.mark.parametrize(
    ("mutate", "pointer"),
    [
        (lambda s: s.update(_type="https://in-toto.io/Statement/v0.1"), "at /_type"),
        (lambda s: s["subject"][0].update(digest={"sha256": "XYZ"}), "at /subject/0/digest/sha256"),
        (lambda s: s["subject"][0].update(digest={}), "at /subject/0/digest"),
        (lambda s: s.update(subject=[]), "at /subject"),
        (
            lambda s: s["predicate"]["buildDefinition"]["resolvedDependencies"][1].update(
                digest={"md5": "short"}
            ),
            "at /predicate/buildDefinition/resolvedDependencies/1/digest/md5",
        ),
        (
            lambda s: s["predicate"]["buildDefinition"].update(resolvedDependencies={}),
            "resolvedDependencies",
        ),
    ],
)
def test_schema_violations_are_named_by_pointer(mutate, pointer: str) -> None:  # type: ignore[no-untyped-def]
    doc = statement()
    mutate(doc)
    with pytest.raises(MalformedStatementError) as caught:
        read_provenance(json.dumps(doc).encode())
    assert pointer in caught.value.message


@pytest.mark.parametrize("payload", [b"", b"{", b"[1, 2]", b"\xff\xfe", b'"text"'])
def test_payloads_that_are_not_statements_are_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedStatementError):
        read_provenance(payload)


def test_oversized_statement_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from auditor.provenance import slsa

    monkeypatch.setattr(slsa, "MAX_PAYLOAD_BYTES", 64)
    with pytest.raises(MalformedStatementError, match="over the 64-byte limit"):
        read_provenance(statement_bytes())


def test_deeply_nested_statement_is_malformed_not_a_crash() -> None:
    with pytest.raises(MalformedStatementError):
        read_provenance(b"[" * 100_000 + b"]" * 100_000)


def test_the_same_dataset_twice_is_malformed() -> None:
    from tests.provenance.attestation_factory import dataset

    twice = [dataset("data/train.csv", TRAIN_MD5), dataset("data/train.csv", "0" * 32)]
    with pytest.raises(
        MalformedStatementError, match=re.escape("lists dataset data/train.csv more than once")
    ):
        read_provenance(statement_bytes(datasets=twice))


@pytest.mark.parametrize(
    ("dependency", "expected"),
    [
        (
            {
                "uri": "git+https://github.com/acme/models",
                "annotations": {"auditor.gitops.ml/kind": "dataset"},
            },
            True,
        ),
        (
            {"uri": "s3://bucket/train", "annotations": {"auditor.gitops.ml/kind": "base-model"}},
            False,
        ),
        ({"uri": "dvc://data/train.csv"}, True),
        ({"uri": "s3://acme-data/fraud/2024-06"}, True),
        ({"uri": "gs://acme-data/fraud"}, True),
        ({"uri": "hf://datasets/acme/fraud"}, True),
        ({"uri": "hf://acme/bert-base"}, False),
        ({"uri": "pkg:pypi/torch@2.3.0"}, False),
        ({"uri": "oci://ghcr.io/acme/trainer@sha256:" + "a" * 64}, False),
        ({"name": "data/train.csv", "digest": {"md5": TRAIN_MD5}}, False),
    ],
)
def test_which_dependencies_are_datasets(dependency: dict[str, Any], expected: bool) -> None:
    assert is_dataset(dependency) is expected


@pytest.mark.parametrize(
    ("name", "uri", "key"),
    [
        ("data/train.csv", "s3://x/y", "data/train.csv"),
        ("./data/eval/", "", "data/eval"),
        ("", "dvc://data/eval", "data/eval"),
        ("", "s3://acme-data/fraud", "s3://acme-data/fraud"),
    ],
)
def test_dataset_key_is_name_then_dvc_path_then_uri(name: str, uri: str, key: str) -> None:
    assert dataset_key(name, uri) == key


def test_shipped_schemas_are_valid_json_schemas() -> None:
    names = sorted(p.name for p in shipped_path("attestations").glob("*.schema.json"))
    assert "in-toto-statement-v1.schema.json" in names
    assert "slsa-provenance-v1.schema.json" in names
    for name in ("in-toto-statement-v1.schema.json", "slsa-provenance-v1.schema.json"):
        schema_validator(name)  # check_schema runs inside


def test_verify_provenance_checks_the_signature_then_reads(tmp_path: Path) -> None:
    dsse.clear_cache()
    key = make_key(tmp_path / "a", "p384")
    stranger = make_key(tmp_path / "b", "p384", name="stranger")
    envelope = sign_envelope(statement_bytes(), [key])
    provenance, verified = verify_provenance(envelope, key.authority, source="ml/provenance.json")
    assert provenance.subject_digests == (MODEL_DIGEST,)
    assert verified.signer.authority == "release-key"
    with pytest.raises(SignatureInvalidError):
        verify_provenance(envelope, stranger.authority)


def test_a_signed_statement_with_a_key_given_twice_is_malformed(tmp_path: Path) -> None:
    # Two readers keeping different copies of `subject` would see two statements under one
    # signature: a statement that is ambiguous is refused, signed or not.
    genuine = json.loads(statement_bytes())
    other = {"name": "other-model", "digest": {"sha256": "0" * 64}}
    text = json.dumps(genuine)[:-1] + ', "subject": ' + json.dumps([other]) + "}"
    with pytest.raises(MalformedStatementError, match="duplicate key 'subject'"):
        verified_provenance(tmp_path, text.encode())

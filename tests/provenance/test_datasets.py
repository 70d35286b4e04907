"""Dataset binding: provenance datasets against dvc.lock (or config), and the subject digest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from auditor.errors import InputError
from auditor.model import ResourceRef
from auditor.provenance import dsse
from auditor.provenance.datasets import (
    check_provenance,
    check_subject,
    compare_datasets,
    datasets_from_config,
    read_dvc_lock,
)
from auditor.provenance.dsse import verify_with_key
from auditor.provenance.slsa import Provenance, read_provenance
from tests.provenance.attestation_factory import (
    DEFAULT_DATASETS,
    EVAL_MD5,
    MODEL_DIGEST,
    TRAIN_MD5,
    dataset,
    dvc_lock,
    make_key,
    sign_envelope,
    statement_bytes,
)

REF = ResourceRef("prod", "serving.kserve.io/v1beta1", "InferenceService", "ml", "fraud-scorer")
OTHER_MD5 = hashlib.md5(b"another train split").hexdigest()


def signed_provenance(tmp_path: Path, **statement_kwargs: object) -> Provenance:
    """Provenance the way the audit gets it: signed, verified, then read."""
    dsse.clear_cache()
    key = make_key(tmp_path / "keys", "p256")
    envelope = sign_envelope(statement_bytes(**statement_kwargs), [key])  # type: ignore[arg-type]
    return read_provenance(verify_with_key(envelope, key.authority))


# --- dvc.lock ----------------------------------------------------------------------------------


def test_dvc3_lock_pins_the_outs_of_every_stage() -> None:
    pinned = read_dvc_lock(dvc_lock(), "dvc.lock")
    assert [(d.key, dict(d.digest)) for d in pinned] == [
        ("data/train.csv", {"md5": TRAIN_MD5}),
        ("data/eval", {"md5": EVAL_MD5}),
    ]
    assert pinned[0].origin == "dvc.lock stages.prepare.outs[0]"


def test_dvc2_lock_without_hash_field_reads_md5() -> None:
    lock = f"""\
schema: '2.0'
stages:
  prepare:
    cmd: python prepare.py
    outs:
    - path: data/train.csv
      md5: {TRAIN_MD5}
      size: 11
"""
    assert dict(read_dvc_lock(lock)[0].digest) == {"md5": TRAIN_MD5}


def test_dvc1_lock_with_stages_at_the_top_level() -> None:
    lock = f"prepare:\n  cmd: x\n  outs:\n  - path: data/train.csv\n    md5: {TRAIN_MD5}\n"
    assert [d.key for d in read_dvc_lock(lock)] == ["data/train.csv"]


def test_stage_selection_limits_the_pinned_datasets() -> None:
    lock = (
        dvc_lock()
        + f"""\
  train:
    cmd: python train.py
    deps:
    - path: data/train.csv
      hash: md5
      md5: {TRAIN_MD5}
    outs:
    - path: models/model.pt
      hash: md5
      md5: {hashlib.md5(b"weights").hexdigest()}
"""
    )
    assert len(read_dvc_lock(lock)) == 3
    assert [d.key for d in read_dvc_lock(lock, stages=["prepare"])] == [
        "data/train.csv",
        "data/eval",
    ]


@pytest.mark.parametrize(
    ("lock", "expected"),
    [
        ("schema: '3.0'\nstages: {}\n", "schema '3.0' is not supported"),
        ("- a\n- b\n", "dvc.lock is not a mapping"),
        ("schema: '2.0'\nstages: [1]\n", "stages is not a mapping"),
        (
            "schema: '2.0'\nstages:\n  s:\n    outs:\n    - md5: abc\n",
            "stages.s.outs[0] has no path",
        ),
        ("schema: '2.0'\nstages:\n  s:\n    outs: {path: x}\n", "stages.s.outs is not a list"),
        (
            "schema: '2.0'\nstages:\n  s: {outs: [{path: x}]}\n  t: {outs: [{path: x}]}\n",
            "x is an out of two stages",
        ),
        ("schema: '2.0'\nstages: {{\n", "invalid YAML"),
    ],
)
def test_broken_lockfiles_are_input_errors_naming_the_key(lock: str, expected: str) -> None:
    with pytest.raises(InputError) as caught:
        read_dvc_lock(lock, "repo/dvc.lock")
    assert expected in caught.value.message
    assert caught.value.file == "repo/dvc.lock"


def test_a_named_stage_absent_from_the_lockfile_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"stage train is not in dvc\.lock"):
        read_dvc_lock(dvc_lock(), stages=["train"])


def test_config_datasets_list() -> None:
    pinned = datasets_from_config(
        [
            {"name": "data/train.csv", "digest": f"md5:{TRAIN_MD5}"},
            {"uri": "s3://acme-data/fraud", "digest": {"sha256": "A" * 64}},
        ]
    )
    assert [(d.key, dict(d.digest)) for d in pinned] == [
        ("data/train.csv", {"md5": TRAIN_MD5}),
        ("s3://acme-data/fraud", {"sha256": "a" * 64}),
    ]
    with pytest.raises(InputError, match="needs a name or a uri"):
        datasets_from_config([{"digest": "md5:x"}])
    with pytest.raises(InputError, match="neither `algorithm:hex` nor a mapping"):
        datasets_from_config([{"name": "x", "digest": 5}])


# --- the binding ------------------------------------------------------------------------------


def test_provenance_that_matches_git_has_no_findings(tmp_path: Path) -> None:
    provenance = signed_provenance(tmp_path)
    pinned = read_dvc_lock(dvc_lock())
    assert check_provenance(provenance, model_digest=MODEL_DIGEST, declared=pinned, ref=REF) == []


def test_subject_digest_swapped_is_digest_mismatch(tmp_path: Path) -> None:
    other = "sha256:" + hashlib.sha256(b"another model").hexdigest()
    provenance = signed_provenance(tmp_path, subject_digest=other)
    [finding] = check_subject(provenance, MODEL_DIGEST, ref=REF)
    assert finding.check == "provenance.digest_mismatch"
    assert finding.category == "provenance"
    assert finding.severity == "critical"
    assert finding.message == (
        f"InferenceService ml/fraud-scorer: the provenance is for {other}, "
        f"not for the model digest {MODEL_DIGEST}"
    )
    assert finding.expected == MODEL_DIGEST
    assert finding.actual == [other]


def test_dataset_digest_swapped_is_dataset_mismatch(tmp_path: Path) -> None:
    swapped = (dataset("data/train.csv", OTHER_MD5), DEFAULT_DATASETS[1])
    provenance = signed_provenance(tmp_path, datasets=swapped)
    [finding] = compare_datasets(read_dvc_lock(dvc_lock()), provenance.datasets, ref=REF)
    assert finding.check == "provenance.dataset_mismatch"
    assert finding.message == (
        f"InferenceService ml/fraud-scorer: dataset data/train.csv is md5 {TRAIN_MD5} in dvc.lock, "
        f"md5 {OTHER_MD5} in the provenance (md5 differs)"
    )
    assert finding.details["problem"] == "different"
    assert finding.path == "/provenance/datasets/data~1train.csv"


def test_missing_dataset_is_dataset_mismatch(tmp_path: Path) -> None:
    provenance = signed_provenance(tmp_path, datasets=DEFAULT_DATASETS[:1])
    [finding] = compare_datasets(
        read_dvc_lock(dvc_lock()), provenance.datasets, ref=REF, declared_in="dvc.lock@abc123"
    )
    assert finding.check == "provenance.dataset_mismatch"
    assert finding.message == (
        f"InferenceService ml/fraud-scorer: dataset data/eval (md5 {EVAL_MD5}) is pinned in "
        "dvc.lock@abc123 but absent from the provenance"
    )
    assert finding.details["problem"] == "missing"
    assert finding.actual is None


def test_extra_dataset_is_dataset_mismatch(tmp_path: Path) -> None:
    extra = dataset("", "0" * 64, uri="s3://acme-data/unvetted", annotate=False)
    extra["digest"] = {"sha256": "0" * 64}
    del extra["name"]
    provenance = signed_provenance(tmp_path, datasets=[*DEFAULT_DATASETS, extra])
    [finding] = compare_datasets(read_dvc_lock(dvc_lock()), provenance.datasets, ref=REF)
    assert finding.message == (
        "InferenceService ml/fraud-scorer: the provenance names dataset s3://acme-data/unvetted "
        f"(sha256 {'0' * 64}) that dvc.lock does not pin"
    )
    assert finding.details["problem"] == "extra"
    assert finding.expected is None


def test_digests_without_a_common_algorithm_do_not_agree(tmp_path: Path) -> None:
    sha_only = dataset("data/train.csv", TRAIN_MD5)
    sha_only["digest"] = {"sha256": "1" * 64}
    provenance = signed_provenance(tmp_path, datasets=[sha_only, DEFAULT_DATASETS[1]])
    [finding] = compare_datasets(read_dvc_lock(dvc_lock()), provenance.datasets, ref=REF)
    assert finding.message.endswith("(no digest algorithm in common)")


def test_dvc_directory_digest_must_keep_its_dir_suffix(tmp_path: Path) -> None:
    bare = dataset("data/eval", EVAL_MD5.removesuffix(".dir"))
    provenance = signed_provenance(tmp_path, datasets=[DEFAULT_DATASETS[0], bare])
    [finding] = compare_datasets(read_dvc_lock(dvc_lock()), provenance.datasets, ref=REF)
    assert finding.details["dataset"] == "data/eval"


def test_an_out_without_md5_in_git_is_never_silently_accepted(tmp_path: Path) -> None:
    lock = "schema: '2.0'\nstages:\n  s:\n    outs:\n    - path: data/train.csv\n      size: 3\n"
    provenance = signed_provenance(tmp_path, datasets=DEFAULT_DATASETS[:1])
    [finding] = compare_datasets(read_dvc_lock(lock), provenance.datasets, ref=REF)
    assert finding.message == (
        "InferenceService ml/fraud-scorer: dvc.lock pins no digest for dataset data/train.csv "
        f"(md5 {TRAIN_MD5} in the provenance)"
    )


def test_each_problem_has_its_own_fingerprint(tmp_path: Path) -> None:
    provenance = signed_provenance(
        tmp_path, datasets=[dataset("data/train.csv", OTHER_MD5), dataset("data/other", OTHER_MD5)]
    )
    findings = compare_datasets(read_dvc_lock(dvc_lock()), provenance.datasets, ref=REF)
    assert sorted(f.details["problem"] for f in findings) == ["different", "extra", "missing"]
    assert len({f.fingerprint for f in findings}) == 3


def test_config_list_binding_matches_by_uri(tmp_path: Path) -> None:
    s3 = {"uri": "s3://acme-data/fraud", "digest": {"sha256": "2" * 64}}
    provenance = signed_provenance(tmp_path, datasets=[s3])
    pinned = datasets_from_config([{"uri": "s3://acme-data/fraud", "digest": "sha256:" + "2" * 64}])
    assert compare_datasets(pinned, provenance.datasets, ref=REF, declared_in="auditor.yaml") == []

"""in-toto layouts + links for a two-step training pipeline, made with fresh keys in the test."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from in_toto.models.layout import Inspection, Layout, Step
from in_toto.models.metadata import Envelope, Metablock
from in_toto.runlib import in_toto_run

from auditor.model import ResourceRef
from auditor.provenance.intoto import (
    LayoutFailedError,
    layout_finding,
    read_links_dir,
    verify_layout,
)
from tests.provenance.attestation_factory import SigningKey, make_key

# in-toto's artifact rules use pathspec's deprecated gitwildmatch patterns, once per file
pytestmark = pytest.mark.filterwarnings("ignore:GitWildMatchPattern:DeprecationWarning")

REF = ResourceRef("prod", "serving.kserve.io/v1beta1", "InferenceService", "ml", "fraud-scorer")


COPY = "import shutil, sys; shutil.copy(sys.argv[1], sys.argv[2])"
COPY_TREE = "import shutil, sys; shutil.copytree(sys.argv[1], sys.argv[2])"


@dataclass
class Pipeline:
    layout: bytes
    links: dict[str, bytes]
    owner: SigningKey  # signs the layout
    functionary: SigningKey  # runs both steps


def _key_dict(key: SigningKey) -> dict[str, Any]:
    public = key.signer.public_key
    return {**public.to_dict(), "keyid": public.keyid}


def _step(name: str, keyid: str, materials: list[list[str]], products: list[list[str]]) -> Step:
    step = Step(name=name)
    step.pubkeys = [keyid]
    step.expected_command = [sys.executable, "-c", COPY]
    step.expected_materials = materials
    step.expected_products = products
    return step


def make_layout(
    owner: SigningKey,
    functionary: SigningKey,
    *,
    expires: str | None = None,
    inspect: bool = False,
    dsse: bool = False,
    trained: str = "model.bin",
) -> bytes:
    """A layout for prepare-data (raw.csv -> train.csv) then train (train.csv -> `trained`, a
    file or a `dir/*` pattern), signed by `owner`; `functionary` performs both steps."""
    layout = Layout()
    keyid = functionary.signer.public_key.keyid
    layout.keys = {keyid: _key_dict(functionary)}
    layout.steps = [
        _step(
            "prepare-data",
            keyid,
            [["ALLOW", "raw.csv"], ["DISALLOW", "*"]],
            [["CREATE", "train.csv"], ["ALLOW", "raw.csv"], ["DISALLOW", "*"]],
        ),
        _step(
            "train",
            keyid,
            [["MATCH", "train.csv", "WITH", "PRODUCTS", "FROM", "prepare-data"], ["DISALLOW", "*"]],
            [["CREATE", trained], ["ALLOW", "train.csv"], ["DISALLOW", "*"]],
        ),
    ]
    if inspect:
        layout.inspect = [Inspection(name="untar", run=["tar", "xf", "model.tar"])]
    if expires:
        layout.expires = expires
    else:
        layout.set_relative_expiration(days=1)
    metadata = Envelope.from_signable(layout) if dsse else Metablock(signed=layout)
    metadata.create_signature(owner.signer)
    return json.dumps(metadata.to_dict()).encode()


def run_pipeline(
    work: Path,
    functionary: SigningKey,
    *,
    poison_training_data: bool = False,
    dsse: bool = False,
    model: Path | None = None,
) -> dict[str, bytes]:
    """Runs the two steps for real with in_toto_run, which records and signs each link. The
    train step writes model.bin, or with `model` a copy of that directory as `model/` (its
    files are the link's products)."""
    links = work / "links"
    links.mkdir(parents=True)
    (work / "raw.csv").write_text("amount,label\n1,0\n")
    in_toto_run(
        "prepare-data",
        ["raw.csv"],
        ["raw.csv", "train.csv"],
        [sys.executable, "-c", COPY, str(work / "raw.csv"), str(work / "train.csv")],
        base_path=str(work),
        metadata_directory=str(links),
        signer=functionary.signer,
        use_dsse=dsse,
    )
    if poison_training_data:
        (work / "train.csv").write_text("amount,label\n1,1\n")
    train = (
        [sys.executable, "-c", COPY, str(work / "train.csv"), str(work / "model.bin")]
        if model is None
        else [sys.executable, "-c", COPY_TREE, str(model), str(work / "model")]
    )
    in_toto_run(
        "train",
        ["train.csv"],
        ["train.csv", "model.bin" if model is None else "model"],
        train,
        base_path=str(work),
        metadata_directory=str(links),
        signer=functionary.signer,
        use_dsse=dsse,
    )
    return read_links_dir(links)


@pytest.fixture(scope="module")
def pipeline_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[SigningKey, SigningKey]:
    base = tmp_path_factory.mktemp("intoto-keys")
    return make_key(base, "ed25519", name="layout-owner"), make_key(
        base, "p256", name="functionary"
    )


@pytest.fixture
def pipeline(tmp_path: Path, pipeline_keys: tuple[SigningKey, SigningKey]) -> Pipeline:
    owner, functionary = pipeline_keys
    links = run_pipeline(tmp_path / "work", functionary)
    return Pipeline(make_layout(owner, functionary), links, owner, functionary)


def test_layout_and_links_verify(pipeline: Pipeline) -> None:
    result = verify_layout(pipeline.layout, pipeline.links, pipeline.owner.authority)
    assert result.steps == ("prepare-data", "train")
    assert result.authority == "layout-owner"
    assert result.signer == pipeline.owner.authority.fingerprint
    assert set(result.products) == {"train.csv", "model.bin"}
    assert set(result.materials) == {"raw.csv"}
    assert set(pipeline.links) == {
        f"prepare-data.{pipeline.functionary.signer.public_key.keyid[:8]}.link",
        f"train.{pipeline.functionary.signer.public_key.keyid[:8]}.link",
    }


def test_dsse_layout_and_links_verify(
    tmp_path: Path, pipeline_keys: tuple[SigningKey, SigningKey]
) -> None:
    owner, functionary = pipeline_keys
    links = run_pipeline(tmp_path / "work", functionary, dsse=True)
    assert all(
        json.loads(b)["payloadType"] == "application/vnd.in-toto+json" for b in links.values()
    )
    result = verify_layout(make_layout(owner, functionary, dsse=True), links, owner.authority)
    assert result.steps == ("prepare-data", "train")
    stranger = make_key(tmp_path / "stranger", "p256", name="stranger")
    with pytest.raises(LayoutFailedError, match="not signed by stranger"):
        verify_layout(make_layout(owner, functionary, dsse=True), links, stranger.authority)


def test_tampered_link_fails_with_the_library_reason(pipeline: Pipeline) -> None:
    name = next(n for n in pipeline.links if n.startswith("train."))
    link = json.loads(pipeline.links[name])
    link["signed"]["products"]["model.bin"]["sha256"] = "0" * 64
    links = {**pipeline.links, name: json.dumps(link).encode()}
    with pytest.raises(LayoutFailedError) as caught:
        verify_layout(pipeline.layout, links, pipeline.owner.authority)
    assert caught.value.check == "provenance.layout_failed"
    assert caught.value.message.startswith("ThresholdVerificationError:")
    assert "train" in caught.value.message


def test_missing_link_fails(pipeline: Pipeline) -> None:
    links = {n: b for n, b in pipeline.links.items() if not n.startswith("prepare-data.")}
    with pytest.raises(LayoutFailedError, match="LinkNotFoundError: Step 'prepare-data'"):
        verify_layout(pipeline.layout, links, pipeline.owner.authority)


def test_wrong_layout_key_fails(pipeline: Pipeline, tmp_path: Path) -> None:
    stranger = make_key(tmp_path / "stranger", "ed25519", name="stranger")
    with pytest.raises(LayoutFailedError) as caught:
        verify_layout(pipeline.layout, pipeline.links, stranger.authority)
    assert caught.value.message.startswith("the layout is not signed by stranger")


def test_layout_signed_by_a_functionary_not_the_owner_fails(pipeline: Pipeline) -> None:
    forged = make_layout(pipeline.functionary, pipeline.functionary)
    with pytest.raises(LayoutFailedError, match="not signed by layout-owner"):
        verify_layout(forged, pipeline.links, pipeline.owner.authority)


def test_expired_layout_fails(pipeline: Pipeline) -> None:
    expired = make_layout(pipeline.owner, pipeline.functionary, expires="2020-01-01T00:00:00Z")
    with pytest.raises(LayoutFailedError, match="LayoutExpiredError: Layout expired"):
        verify_layout(expired, pipeline.links, pipeline.owner.authority)


def test_tampered_layout_fails(pipeline: Pipeline) -> None:
    doc = json.loads(pipeline.layout)
    doc["signed"]["steps"][1]["expected_products"] = [["ALLOW", "*"]]
    with pytest.raises(LayoutFailedError, match="not signed by layout-owner"):
        verify_layout(json.dumps(doc).encode(), pipeline.links, pipeline.owner.authority)


def test_training_on_other_data_than_prepared_breaks_the_rules(
    tmp_path: Path, pipeline_keys: tuple[SigningKey, SigningKey]
) -> None:
    owner, functionary = pipeline_keys
    links = run_pipeline(tmp_path / "work", functionary, poison_training_data=True)
    with pytest.raises(LayoutFailedError, match="RuleVerificationError"):
        verify_layout(make_layout(owner, functionary), links, owner.authority)


def test_layout_with_inspections_is_refused_before_anything_runs(pipeline: Pipeline) -> None:
    layout = make_layout(pipeline.owner, pipeline.functionary, inspect=True)
    with pytest.raises(LayoutFailedError, match=r"has inspections \(untar\)"):
        verify_layout(layout, pipeline.links, pipeline.owner.authority)


@pytest.mark.parametrize("name", ["../evil.abcdef12.link", "/etc/x.link", "train.txt"])
def test_link_names_cannot_escape_the_link_directory(pipeline: Pipeline, name: str) -> None:
    with pytest.raises(LayoutFailedError):
        verify_layout(pipeline.layout, {**pipeline.links, name: b"{}"}, pipeline.owner.authority)


@pytest.mark.parametrize("data", [b"", b"{", b'{"signed": {}}', b"[]"])
def test_unreadable_layout_fails(pipeline: Pipeline, data: bytes) -> None:
    with pytest.raises(LayoutFailedError):
        verify_layout(data, pipeline.links, pipeline.owner.authority)


def test_failure_becomes_a_layout_failed_finding(pipeline: Pipeline, tmp_path: Path) -> None:
    stranger = make_key(tmp_path / "stranger", "ed25519", name="stranger")
    with pytest.raises(LayoutFailedError) as caught:
        verify_layout(pipeline.layout, pipeline.links, stranger.authority, source="ml/root.layout")
    finding = layout_finding(caught.value, ref=REF)
    assert finding.check == "provenance.layout_failed"
    assert finding.category == "provenance"
    assert finding.message.startswith(
        "InferenceService ml/fraud-scorer: in-toto layout verification failed: "
        "the layout is not signed by stranger"
    )
    assert finding.details == {"file": "ml/root.layout"}

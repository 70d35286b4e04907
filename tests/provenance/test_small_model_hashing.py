"""A small model is hashed in the calling thread (`Hasher`), and its manifest is the one
model-signing's own hashing makes of the same files: the same files hashed, the same ones
left out. Where the two could differ (a symlink, another serialization), model-signing hashes
it as before."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from model_signing import hashing

from auditor.provenance.signing.manifest import Hasher
from auditor.provenance.upstream import files_manifest

FILES = {"model.safetensors": b"weights", "config.json": b"{}", "empty.bin": b""}
SIGNED_BY_FILES = {"method": "files", "hash_type": "sha256", "allow_symlinks": False}


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def library(model: Path, ignore: tuple[Path, ...] = ()) -> object:
    """The manifest model-signing makes, as verification configures it."""
    return (
        hashing.Config()
        .use_file_serialization()
        .set_ignored_paths(paths=list(ignore), ignore_git_paths=True)
        .hash(model)
    )


def quick(model: Path, ignore: tuple[Path, ...] = (), **serialization: object) -> object:
    """The manifest `Hasher` confirms on its own (None: it leaves the model to model-signing)."""
    return Hasher(model, ignore)._hash_small({**SIGNED_BY_FILES, **serialization})


@pytest.mark.parametrize(
    "files",
    [
        FILES,
        {**FILES, "shards/part-1.bin": b"a", "shards/deeper/part-2.bin": b"b"},
        {**FILES, ".hidden": b"dot files are hashed", "ünïcode näme.txt": b"x"},
        # model-signing leaves Git's files out, at the top only
        {**FILES, ".git/HEAD": b"ref", ".github/x.yml": b"", ".gitignore": b"*", "sub/.git": b"g"},
    ],
    ids=["flat", "nested", "names", "git files"],
)
def test_small_model_manifest_is_model_signings(tmp_path: Path, files: dict[str, bytes]) -> None:
    model = tree(tmp_path / "model", files)
    (model / "empty folder").mkdir()
    assert quick(model) is not None
    assert quick(model) == library(model)


def test_ignored_paths_are_left_out_as_model_signing_leaves_them(tmp_path: Path) -> None:
    model = tree(tmp_path / "model", {**FILES, "logs/a.txt": b"1", "logs2/b.txt": b"2"})
    ignore = (Path("logs"), Path("config.json"))
    assert quick(model, ignore) == library(model, ignore)
    # an ignore path the signature lists counts as much as one given by the caller
    assert quick(model, (), ignore_paths=["logs", "config.json"]) == library(model, ignore)


def test_a_changed_byte_changes_the_manifest(tmp_path: Path) -> None:
    model = tree(tmp_path / "model", FILES)
    before = quick(model)
    (model / "model.safetensors").write_bytes(b"weightz")
    assert quick(model) != before
    assert quick(model) == library(model)


def test_symlinks_and_other_serializations_are_left_to_model_signing(tmp_path: Path) -> None:
    model = tree(tmp_path / "model", FILES)
    assert quick(model, hash_type="blake2") is None
    assert quick(model, method="shards", shard_size=1024) is None
    assert quick(model, ignore_paths=["../outside"]) is None
    os.symlink(model / "config.json", model / ".git-link")
    assert quick(model) is None
    # and model-signing refuses the symlink as it always did
    signed = files_manifest({name: b"\0" * 32 for name in FILES})
    answer = Hasher(model, ()).manifest(SIGNED_BY_FILES, expected=signed)
    assert not isinstance(answer, type(signed))
    assert "symlink" in answer.message


def test_a_model_that_is_not_small_is_left_to_model_signing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tree(tmp_path / "model", FILES)
    monkeypatch.setattr("auditor.provenance.signing.manifest.SMALL_MODEL_BYTES", 8)
    assert quick(model) is None
    monkeypatch.setattr("auditor.provenance.signing.manifest.SMALL_MODEL_BYTES", 1 << 20)
    monkeypatch.setattr("auditor.provenance.signing.manifest.SMALL_MODEL_FILES", 2)
    assert quick(model) is None


def test_a_model_that_differs_from_the_signed_manifest_gets_its_own_manifest(
    tmp_path: Path,
) -> None:
    model = tree(tmp_path / "model", FILES)
    signed = files_manifest({name: b"\0" * 32 for name in FILES})
    answer = Hasher(model, ()).manifest(SIGNED_BY_FILES, expected=signed)
    assert answer == library(model)
    assert answer != signed

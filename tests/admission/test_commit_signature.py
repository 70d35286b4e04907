"""`provenance.commit_signers` at admission: the commit the attestations are read at must be
signed by an allowed signer, as the audit requires of its commit; otherwise its attestations
are no evidence and the decision is denied, naming the check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from auditor.admit import AttestationSource, Decider
from auditor.config import Config, load_config
from tests.admission.test_attestation_source import decide
from tests.admission.world import ExampleWorld, llm
from tests.provenance.test_gitsig import allowed_signers, needs_ssh, ssh_key, ssh_signed_commit


def with_commit_signers(world: ExampleWorld, signers: Path) -> Config:
    raw = yaml.safe_load(world.config.read_text())
    raw["provenance"]["commit_signers"] = {"ssh_allowed_signers": str(signers)}
    path = world.config.with_name("admission-signed-commits.yaml")
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_config(path)


def decider_at_head(config: Config) -> Decider:
    source = AttestationSource(config)
    source.refresh()
    return Decider(config, policies=None, attestations=source)


def test_attestations_from_an_unsigned_commit_are_denied(tmp_path: Path, impostor_key: Any) -> None:
    world = ExampleWorld(tmp_path, impostor_key)
    signers = tmp_path / "allowed_signers"
    signers.write_text("release@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n")
    decider = decider_at_head(with_commit_signers(world, signers))
    try:
        decision = decide(decider, llm())  # the signed model, which verifies without signers
        assert decision.result == "deny"
        assert [r.check for r in decision.reasons] == ["provenance.commit_unsigned"]
        assert decision.commit == world.repo.head()
        assert "provenance.commit_unsigned" in decision.message()
        again = decide(decider, llm())  # the commit's verdict is kept, and still denies
        assert again.result == "deny" and again.cache == "hit"
    finally:
        decider.close()


@needs_ssh
def test_a_commit_signed_by_an_allowed_signer_lets_its_attestations_count(
    tmp_path: Path, impostor_key: Any
) -> None:
    world = ExampleWorld(tmp_path, impostor_key)
    alice, mallory = ssh_key(tmp_path / "ssh", "alice"), ssh_key(tmp_path / "ssh", "mallory")
    signers = allowed_signers(tmp_path / "allowed_signers", ("alice@example.com", alice))
    config = with_commit_signers(world, signers)
    ssh_signed_commit(world.repo, mallory, "signed by someone not allowed")
    decider = decider_at_head(config)
    try:
        denied = decide(decider, llm())
        assert [r.check for r in denied.reasons] == ["provenance.commit_signature_invalid"]
        signed = ssh_signed_commit(world.repo, alice, "signed by alice")
        assert decider.attestations is not None and decider.attestations.refresh() is True
        allowed = decide(decider, llm())
        assert (allowed.result, allowed.commit) == ("allow", signed)
    finally:
        decider.close()

"""What the pipeline hands the policy stage is exactly the published input document.

The example audit (a verified model, a tampered one, a dataset mismatch, unsigned and
unmanaged objects) runs through the real pipeline; every input document it builds, with the
provenance results of real verifications, must validate against `policies/input.schema.json`,
whose `provenance` part allows no key the schema does not describe. The schema and
`ProvenanceResult.to_json()` cannot drift apart unnoticed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from typing import Any

import jsonschema
import pytest

from auditor import pipeline
from auditor.config import load_config
from auditor.model import PolicyInput, ProvenanceResult, StageOutcome
from auditor.policy import stage as policy_stage
from tests.conftest import EXAMPLES, PROJECT
from tests.gitrepo import GitRepo

SCHEMA = json.loads((PROJECT / "policies" / "input.schema.json").read_text())


@pytest.fixture(scope="module")
def example_inputs(tmp_path_factory: pytest.TempPathFactory) -> list[PolicyInput]:
    repo = GitRepo(tmp_path_factory.mktemp("inputs-repo") / "repo")
    shutil.copytree(EXAMPLES, repo.path / "examples", ignore=shutil.ignore_patterns(".auditor"))
    repo.commit("example")
    config = load_config(repo.path / "examples" / "auditor.yaml")
    seen: list[PolicyInput] = []

    def capture(settings: Any, inputs: Sequence[PolicyInput], inventory: Any) -> StageOutcome:
        seen.extend(inputs)
        return StageOutcome()

    with pytest.MonkeyPatch.context() as patch:
        # the pipeline imports the policy stage where it evaluates, so this is what it calls
        patch.setattr(policy_stage, "evaluate_inputs", capture)
        pipeline.run_pipeline(config)
    return seen


def test_every_input_of_the_example_audit_validates(example_inputs: list[PolicyInput]) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    assert len(example_inputs) >= 10
    for item in example_inputs:
        errors = [e.message for e in validator.iter_errors(dict(item.document))]
        assert not errors, f"{item.ref}: {errors}"


def test_the_example_has_checked_and_failed_provenance(example_inputs: list[PolicyInput]) -> None:
    # the schema is exercised on real results, not only on the unverified default
    signatures = [
        i.document["provenance"]["signature"] for i in example_inputs if i.document["model"]
    ]
    assert any(s["verified"] for s in signatures)
    assert any(not s["verified"] and s.get("mode") for s in signatures)
    assert all("findings" in s for s in signatures)


def test_an_unverified_result_validates_too() -> None:
    provenance_schema = {**SCHEMA["properties"]["provenance"], "$defs": SCHEMA.get("$defs", {})}
    for result in (
        ProvenanceResult.not_configured(),
        ProvenanceResult.unverified("provenance.incomplete", "Git could not be read"),
    ):
        jsonschema.validate(result.to_json(), provenance_schema)


def test_an_undescribed_provenance_key_is_refused() -> None:
    document = {**ProvenanceResult.not_configured().to_json(), "surprise": 1}
    with pytest.raises(jsonschema.ValidationError, match="surprise"):
        jsonschema.validate(document, SCHEMA["properties"]["provenance"])

"""The bundled example (examples/) as the webhook serves it, in a Git repository of its own.

`examples/` is copied into a fresh repository, as it sits in auditor's own (the example config
names the repository as `..`), with what the admission tests add on top, all committed:

- a model signed by a key the trust policy does not know (`impostor`), with its bundle in the
  attestations, for the wrong-signer case;
- `admission.yaml`: the example's auditor.yaml plus an `admission:` section and a test policy
  (`policies/runtime_change.rego`: a warn rule that reads the review's oldObject).

Objects are the example's own manifests (`examples/gitops/base`), edited per case.
"""

from __future__ import annotations

import copy
import shutil
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.gitrepo import GitRepo
from tests.provenance.attestation_factory import SigningKey, private_pem
from tests.provenance.conftest import sign_with_key

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
POLICIES = Path(__file__).resolve().parent / "policies"
NS = "ml-prod"


def example_object(name: str) -> dict[str, Any]:
    """The first document of examples/gitops/base/NAME.yaml, in the example's namespace."""
    docs = [
        d for d in yaml.safe_load_all((EXAMPLES / "gitops/base" / f"{name}.yaml").read_text()) if d
    ]
    body = copy.deepcopy(docs[0])
    body["metadata"]["namespace"] = NS
    return body


def llm(name: str = "llm-server", **annotations: str) -> dict[str, Any]:
    """The example's signed LLM Deployment (verifies, passes every policy), renamed/annotated."""
    body = example_object("llm-server")
    body["metadata"]["name"] = name
    notes = body["spec"]["template"]["metadata"]["annotations"]
    notes.update(annotations)
    return body


def review(
    body: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    dry_run: bool = False,
    uid: str | None = None,
) -> dict[str, Any]:
    """An AdmissionReview v1 as the API server sends it."""
    subject = body or old or {}
    group, _, version = subject.get("apiVersion", "v1").rpartition("/")
    meta = subject.get("metadata", {})
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": {"group": group, "version": version, "kind": subject.get("kind", "")},
            "resource": {"group": group, "version": version, "resource": "x"},
            "namespace": meta.get("namespace", ""),
            "name": meta.get("name", ""),
            "operation": operation,
            "userInfo": {"username": "alice@example.com", "groups": ["ml-engineers"]},
            "object": body,
            "oldObject": old,
            "dryRun": dry_run,
        },
    }


class ExampleWorld:
    """The example repository in `tmp`, and the webhook config over it."""

    def __init__(self, tmp: Path, impostor: SigningKey, **admission: Any) -> None:
        self.repo = GitRepo(tmp / "repo")
        self.examples = self.repo.path / "examples"
        shutil.copytree(EXAMPLES, self.examples, ignore=shutil.ignore_patterns(".auditor"))
        self._impostor_model(impostor, tmp)
        self.config = self.examples / "admission.yaml"
        self.write_config(**admission)
        self.repo.git("add", "-A")
        self.repo.git("commit", "-q", "-m", "example")
        self.store = tmp / "decisions.db"

    def _impostor_model(self, key: SigningKey, tmp: Path) -> None:
        model = self.examples / "models/acme/impostor-llm"
        shutil.copytree(self.examples / "models/acme/support-llm-7b", model)
        bundle = self.examples / "gitops/attestations" / NS / "impostor" / "model.sig"
        bundle.parent.mkdir(parents=True)
        key_file = tmp / "impostor.key"
        key_file.write_bytes(private_pem(key))
        sign_with_key(model, key_file, bundle)

    def write_config(self, **admission: Any) -> None:
        raw = yaml.safe_load((EXAMPLES / "auditor.yaml").read_text())
        raw["policy"]["paths"] = ["builtin", str(POLICIES)]
        raw["admission"] = {"max_body_bytes": 65536, **admission}
        self.config.write_text(yaml.safe_dump(raw, sort_keys=False))

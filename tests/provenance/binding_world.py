"""The provenance stage over one serving resource, as the binding tests drive it.

A Git repository in tmp_path holds the attestations, a models root holds the model's files,
and two fresh keys (release-key, which the trust rule requires, and other-key, which it knows
but does not require) sign; `World.run` verifies one resource the way the pipeline does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from auditor.config import Config, GitSource, parse_config
from auditor.desired import open_commit_files
from auditor.model import Resource, ResourceRef, StageOutcome
from auditor.provenance import signing as ms
from auditor.provenance.stage import ProvenanceStage
from auditor.serving import served_models
from tests.gitrepo import GitRepo
from tests.provenance.attestation_factory import (
    SigningKey,
    dvc_lock,
    private_pem,
    sign_envelope,
    statement_bytes,
)
from tests.provenance.conftest import make_model, sign_with_key

NS, NAME = "ml-prod", "fraud-scorer"


def commit_files(repo: GitRepo) -> Any:
    """HEAD's files, as the desired stage hands them to provenance."""
    return open_commit_files(GitSource(repo=str(repo.path)), repo.head())


URI = "gs://acme-models/fraud-scorer/v3"
ATTESTATIONS = f"attestations/{NS}/{NAME}"


def isvc(
    *, uri: str = URI, digest: str | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    notes = dict(annotations or {})
    if digest:
        notes["auditor.gitops.ml/model-digest"] = digest
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": NAME, "namespace": NS, "annotations": notes},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri}}},
    }


def resource(body: dict[str, Any], side: str = "desired") -> Resource:
    meta = body["metadata"]
    ref = ResourceRef(
        "prod", body["apiVersion"], body["kind"], meta.get("namespace", ""), meta["name"]
    )
    return Resource(
        ref=ref, body=body, side=side, origin="m.yaml@abc" if side == "desired" else "prod"
    )  # type: ignore[arg-type]


def pod(name: str, image_id: str, *, isvc_name: str = NAME, image: str = "") -> Resource:
    return resource(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": NS,
                "labels": {"serving.kserve.io/inferenceservice": isvc_name},
            },
            "status": {
                "containerStatuses": [
                    {
                        "name": "kserve-container",
                        "image": "kserve/tritonserver:24.01",
                        "imageID": "docker-pullable://kserve/tritonserver@sha256:" + "e" * 64,
                    },
                    {
                        "name": "modelcar",
                        "image": image or "registry.acme.io/models/recs",
                        "imageID": image_id,
                    },
                ]
            },
        },
        side="live",
    )


class World:
    """A Git repo with attestations, a models root, keys, and the config that ties them."""

    def __init__(self, tmp: Path, release: SigningKey, other: SigningKey) -> None:
        self.tmp = tmp
        self.release, self.other = release, other
        self.repo = GitRepo(tmp / "gitops")
        self.models = tmp / "models"
        self.model = make_model(self.models / "acme-models" / "fraud-scorer" / "v3")
        self.keys: dict[str, Path] = {}
        (tmp / "keys").mkdir()
        for key in (release, other):
            path = tmp / "keys" / f"{key.authority.name}.key"
            path.write_bytes(private_pem(key))
            self.keys[key.authority.name] = path
        self.bundle = sign_with_key(self.model, self.keys["release-key"], tmp / "model.sig")
        self.digest = ms.verify_signatures(
            self.bundle,
            self.trust_config().trust,
            namespace=NS,
            name=NAME,
            ref=resource(isvc()).ref,  # type: ignore[arg-type]
        ).digest
        assert self.digest and self.digest.startswith("sha256:")

    def trust(self, **overrides: Any) -> dict[str, Any]:
        trust: dict[str, Any] = {
            "authorities": [
                {"name": "release-key", "key": str(self.release.pem_path)},
                {"name": "other-key", "key": str(self.other.pem_path)},
            ],
            "models": [{"match": {"namespace": "ml-*"}, "require": ["release-key"]}],
        }
        trust.update(overrides)
        return trust

    def trust_config(self, **extra: Any) -> Config:
        raw: dict[str, Any] = {
            "git": {"repo": str(self.repo.path)},
            "clusters": [{"name": "prod", "snapshot": "live.yaml"}],
            "trust": extra.pop("trust", None) or self.trust(),
            "provenance": {
                "attestations": "attestations/{namespace}/{name}",
                "lockfile": "dvc.lock",
            },
        }
        raw.update(extra)
        return parse_config(raw, source=str(self.tmp / "auditor.yaml"))

    def provenance(
        self,
        *,
        subject: str | None = None,
        datasets: Any = None,
        keys: Sequence[SigningKey] | None = None,
    ) -> bytes:
        kwargs: dict[str, Any] = {"subject_digest": subject or self.digest}
        if datasets is not None:
            kwargs["datasets"] = datasets
        return sign_envelope(statement_bytes(**kwargs), list(keys or [self.release]))

    def commit(
        self, files: Mapping[str, bytes | str] | None = None, *, sig: bool = True, slsa: bool = True
    ) -> str:
        self.repo.write("dvc.lock", dvc_lock())
        if sig:
            self.repo.write(f"{ATTESTATIONS}/model.sig", self.bundle.read_bytes())
        if slsa:
            self.repo.write(f"{ATTESTATIONS}/provenance.intoto.json", self.provenance())
        for rel, data in (files or {}).items():
            self.repo.write(rel, data)
        return self.repo.commit()

    def run(
        self,
        desired: dict[str, Any] | None,
        live: dict[str, Any] | None = None,
        *,
        pods: Sequence[Resource] = (),
        config: Config | None = None,
    ) -> tuple[dict[str, Any], StageOutcome]:
        stage = ProvenanceStage(config or self.trust_config())
        stage.start(str(self.repo.path), commit_files(self.repo))
        desired_here = [resource(desired)] if desired else []
        live_here = (
            [resource(live if live is not None else desired, "live")] if (live or desired) else []
        )
        documents = stage.verify("prod", served_models(desired_here, live_here), pods)
        outcome = stage.outcome()
        found = documents.get(("serving.kserve.io", "InferenceService", NS, NAME))
        return (found.to_json() if found is not None else {}), outcome


def checks(outcome: StageOutcome) -> list[str]:
    return sorted(f.check for f in outcome.findings)

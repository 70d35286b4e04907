"""The API server serialises some values differently from how Git writes them: not drift.

Found by reading the Kubernetes API conventions and registry code (omitempty, `[]byte`
fields, Canonicalize of Endpoints, the HPA's storage conversion), Argo CD's diff
normalizers (gitops-engine `Normalize`, `NormalizeSecret`, `remarshal`, the Endpoints and
Role normalizers, the known-types normalizer) and the Argo CD issues that report an
application forever OutOfSync with an empty diff (#763 stringData, #943 empty Secret values,
#11328 and kubernetes#74099 HPA metrics, #18142 empty env values, #18213 `resources: {}`).

Each row is one equivalence, on a real manifest of `realworld/` (its origin is in the file):
how Git writes it, how the API server returns it, and which drift module owns the rule. The
second table plants a real change next to each one: it must still be reported, at its path.
"""

from __future__ import annotations

import base64
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import auditor
from tests.drift.fixtures import desired, drift, find, live

Objects = list[dict[str, Any]]
Edit = Callable[[Objects], None]


def _nothing(objects: Objects) -> None:
    pass


@dataclass(frozen=True)
class Equivalence:
    name: str
    fixture: str
    module: str  # where the rule lives
    git: Edit = _nothing  # how Git writes it (the fixture may already say it)
    live: Edit = _nothing  # how the API server returns it


def _wrapped(value: str) -> str:
    """base64 as the `base64` tool prints it, pasted into a `|` block: 76 columns, newlines."""
    return "\n".join(textwrap.wrap(value, 76)) + "\n"


def _obj(kind: str, name: str) -> Callable[[Objects], dict[str, Any]]:
    return lambda objects: find(objects, kind, name)


DEPLOYMENT = _obj("Deployment", "fraud-scorer")
SERVICE = _obj("Service", "fraud-scorer")
FLAGS = _obj("ConfigMap", "fraud-scorer-flags")
TOKENIZER = _obj("ConfigMap", "tokenizer")
TOKEN = _obj("Secret", "registry-token")
WORDPRESS = _obj("Secret", "wordpress-wordpress")
BASIC_AUTH = _obj("Secret", "secret-basic-auth")
ENDPOINTS = _obj("Endpoints", "glusterfs-cluster")
HPA = _obj("HorizontalPodAutoscaler", "example")
RUNTIME = _obj("ClusterServingRuntime", "kserve-sklearnserver")
ADMIN_ROLE = _obj("ClusterRole", "kubeflow-admin")


def _container(objects: Objects) -> dict[str, Any]:
    container: dict[str, Any] = DEPLOYMENT(objects)["spec"]["template"]["spec"]["containers"][0]
    return container


def _pod(objects: Objects) -> dict[str, Any]:
    pod: dict[str, Any] = DEPLOYMENT(objects)["spec"]["template"]["spec"]
    return pod


def _do(*steps: Callable[[], None]) -> None:
    for step in steps:
        step()


KUBECTL = "kubectl-create-fraud-scorer.yaml"

EQUIVALENCES: tuple[Equivalence, ...] = (
    # -- server-owned metadata and status Git tools write (compare.py)
    Equivalence("creationTimestamp: null and status: {} in Git, absent live", KUBECTL, "compare"),
    Equivalence("Service status.loadBalancer: {} in Git", KUBECTL, "compare"),
    # -- null, empty and zero values (normalize.py)
    Equivalence("strategy: {} and resources: {} in Git, filled live", KUBECTL, "normalize"),
    Equivalence(
        "null in Git (Helm's empty value), absent live",
        KUBECTL,
        "normalize",
        git=lambda o: _pod(o).update(nodeSelector=None, tolerations=None),
    ),
    Equivalence(
        "empty list and map in Git, absent live",
        KUBECTL,
        "normalize",
        git=lambda o: _do(
            lambda: _container(o).update(env=[], args=[]),
            lambda: DEPLOYMENT(o)["metadata"].update(annotations={}),
        ),
    ),
    Equivalence(
        'env value "" in Git, value dropped live',
        KUBECTL,
        "normalize",
        git=lambda o: _container(o).update(env=[{"name": "FEATURE_FLAGS", "value": ""}]),
        live=lambda o: _container(o).update(env=[{"name": "FEATURE_FLAGS"}]),
    ),
    Equivalence('ConfigMap value "" kept live', KUBECTL, "normalize"),
    Equivalence(
        "rules: [] in Git, null live (Argo CD's normalizeRole)",
        "kubeflow-roles.yaml",
        "normalize",
        git=lambda o: ADMIN_ROLE(o).pop("aggregationRule"),  # a plain role: rules compared
        live=lambda o: ADMIN_ROLE(o).update(rules=None, aggregationRule=None),
    ),
    Equivalence(
        "omitempty zero values (minReadySeconds: 0) dropped live",
        "ingress-nginx-controller.yaml",
        "normalize",
    ),
    Equivalence(
        "quantities canonicalised (0.5 -> 500m, 1024Mi -> 1Gi)",
        KUBECTL,
        "normalize",
        git=lambda o: _container(o).update(resources={"limits": {"cpu": 0.5, "memory": "1024Mi"}}),
        live=lambda o: _container(o).update(resources={"limits": {"cpu": "500m", "memory": "1Gi"}}),
    ),
    Equivalence(
        'int-or-string targetPort "8080" in Git, 8080 live',
        KUBECTL,
        "normalize",
        git=lambda o: SERVICE(o)["spec"]["ports"][0].update(targetPort="8080"),
    ),
    Equivalence(
        "1.0 in Git, 1 live (a custom resource's JSON number)",
        "kserve-sklearnserver-runtime.yaml",
        "normalize",
        git=lambda o: RUNTIME(o)["spec"]["supportedModelFormats"][0].update(priority=3.0),
    ),
    # -- defaulted merge keys (merge_keys.py)
    Equivalence("port protocol defaulted to TCP live", KUBECTL, "merge_keys"),
    # -- Secret values, compared as digests of their bytes (auditor/redact.py)
    Equivalence('Secret value "" in Git, "" live', KUBECTL, "redact"),
    Equivalence(
        'Secret value "" in Git, null live (argo-cd#943)', "helm-wordpress-secret.yaml", "redact"
    ),
    Equivalence(
        'Secret value "" in Git, key absent live',
        "helm-wordpress-secret.yaml",
        "redact",
        live=lambda o: WORDPRESS(o)["data"].pop("smtp-password"),
    ),
    Equivalence(
        "Secret stringData in Git, base64 data live", "k8s-basicauth-secret.yaml", "redact"
    ),
    Equivalence(
        "Secret stringData overrides data for the same key",
        "k8s-basicauth-secret.yaml",
        "redact",
        git=lambda o: BASIC_AUTH(o).update(data={"password": base64.b64encode(b"old").decode()}),
    ),
    Equivalence(
        'Secret stringData "" in Git, null live',
        "k8s-basicauth-secret.yaml",
        "redact",
        git=lambda o: BASIC_AUTH(o)["stringData"].update(otp=""),
        live=lambda o: BASIC_AUTH(o)["data"].update(otp=None),
    ),
    Equivalence(
        "Secret base64 in a | block (trailing newline), canonical live",
        "helm-wordpress-secret.yaml",
        "redact",
        git=lambda o: WORDPRESS(o)["data"].update({"wordpress-password": "Z2NkZnZHOTFncA==\n"}),
    ),
    # -- the API server's canonical forms (canonical.py)
    Equivalence(
        "ConfigMap binaryData wrapped at 76 columns in Git, one line live",
        KUBECTL,
        "canonical",
        git=lambda o: TOKENIZER(o)["binaryData"].update(
            {k: _wrapped(v) for k, v in TOKENIZER(o)["binaryData"].items()}
        ),
    ),
    Equivalence(
        'ConfigMap binaryData "" in Git, null live',
        KUBECTL,
        "canonical",
        git=lambda o: TOKENIZER(o)["binaryData"].update({"empty.bin": ""}),
        live=lambda o: TOKENIZER(o)["binaryData"].update({"empty.bin": None}),
    ),
    Equivalence(
        "Endpoints repacked: subsets merged, addresses sorted, protocol TCP",
        "k8s-glusterfs-endpoints.yaml",
        "canonical",
    ),
    Equivalence(
        "Endpoints subsets in any order in Git",
        "k8s-glusterfs-endpoints.yaml",
        "canonical",
        git=lambda o: ENDPOINTS(o)["subsets"].reverse(),
    ),
    # -- HPA metrics are a set: the autoscaling/v1 storage round trip reorders them (merge_keys.py)
    Equivalence(
        "HPA metrics reordered by the autoscaling/v1 round trip (before 1.28)",
        "argocd-hpa-metrics-order.yaml",
        "merge_keys",
    ),
)


def _pair(row: Equivalence) -> tuple[Objects, Objects]:
    want, have = desired(row.fixture), live(row.fixture)
    row.git(want)
    row.live(have)
    return want, have


@pytest.mark.parametrize("row", EQUIVALENCES, ids=[r.name for r in EQUIVALENCES])
def test_server_serialisation_is_not_drift(row: Equivalence) -> None:
    want, have = _pair(row)
    result = drift(want, have)
    assert [f.message for f in result.findings] == []
    assert result.summary.in_sync == len(want)


@dataclass(frozen=True)
class Planted:
    name: str
    row: str  # the equivalence it sits next to
    change: Edit  # a real change to the live side
    path: str  # where it must be reported
    kind: str


def _rotate(objects: Objects) -> None:
    data = BASIC_AUTH(objects)["data"]
    data["password"] = base64.b64encode(b"rotated-by-hand").decode()


PLANTED: tuple[Planted, ...] = (
    Planted(
        "image changed",
        "creationTimestamp: null and status: {} in Git, absent live",
        lambda o: _container(o).update(image="ghcr.io/acme/fraud-scorer:debug"),
        "/spec/template/spec/containers/0/image",
        "Deployment",
    ),
    Planted(
        "targetPort changed",
        'int-or-string targetPort "8080" in Git, 8080 live',
        lambda o: SERVICE(o)["spec"]["ports"][0].update(targetPort=9090),
        "/spec/ports/0/targetPort",
        "Service",
    ),
    Planted(
        "empty ConfigMap value filled",
        'ConfigMap value "" kept live',
        lambda o: FLAGS(o)["data"].update(FEATURE_FLAGS="skip-fraud-check"),
        "/data/FEATURE_FLAGS",
        "ConfigMap",
    ),
    Planted(
        "empty Secret value filled",
        'Secret value "" in Git, null live (argo-cd#943)',
        lambda o: WORDPRESS(o)["data"].update({"smtp-password": "aHVudGVyMg=="}),
        "/data/smtp-password",
        "Secret",
    ),
    Planted(
        "Secret value rotated by hand",
        "Secret stringData in Git, base64 data live",
        _rotate,
        "/data/password",
        "Secret",
    ),
    Planted(
        "a binaryData byte changed",
        "ConfigMap binaryData wrapped at 76 columns in Git, one line live",
        lambda o: TOKENIZER(o)["binaryData"].update({"vocab.bin": "AAECdG9rZW5pemVyLXZvY2Fj//4="}),
        "/binaryData/vocab.bin",
        "ConfigMap",
    ),
    Planted(
        "an endpoint address changed",
        "Endpoints repacked: subsets merged, addresses sorted, protocol TCP",
        lambda o: ENDPOINTS(o)["subsets"][0]["addresses"][1].update(ip="10.240.79.158"),
        "/subsets/0/addresses/1/ip",
        "Endpoints",
    ),
    Planted(
        "the cpu target changed",
        "HPA metrics reordered by the autoscaling/v1 round trip (before 1.28)",
        lambda o: HPA(o)["spec"]["metrics"][1]["resource"]["target"].update(averageUtilization=95),
        "/spec/metrics/0/resource/target/averageUtilization",
        "HorizontalPodAutoscaler",
    ),
)
ROWS = {r.name: r for r in EQUIVALENCES}


@pytest.mark.parametrize("planted", PLANTED, ids=[p.name for p in PLANTED])
def test_a_real_change_next_to_an_equivalence_is_still_drift(planted: Planted) -> None:
    want, have = _pair(ROWS[planted.row])
    planted.change(have)
    [finding] = drift(want, have).findings
    assert (finding.check, finding.ref.kind, finding.path) == (
        "drift.changed",
        planted.kind,
        planted.path,
    )


def test_every_row_names_the_module_that_holds_its_rule() -> None:
    # the `module` column is documentation: keep it true
    root = Path(auditor.__file__).parent
    for row in EQUIVALENCES:
        where = (
            root / "redact.py" if row.module == "redact" else root / "drift" / f"{row.module}.py"
        )
        assert where.is_file(), row

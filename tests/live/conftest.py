"""A test API server holding a small ML-serving cluster, and the config to read it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from auditor.config import ClusterSource, Limits
from auditor.live.transport import RetryPolicy
from auditor.scope import KindSelector, Scope
from tests.kubeapi.builders import configmap, deployment, inference_service, secret
from tests.kubeapi.server import KubeAPIServer

TOKEN = "auditor-test-token"
PLANTED_SECRET = "hunter2-do-not-leak"
# small enough that several pages are needed, timeouts that keep the fault tests fast
LIMITS = Limits(page_size=2, request_timeout_seconds=0.3)
FAST_RETRY = RetryPolicy(
    transient_backoff_seconds=0.0, max_retry_after_seconds=0.2, throttle_budget_seconds=1.0
)
SCOPE = Scope(
    kinds=(
        KindSelector("", "ConfigMap"),
        KindSelector("", "Secret"),
        KindSelector("apps", "Deployment"),
        KindSelector("serving.kserve.io", "InferenceService"),
    ),
    namespaces=("ml",),
)


def seed(server: KubeAPIServer) -> None:
    server.add_all(
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}},
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml-canary"}},
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}},
            *(configmap(f"cm-{i}") for i in range(5)),
            configmap("elsewhere", namespace="other"),
            configmap("canary-config", namespace="ml-canary"),
            deployment("fraud-scorer"),
            deployment("fraud-scorer-canary", namespace="ml-canary"),
            deployment("unrelated", namespace="other"),
            inference_service("fraud-scorer"),
            inference_service("churn"),
            secret("model-credentials", PLANTED_SECRET),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "fraud-scorer", "namespace": "ml"},
                "spec": {"ports": [{"port": 80}]},
            },
            {
                "apiVersion": "serving.kserve.io/v1alpha1",
                "kind": "ClusterServingRuntime",
                "metadata": {"name": "kserve-sklearnserver"},
                "spec": {"containers": [{"name": "kserve-container", "image": "kserve/sk:1"}]},
            },
        ]
    )


@pytest.fixture
def kube() -> Iterator[KubeAPIServer]:
    with KubeAPIServer(token=TOKEN) as server:
        seed(server)
        yield server


@pytest.fixture
def kubeconfig(kube: KubeAPIServer, tmp_path: Path) -> Path:
    return kube.write_kubeconfig(tmp_path / "kubeconfig", context="test")


@pytest.fixture
def source(kubeconfig: Path) -> ClusterSource:
    return ClusterSource(name="prod", kubeconfig=str(kubeconfig), context="test")


@pytest.fixture
def scope() -> Scope:
    return SCOPE


@pytest.fixture
def limits() -> Limits:
    return LIMITS


@pytest.fixture
def retry() -> RetryPolicy:
    return FAST_RETRY


@pytest.fixture
def planted_secret() -> str:
    return PLANTED_SECRET

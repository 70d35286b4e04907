"""deploy/admission: every manifest valid for Kubernetes (kubernetes-validate, strict, with the
schemas it ships: offline), and consistent with itself and with the webhook's contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from auditor.config import DEFAULT_ADMISSION_KINDS, load_config
from auditor.kinds import parse_kind

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "admission"
KUBERNETES = "1.33.0"
# cert-manager's own kinds: no Kubernetes schema covers them (checked field by field below)
CERT_MANAGER = "cert-manager.io/v1"


def kustomization() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "kustomization.yaml").read_text()))


def manifests() -> list[dict[str, Any]]:
    out = []
    for name in kustomization()["resources"]:
        out += [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]
    return out


def one(kind: str) -> dict[str, Any]:
    (found,) = [m for m in manifests() if m["kind"] == kind]
    return found


def test_every_file_in_the_folder_is_a_resource_of_the_kustomization() -> None:
    listed = set(kustomization()["resources"]) | {"kustomization.yaml"}
    assert {p.name for p in DEPLOY.glob("*.yaml")} == listed


@pytest.mark.parametrize(
    "manifest",
    [m for m in manifests() if m["apiVersion"] != CERT_MANAGER],
    ids=lambda m: f"{m['kind']}/{m['metadata']['name']}",
)
def test_manifest_is_valid_kubernetes(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_validation_catches_a_broken_manifest() -> None:
    # the check above can fail: a misspelt field in the Deployment is refused
    broken = one("Deployment")
    broken["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_webhook_fails_closed_within_its_timeout_and_skips_system_namespaces() -> None:
    (webhook,) = one("ValidatingWebhookConfiguration")["webhooks"]
    assert webhook["failurePolicy"] == "Fail"
    assert webhook["sideEffects"] == "None"
    assert webhook["admissionReviewVersions"] == ["v1"]
    config = yaml.safe_load(one("ConfigMap")["data"]["auditor.yaml"])
    assert config["admission"]["timeout_seconds"] < webhook["timeoutSeconds"] <= 10
    (expression,) = webhook["namespaceSelector"]["matchExpressions"]
    assert expression["key"] == "kubernetes.io/metadata.name"
    assert expression["operator"] == "NotIn"
    assert set(expression["values"]) == {"kube-system", kustomization()["namespace"]}
    service = webhook["clientConfig"]["service"]
    assert (service["name"], service["namespace"], service["path"]) == (
        one("Service")["metadata"]["name"],
        kustomization()["namespace"],
        "/validate",
    )


def test_webhook_rules_are_the_kinds_the_server_judges() -> None:
    (webhook,) = one("ValidatingWebhookConfiguration")["webhooks"]
    groups = {g for rule in webhook["rules"] for g in rule["apiGroups"]}
    assert groups == {parse_kind(k)[0] for k in DEFAULT_ADMISSION_KINDS}
    assert all(rule["operations"] == ["CREATE", "UPDATE"] for rule in webhook["rules"])


def test_certificate_is_issued_for_the_service_and_injected_as_the_ca() -> None:
    certificate = one("Certificate")
    namespace = kustomization()["namespace"]
    assert certificate["apiVersion"] == CERT_MANAGER
    service = one("Service")["metadata"]["name"]
    assert f"{service}.{namespace}.svc" in certificate["spec"]["dnsNames"]
    issuer = one("Issuer")
    assert certificate["spec"]["issuerRef"] == {
        "name": issuer["metadata"]["name"],
        "kind": "Issuer",
    }
    webhook = one("ValidatingWebhookConfiguration")
    injected = webhook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert injected == f"{namespace}/{certificate['metadata']['name']}"
    volumes = {v["name"]: v for v in one("Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == certificate["spec"]["secretName"]


def test_deployment_is_hardened_probed_limited_and_kept_available() -> None:
    deployment = one("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    labels = spec["template"]["metadata"]["labels"]
    for selector in (
        one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        one("Service")["spec"]["selector"],
    ):
        assert selector.items() <= labels.items()
    assert one("PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_the_shipped_config_is_a_valid_auditor_yaml(tmp_path: Path) -> None:
    text = one("ConfigMap")["data"]["auditor.yaml"]
    key = Path(__file__).resolve().parents[2] / "examples/keys/EXAMPLE-ONLY-release.pub"
    (tmp_path / "auditor.yaml").write_text(text.replace("/etc/auditor/keys/release.pub", str(key)))
    config = load_config(tmp_path / "auditor.yaml")
    assert config.admission.timeout_seconds == 4
    assert config.trust is not None


def test_deployment_args_are_the_serve_command() -> None:
    (container,) = one("Deployment")["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[:2] == ["admission", "serve"]
    given = {a.split("=", 1)[0] for a in args[2:]}
    assert {"--config", "--tls-cert", "--tls-key", "--port", "--workers", "--store"} <= given
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/etc/auditor/tls" in mounts and "/tmp" in mounts

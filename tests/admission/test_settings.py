"""The `admission:` section of auditor.yaml: defaults, and mistakes named by key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.admit import admission_scope
from auditor.config import DEFAULT_ADMISSION_KINDS, AdmissionSettings, load_config
from auditor.errors import ConfigError
from auditor.model import ResourceRef
from tests.conftest import run_main

BASE = """\
git:
  repo: .
clusters:
  - name: prod
    snapshot: live.yaml
"""


def load(tmp_path: Path, admission: str) -> AdmissionSettings:
    path = tmp_path / "auditor.yaml"
    path.write_text(BASE + admission)
    return load_config(path).admission


def test_defaults_fail_closed_within_the_webhook_timeout(tmp_path: Path) -> None:
    settings = load(tmp_path, "")
    assert settings == AdmissionSettings()
    assert settings.fail_open_namespaces == ()
    assert 0 < settings.timeout_seconds < 10


def test_every_key_is_read(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "admission:\n  timeout_seconds: 1.5\n  fail_open_namespaces: [sandbox-*]\n"
        "  kinds: [apps/Deployment]\n  cluster: east\n  cache_size: 10\n"
        "  cache_ttl_seconds: 5\n  refresh_seconds: 30\n  max_body_bytes: 4096\n  queue_size: 7\n",
    )
    assert settings == AdmissionSettings(
        timeout_seconds=1.5,
        fail_open_namespaces=("sandbox-*",),
        kinds=("apps/Deployment",),
        cluster="east",
        cache_size=10,
        cache_ttl_seconds=5,
        refresh_seconds=30,
        max_body_bytes=4096,
        queue_size=7,
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("admission:\n  timeout_seconds: 30\n", "admission.timeout_seconds"),
        ("admission:\n  timeout_seconds: 0\n", "admission.timeout_seconds"),
        ("admission:\n  cache_size: -1\n", "admission.cache_size"),
        ("admission:\n  max_body_bytes: 10\n", "admission.max_body_bytes"),
        ("admission:\n  fail_open_namespaces: sandbox\n", "admission.fail_open_namespaces"),
        ("admission:\n  timeout: 2\n", "admission"),
    ],
)
def test_mistakes_name_the_key_and_line(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    assert key in caught.value.diagnostics()
    assert caught.value.line is not None and caught.value.line >= 6


def test_scope_is_the_serving_kinds_unless_configured(tmp_path: Path) -> None:
    config = load_config((tmp_path / "a.yaml", (tmp_path / "a.yaml").write_text(BASE))[0])
    scope = admission_scope(config)
    assert len(scope.kinds) == len(DEFAULT_ADMISSION_KINDS)
    isvc = ResourceRef("prod", "serving.kserve.io/v1beta1", "InferenceService", "ml", "m")
    config_map = ResourceRef("prod", "v1", "ConfigMap", "ml", "c")
    assert scope.includes(isvc) and not scope.includes(config_map)


def test_serving_without_a_store_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "auditor.yaml"
    path.write_text(BASE)
    result = run_main(
        capsys,
        "admission", "serve", "--config", str(path), "--tls-cert", str(path), "--tls-key", str(path),
    )  # fmt: skip
    assert result.code == 2
    assert "records every decision" in result.err and "store" in result.err
    assert "Traceback" not in result.err

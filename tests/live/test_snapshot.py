"""Snapshot files stand in for a cluster: `kubectl get -o json|yaml` output and plain YAML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from auditor.config import Limits
from auditor.errors import InputError
from auditor.live.snapshot import read_snapshots
from auditor.redact import digest_bytes


def obj(kind: str, name: str, namespace: str | None = None, **extra: object) -> dict[str, object]:
    metadata: dict[str, object] = {"name": name, "resourceVersion": "42", "uid": f"uid-{name}"}
    if namespace:
        metadata["namespace"] = namespace
    api_version = "apps/v1" if kind == "Deployment" else "v1"
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **extra}


OBJECTS = [
    obj("Deployment", "web", "ml", spec={"replicas": 2}),
    obj("ConfigMap", "settings", "ml", data={"a": "1"}),
    obj("Namespace", "ml"),
]
EXPECTED = ["Deployment ml/web", "ConfigMap ml/settings", "Namespace ml"]


def kubectl_list(items: list[dict[str, object]]) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


@pytest.mark.parametrize(
    ("name", "render"),
    [
        ("get.json", lambda: json.dumps(kubectl_list(OBJECTS), indent=4)),
        ("get.yaml", lambda: yaml.safe_dump(kubectl_list(OBJECTS))),
        ("multi.yaml", lambda: yaml.safe_dump_all(OBJECTS)),
        ("array.json", lambda: json.dumps(OBJECTS)),
        ("list-no-suffix", lambda: json.dumps(kubectl_list(OBJECTS))),
    ],
)
def test_snapshot_formats_all_read_the_same(tmp_path: Path, name: str, render: object) -> None:
    path = tmp_path / name
    path.write_text(render())  # type: ignore[operator]
    resources = read_snapshots([str(path)], cluster="prod")
    assert [r.ref.display() for r in resources] == EXPECTED
    assert {r.side for r in resources} == {"live"}
    assert {r.origin for r in resources} == {f"snapshot:{path}"}
    assert {r.ref.cluster for r in resources} == {"prod"}


def test_a_single_object_file(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump(OBJECTS[0]))
    (resource,) = read_snapshots([str(path)], cluster="c")
    assert resource.body["spec"] == {"replicas": 2}
    assert resource.body["metadata"]["uid"] == "uid-web"  # server fields stay: drift decides


def test_objects_keep_their_own_namespace_with_no_defaulting(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump_all([obj("ConfigMap", "a", "team"), obj("ConfigMap", "b")]))
    assert [r.ref.namespace for r in read_snapshots([str(path)], cluster="c")] == ["team", ""]


def test_secret_values_are_redacted_including_last_applied(tmp_path: Path) -> None:
    applied = json.dumps(obj("Secret", "creds", "ml", data={"token": "aHVudGVyMg=="}))
    secret = obj("Secret", "creds", "ml", data={"token": "aHVudGVyMg=="}, type="Opaque")
    secret["metadata"]["annotations"] = {  # type: ignore[index]
        "kubectl.kubernetes.io/last-applied-configuration": applied
    }
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps(kubectl_list([secret])))
    (resource,) = read_snapshots([str(path)], cluster="c")
    assert resource.body["data"] == {"token": digest_bytes(b"hunter2")}
    assert "aHVudGVyMg" not in json.dumps(dict(resource.body))


def test_typed_lists_from_the_raw_api_get_kind_and_api_version(tmp_path: Path) -> None:
    raw = {
        "apiVersion": "apps/v1",
        "kind": "DeploymentList",
        "items": [{"metadata": {"name": "web", "namespace": "ml"}, "spec": {}}],
    }
    path = tmp_path / "raw.json"
    path.write_text(json.dumps(raw))
    (resource,) = read_snapshots([str(path)], cluster="c")
    assert (resource.ref.api_version, resource.ref.kind) == ("apps/v1", "Deployment")


def test_several_files_are_read_in_order_and_overlaps_kept_once(tmp_path: Path) -> None:
    first, second = tmp_path / "all.json", tmp_path / "deploys.yaml"
    first.write_text(json.dumps(kubectl_list(OBJECTS)))
    second.write_text(yaml.safe_dump_all([OBJECTS[0], obj("Deployment", "api", "ml")]))
    resources = read_snapshots([str(first), str(second)], cluster="c")
    assert [r.ref.display() for r in resources] == [*EXPECTED, "Deployment ml/api"]


def test_one_object_with_two_different_contents_names_both_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(yaml.safe_dump(obj("Deployment", "web", "ml", spec={"replicas": 1})))
    second.write_text(yaml.safe_dump(obj("Deployment", "web", "ml", spec={"replicas": 5})))
    with pytest.raises(InputError, match="appears twice") as info:
        read_snapshots([str(first), str(second)], cluster="c")
    assert f"{first}:1 and {second}:1" in info.value.message


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(InputError, match="snapshot file not found") as info:
        read_snapshots([str(missing)], cluster="c")
    assert info.value.file == str(missing)


def test_a_folder_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        read_snapshots([str(tmp_path)], cluster="c")


def test_the_size_limit_is_checked_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps(kubectl_list(OBJECTS)))
    with pytest.raises(InputError, match="over the 100-byte limit"):
        read_snapshots([str(path)], cluster="c", limits=Limits(max_snapshot_bytes=100))


@pytest.mark.parametrize(
    ("content", "message", "line"),
    [
        ("replicaCount: 3\n", "not a Kubernetes object", 1),
        (
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
            "ConfigMap has no metadata.name",
            2,
        ),
        ("items: [1, 2\n", "invalid YAML", 2),
        ('{"apiVersion": "v1",\n "kind": }', "invalid JSON", 2),
    ],
)
def test_bad_snapshots_are_input_errors_with_file_and_line(
    tmp_path: Path, content: str, message: str, line: int
) -> None:
    path = tmp_path / ("s.json" if content.startswith("{") else "s.yaml")
    path.write_text(content)
    with pytest.raises(InputError, match=message) as info:
        read_snapshots([str(path)], cluster="c")
    assert (info.value.file, info.value.line) == (str(path), line)


def test_an_empty_list_is_an_empty_cluster(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text(json.dumps(kubectl_list([])))
    assert read_snapshots([str(path)], cluster="c") == ()


def test_secret_digests_are_keyed_so_weak_secrets_cannot_be_guessed_offline() -> None:
    import hashlib
    import subprocess
    import sys

    digest = digest_bytes(b"admin")
    assert digest.startswith("hmac-sha256:")
    # the plain hash of a guessable value is what an attacker would compare against
    assert hashlib.sha256(b"admin").hexdigest() not in digest
    # the key is made per run: another process digests the same value differently
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "from auditor.redact import digest_bytes; print(digest_bytes(b'admin'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert other.startswith("hmac-sha256:") and other != digest
    # within a run, equal values still compare equal: drift needs that
    assert digest_bytes(b"admin") == digest

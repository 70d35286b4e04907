"""`auditor audit --metrics-file` and `--pushgateway`: what a run reports to Prometheus, read
back with prometheus_client's own parser; the last success survives a run that fails."""

from __future__ import annotations

import json
import socket
from collections import Counter
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from auditor.exit_codes import ExitCode
from tests.conftest import run_cli
from tests.kubeapi.builders import configmap
from tests.kubeapi.server import Fault, KubeAPIServer
from tests.observe.pushgateway import Pushgateway

LAST_SUCCESS = "auditor_last_success_timestamp_seconds"
LAST_RUN = "auditor_last_run_timestamp_seconds"
GROUP = (("job", "auditor"),)


def read_metrics(path: Path) -> dict[str, float]:
    """`name{label="v",...}` -> value, as Prometheus would scrape the file."""
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def audit(config: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli("audit", "--config", str(config), *args)
    return result.code, result.out, result.err


def test_findings_are_counted_by_category_and_severity(
    config: Path, tmp_path: Path, kube: KubeAPIServer
) -> None:
    drifted = configmap("features-0")
    drifted["data"]["model"] = "changed by hand"
    kube.add(drifted)
    kube.add(configmap("by-hand"))  # unmanaged
    path = tmp_path / "auditor.prom"
    code, out, err = audit(
        config, "--metrics-file", str(path), "--fail-on", "critical", "-o", "json"
    )
    assert code == ExitCode.CLEAN, err
    expected = Counter((f["category"], f["severity"]) for f in json.loads(out)["findings"])
    assert sum(expected.values()) == 2
    metrics = read_metrics(path)
    reported = {
        (k.split('category="')[1].split('"')[0], k.split('severity="')[1].split('"')[0]): v
        for k, v in metrics.items()
        if k.startswith("auditor_findings{") and v
    }
    assert reported == expected


def test_a_clean_run_then_an_incomplete_one_keeps_the_last_success(
    config: Path, tmp_path: Path, kube: KubeAPIServer
) -> None:
    path = tmp_path / "textfile" / "auditor.prom"
    path.parent.mkdir()
    code, _, err = audit(config, "--metrics-file", str(path))
    assert code == ExitCode.CLEAN, err
    first = read_metrics(path)
    assert first['auditor_run_status{status="complete"}'] == 1
    assert first['auditor_run_status{status="failed"}'] == 0
    assert first["auditor_run_exit_code"] == 0
    assert first[LAST_SUCCESS] == first[LAST_RUN]
    assert first["auditor_run_duration_seconds"] > 0
    for stage in ('cluster="",stage="desired"', 'cluster="prod",stage="live"',
                  'cluster="prod",stage="drift"', 'cluster="",stage="store"'):  # fmt: skip
        assert first[f"auditor_stage_ok{{{stage}}}"] == 1, stage
    assert first['auditor_resources{status="in_sync"}'] == 3
    assert sum(v for k, v in first.items() if k.startswith("auditor_findings{")) == 0
    # written atomically: the temporary file was renamed over the target, none is left behind
    assert [p.name for p in path.parent.iterdir()] == ["auditor.prom"]
    assert path.stat().st_mode & 0o044 == 0o044  # node-exporter, another user, reads it

    kube.inject(Fault(status=403, plural="configmaps"))
    code, _, err = audit(config, "--metrics-file", str(path))
    assert code == ExitCode.INCOMPLETE, err
    second = read_metrics(path)
    assert second['auditor_run_status{status="incomplete"}'] == 1
    assert second["auditor_run_exit_code"] == ExitCode.INCOMPLETE
    assert second['auditor_stage_ok{cluster="prod",stage="live"}'] == 0
    assert second['auditor_stage_ok{cluster="",stage="desired"}'] == 1
    assert second[LAST_SUCCESS] == first[LAST_SUCCESS] < second[LAST_RUN]


def test_a_failed_run_reports_failed_and_no_success_it_never_had(
    config: Path, tmp_path: Path
) -> None:
    document = yaml.safe_load(config.read_text())
    document["git"]["revision"] = "no-such-branch"
    config.write_text(yaml.safe_dump(document))
    path = tmp_path / "auditor.prom"
    code, _, err = audit(config, "--metrics-file", str(path))
    assert code == ExitCode.USAGE, err
    metrics = read_metrics(path)
    assert metrics['auditor_run_status{status="failed"}'] == 1
    assert metrics["auditor_run_exit_code"] == ExitCode.USAGE
    assert metrics['auditor_stage_ok{cluster="",stage="desired"}'] == 0
    assert LAST_SUCCESS not in metrics


def test_a_metrics_file_the_collector_would_not_read_is_refused_before_the_run(
    config: Path, tmp_path: Path
) -> None:
    code, _, err = audit(config, "--metrics-file", str(tmp_path / "auditor.txt"))
    assert code == ExitCode.USAGE
    assert "--metrics-file" in err and ".prom" in err and "Traceback" not in err
    assert not (tmp_path / "audit.db").exists()  # refused before anything was recorded


def test_the_pushgateway_gets_the_run_and_keeps_the_last_success(
    config: Path, kube: KubeAPIServer
) -> None:
    with Pushgateway() as gateway:
        assert audit(config, "--pushgateway", gateway.url)[0] == ExitCode.CLEAN
        [push] = gateway.pushes
        assert (push.method, push.path) == ("PUT", "/metrics/job/auditor")
        first = gateway.samples(GROUP)
        assert first['auditor_run_status{status="complete"}'] == 1
        assert first[LAST_SUCCESS] == first[LAST_RUN]

        kube.inject(Fault(status=403, plural="configmaps"))
        assert audit(config, "--pushgateway", gateway.url)[0] == ExitCode.INCOMPLETE
        second_push = gateway.pushes[-1]
        # POST replaces only what it sends, and it sends no last-success time
        assert second_push.method == "POST"
        assert LAST_SUCCESS not in second_push.body
        second = gateway.samples(GROUP)
        assert second['auditor_run_status{status="incomplete"}'] == 1
        assert second[LAST_SUCCESS] == first[LAST_SUCCESS] < second[LAST_RUN]


def test_an_unreachable_pushgateway_is_logged_and_the_exit_code_stays(config: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    code, _, err = audit(config, "--pushgateway", url)
    assert code == ExitCode.CLEAN
    [record] = [json.loads(line) for line in err.splitlines() if url in line]
    assert record["level"] == "error" and "not pushed" in record["event"]


def test_grouping_labels_keep_pushes_apart() -> None:
    from datetime import UTC, datetime

    from auditor.observe.metrics import RunMetrics, push_metrics

    now = datetime.now(UTC)
    metrics = RunMetrics(status="complete", exit_code=0, started=now, finished=now)
    with Pushgateway() as gateway:
        push_metrics(gateway.url, metrics, grouping={"shard": "0"})
        push_metrics(gateway.url, metrics, grouping={"shard": "1"})
        assert [p.path for p in gateway.pushes] == [
            "/metrics/job/auditor/shard/0",
            "/metrics/job/auditor/shard/1",
        ]
        for shard in ("0", "1"):
            assert gateway.samples((("job", "auditor"), ("shard", shard)))[LAST_SUCCESS] > 0

"""What a run says on stderr while it runs: JSON lines when stderr is not a terminal (a CronJob's
log), a live view per cluster and stage on a terminal, and -q / -v that do what they say."""

from __future__ import annotations

import base64
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import yaml

from auditor.exit_codes import ExitCode
from tests.conftest import GitRepo, run_cli
from tests.kubeapi.builders import secret
from tests.kubeapi.server import Fault, KubeAPIServer

STAGES = [("desired", ""), ("live", "prod"), ("drift", "prod"), ("store", "")]


def json_lines(err: str) -> list[dict[str, object]]:
    lines = err.splitlines()
    assert lines, "nothing on stderr"
    return [json.loads(line) for line in lines]  # every line is one JSON object


def test_stderr_that_is_not_a_terminal_gets_one_json_object_a_line(config: Path) -> None:
    result = run_cli("audit", "--config", str(config))
    assert result.code == ExitCode.CLEAN, result.err
    records = json_lines(result.err)
    finished = [(r["stage"], r.get("cluster", "")) for r in records if r.get("state") == "finished"]
    assert finished == STAGES
    live = next(r for r in records if r.get("stage") == "live" and r["state"] == "finished")
    assert live["resources"] >= 3 and live["errors"] == 0 and live["level"] == "info"
    assert {"timestamp", "logger", "event", "seconds"} <= set(live)
    assert records[-1]["status"] == "complete" and str(records[-1]["run"])
    # what -v adds is not there by default
    assert not [r for r in records if str(r["event"]).startswith("cluster prod: list")]


def test_a_stage_that_left_something_unread_is_a_warning(config: Path, kube: KubeAPIServer) -> None:
    kube.inject(Fault(status=403, plural="configmaps"))
    result = run_cli("audit", "--config", str(config))
    assert result.code == ExitCode.INCOMPLETE
    [live] = [
        r for r in json_lines(result.err) if r.get("stage") == "live" and r["state"] == "finished"
    ]
    assert (live["level"], live["errors"]) == ("warning", 1)


def test_quiet_prints_nothing_on_a_clean_run(config: Path) -> None:
    result = run_cli("-q", "audit", "--config", str(config))
    assert (result.code, result.err) == (ExitCode.CLEAN, "")


def test_quiet_still_prints_the_error(config: Path) -> None:
    config.write_text(config.read_text().replace("policy:", "polizy:"))
    result = run_cli("-q", "audit", "--config", str(config))
    assert result.code == ExitCode.USAGE and "polizy" in result.err


def test_verbose_adds_what_each_stage_read(config: Path) -> None:
    records = json_lines(run_cli("-v", "audit", "--config", str(config)).err)
    read = [str(r["event"]) for r in records if r["logger"] != "auditor.progress"]
    assert any(e.startswith("cluster prod: list configmaps in namespace ml: 3") for e in read)
    assert any(e.startswith("Git ") and "3 objects" in e for e in read), read
    assert all(r["level"] != "debug" for r in records)  # that is -vv


def test_a_terminal_gets_a_live_view_per_cluster_and_stage(config: Path) -> None:
    controller, terminal = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm-256color", "NO_COLOR": "1"}
    env.pop("AUDITOR_LOG_FORMAT", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "auditor", "audit", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal,
        env=env,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    proc.communicate(timeout=120)
    os.close(controller)
    assert proc.returncode == ExitCode.CLEAN
    text = shown.decode(errors="replace")
    assert "prod" in text and "drift ✓" in text and "store ✓" in text, text
    assert '"event"' not in text  # not the JSON lines
    assert "run " in text and ": complete" in text


def test_secret_values_reach_neither_logs_nor_metrics(
    config: Path, tmp_path: Path, git_repo: GitRepo, kube: KubeAPIServer
) -> None:
    in_git, live = "git-value-do-not-log", "live-value-do-not-log"
    git_repo.write("ml/secret.yaml", yaml.safe_dump(secret("token", in_git)))
    git_repo.commit("a secret")
    kube.add(secret("token", live))
    metrics = tmp_path / "auditor.prom"
    result = run_cli(
        "-vv", "audit", "--config", str(config), "--metrics-file", str(metrics), "--fail-on", "info"
    )
    assert result.code == ExitCode.FINDINGS, result.err  # the Secret drifted
    shown = result.err + metrics.read_text()
    for value in (in_git, live):
        for form in (value, base64.b64encode(value.encode()).decode()):
            assert form not in shown
    assert any(json.loads(line).get("level") == "debug" for line in result.err.splitlines())


def test_setting_up_logging_twice_keeps_one_handler_and_leaves_others_alone() -> None:
    import logging

    from auditor.observe.logs import setup_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    foreign = logging.NullHandler()
    root.addHandler(foreign)
    try:
        setup_logging(0, "json")
        setup_logging(1, "text")
        ours = [h for h in root.handlers if h is not foreign and h not in saved[0]]
        assert len(ours) == 1 and foreign in root.handlers
        assert root.level == logging.INFO
    finally:
        root.handlers, root.level = saved[0], saved[1]


def test_json_logs_load_structlog_only_when_a_line_is_written() -> None:
    # structlog (and the rich and asyncio it imports) is a tenth of a second of every start-up;
    # a run that logs nothing, such as a clean `auditor drift`, should not pay for it
    script = (
        "import logging, sys\n"
        "from auditor.observe.logs import setup_logging\n"
        "setup_logging(0, 'json')\n"
        "print('structlog' in sys.modules)\n"
        "logging.getLogger('auditor.test').warning('cluster %s unread', 'prod')\n"
        "print('structlog' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["False", "True"]
    line = json.loads(done.stderr)
    assert line["event"] == "cluster prod unread"
    assert line["level"] == "warning"

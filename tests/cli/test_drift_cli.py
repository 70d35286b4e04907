"""`auditor drift` and `auditor audit` as scripts use them: JSON contract, exit codes, bad input."""

from __future__ import annotations

import ast
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from tests.conftest import GitRepo, run_cli

CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: model-config
  namespace: ml
data:
  threshold: "0.8"
"""
SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: hub-token
  namespace: ml
stringData:
  token: planted-secret-value-0001
"""


def snapshot(tmp_path: Path, *objects: dict) -> Path:
    path = tmp_path / "live.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))
    return path


def live_configmap(threshold: str = "0.8") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "model-config",
            "namespace": "ml",
            "uid": "u1",
            "resourceVersion": "9",
            "creationTimestamp": "2026-11-01T00:00:00Z",
        },
        "data": {"threshold": threshold},
    }


def drift(repo: GitRepo, live: Path, *extra: str) -> tuple[int, dict, str]:
    result = run_cli(
        "drift", "--repo", str(repo.path), "--live-snapshot", str(live), "-o", "json", *extra
    )
    doc = json.loads(result.out) if result.out.strip() else {}
    return result.code, doc, result.err


def test_in_sync_exits_0_with_the_contract_shape(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.write("ml/config.yaml", CONFIGMAP)
    commit = git_repo.commit()
    code, doc, err = drift(git_repo, snapshot(tmp_path, live_configmap()))
    assert code == 0, err
    assert doc["commit"] == commit
    assert doc["status"] == "in_sync"
    assert doc["summary"] == {
        "resources": 1,
        "in_sync": 1,
        "drifted": 0,
        "missing": 0,
        "unmanaged": 0,
    }
    assert doc["findings"] == []


def test_drift_exits_1_and_every_finding_has_the_contract_fields(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    git_repo.write("ml/config.yaml", CONFIGMAP)
    git_repo.commit()
    code, doc, _ = drift(git_repo, snapshot(tmp_path, live_configmap("0.1")))
    assert code == 1
    (finding,) = doc["findings"]
    assert set(finding) >= {
        "category",
        "check",
        "severity",
        "class",
        "resource",
        "path",
        "expected",
        "actual",
        "message",
        "changed_by",
        "fingerprint",
    }
    assert finding["check"] == "drift.changed"
    assert (finding["path"], finding["expected"], finding["actual"]) == (
        "/data/threshold",
        "0.8",
        "0.1",
    )
    assert "ConfigMap ml/model-config" in finding["message"]


def test_uncommitted_edits_are_ignored(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.write("ml/config.yaml", CONFIGMAP)
    git_repo.commit()
    git_repo.write("ml/config.yaml", CONFIGMAP.replace('"0.8"', '"0.1"'))
    git_repo.write("ml/untracked.yaml", CONFIGMAP.replace("model-config", "untracked"))
    code, doc, _ = drift(git_repo, snapshot(tmp_path, live_configmap("0.8")))
    assert code == 0, doc


def test_revision_pins_an_older_commit(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.write("ml/config.yaml", CONFIGMAP)
    first = git_repo.commit("v1")
    git_repo.write("ml/config.yaml", CONFIGMAP.replace('"0.8"', '"0.1"'))
    git_repo.commit("v2")
    code, doc, _ = drift(
        git_repo, snapshot(tmp_path, live_configmap("0.8")), "--revision", first[:8]
    )
    assert code == 0
    assert doc["commit"] == first


def test_secret_value_is_absent_everywhere(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.write("ml/secret.yaml", SECRET)
    git_repo.commit()
    import base64
    import hashlib

    live = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": "hub-token", "namespace": "ml"},
        "data": {"token": base64.b64encode(b"planted-secret-value-0002").decode()},
    }
    code, doc, err = drift(
        git_repo,
        snapshot(tmp_path, live),
    )
    assert code == 1
    text = run_cli(
        "-vv", "drift", "--repo", str(git_repo.path), "--live-snapshot", str(tmp_path / "live.json")
    )
    for output in (json.dumps(doc), err, text.out, text.err):
        assert "planted-secret-value-0001" not in output
        assert "planted-secret-value-0002" not in output
        assert base64.b64encode(b"planted-secret-value-0002").decode() not in output
        # nor a plain hash, which a weak secret could be guessed back from
        assert hashlib.sha256(b"planted-secret-value-0002").hexdigest() not in output
    assert doc["findings"][0]["expected"].startswith("hmac-sha256:")


@pytest.mark.parametrize(
    ("files", "words", "where"),
    [
        (
            {"ml/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n"},
            "invalid YAML",
            r"ml/bad\.yaml@[0-9a-f]{12}:\d+: ",
        ),
        (
            {"ml/noname.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"},
            "metadata.name",
            r"ml/noname\.yaml@[0-9a-f]{12}:1: ",
        ),
    ],
)
def test_bad_manifest_exits_2_naming_file_and_line(
    git_repo: GitRepo, tmp_path: Path, files: dict[str, str], words: str, where: str
) -> None:
    for path, text in files.items():
        git_repo.write(path, text)
    git_repo.commit()
    code, doc, err = drift(git_repo, snapshot(tmp_path))
    assert code == 2
    assert words in err
    assert re.search(where, err), err
    assert "Traceback" not in err
    assert doc == {}


def test_alias_bomb_is_rejected_fast(git_repo: GitRepo, tmp_path: Path) -> None:
    lines = [
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata: {name: bomb}",
        'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    git_repo.write("ml/bomb.yaml", "\n".join(lines) + "\n")
    git_repo.commit()
    code, _, err = drift(git_repo, snapshot(tmp_path))
    assert code == 2
    assert "alias" in err and "ml/bomb.yaml" in err
    assert "Traceback" not in err


def test_oversized_manifest_is_rejected_by_the_size_limit(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    big = git_repo.path / "ml" / "big.yaml"
    big.parent.mkdir(parents=True)
    with open(big, "w") as handle:
        handle.write("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n  blob: ")
        handle.write("x" * (50 * 1024 * 1024))
        handle.write("\n")
    git_repo.commit()
    code, _, err = drift(git_repo, snapshot(tmp_path))
    assert code == 2
    assert "ml/big.yaml" in err and "limit" in err


def test_path_escaping_the_repo_is_refused(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.write("ml/config.yaml", CONFIGMAP)
    git_repo.commit()
    code, _, err = drift(git_repo, snapshot(tmp_path), "--path", "../")
    assert code == 2
    assert "Traceback" not in err and ".." in err


def test_symlink_escaping_the_repo_is_refused(git_repo: GitRepo, tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(CONFIGMAP)
    git_repo.write("ml/config.yaml", CONFIGMAP)
    os.symlink(outside, git_repo.path / "ml" / "escape.yaml")
    git_repo.commit()
    code, _, err = drift(git_repo, snapshot(tmp_path))
    assert code == 2
    assert "ml/escape.yaml" in err and "Traceback" not in err


def test_unknown_revision_exits_2(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.write("ml/config.yaml", CONFIGMAP)
    git_repo.commit()
    code, _, err = drift(git_repo, snapshot(tmp_path), "--revision", "no-such-branch")
    assert code == 2
    assert "no-such-branch" in err and "Traceback" not in err


def test_missing_snapshot_file_exits_2(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.write("ml/config.yaml", CONFIGMAP)
    git_repo.commit()
    code, _, err = drift(git_repo, tmp_path / "nope.json")
    assert code == 2
    assert "nope.json" in err


def test_default_namespace_applies_to_git_objects_without_one(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    git_repo.write("config.yaml", CONFIGMAP.replace("  namespace: ml\n", ""))
    git_repo.commit()
    code, doc, _ = drift(
        git_repo, snapshot(tmp_path, live_configmap()), "--default-namespace", "ml"
    )
    assert code == 0, doc


def audit_config(tmp_path: Path, repo: GitRepo, live: Path) -> Path:
    config = tmp_path / "auditor.yaml"
    config.write_text(
        f"git: {{repo: {repo.path}}}\nclusters:\n  - name: prod\n    snapshot: {live}\n"
        f"store: {tmp_path / 'audit.db'}\n"
    )
    return config


def test_the_stored_exit_code_is_judged_at_the_commands_fail_on(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    git_repo.write("ml/config.yaml", CONFIGMAP)
    git_repo.commit()
    config = audit_config(tmp_path, git_repo, snapshot(tmp_path, live_configmap("0.1")))
    at_config = run_cli("audit", "--config", str(config))  # fail_on: high, the drift is medium
    stricter = run_cli("audit", "--config", str(config), "--fail-on", "medium")
    assert (at_config.code, stricter.code) == (0, 1), (at_config.err, stricter.err)
    db = sqlite3.connect(tmp_path / "audit.db")
    stored = [code for (code,) in db.execute("select exit_code from runs order by started")]
    assert stored == [0, 1]


def test_bad_input_records_a_failed_run_and_nothing_half_written(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    git_repo.write("ml/config.yaml", CONFIGMAP)
    git_repo.commit()
    config = audit_config(tmp_path, git_repo, snapshot(tmp_path, live_configmap("0.1")))
    first = run_cli("audit", "--config", str(config), "--fail-on", "medium")
    assert first.code == 1, first.err
    git_repo.write("ml/bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n")
    git_repo.commit()
    second = run_cli("audit", "--config", str(config))
    assert second.code == 2 and "ml/bad.yaml" in second.err and "Traceback" not in second.err
    db = sqlite3.connect(tmp_path / "audit.db")
    assert db.execute("pragma integrity_check").fetchone() == ("ok",)
    rows = db.execute("select status, finished is not null from runs order by started").fetchall()
    assert rows == [("complete", 1), ("failed", 1)]
    failed_id = db.execute("select id from runs where status = 'failed'").fetchone()[0]
    assert db.execute(
        "select count(*) from findings where run_id = ?", (failed_id,)
    ).fetchone() == (0,)
    (message,) = db.execute("select message from errors where run_id = ?", (failed_id,)).fetchone()
    assert "ml/bad.yaml" in message


def test_bad_config_exits_2_and_creates_no_store(tmp_path: Path) -> None:
    config = tmp_path / "auditor.yaml"
    config.write_text(f"git: {{repo: x}}\nclusters: []\nstore: {tmp_path / 'audit.db'}\n")
    result = run_cli("audit", "--config", str(config))
    assert result.code == 2
    assert "auditor.yaml:2" in result.err and "clusters" in result.err
    assert not (tmp_path / "audit.db").exists()


def test_drift_on_a_snapshot_loads_only_what_drift_needs(git_repo: GitRepo, tmp_path: Path) -> None:
    # `auditor drift` starts a fresh Python for every check: the audit's stages, the other
    # commands and the values only they build are left unimported (DESIGN: drift is "fast")
    git_repo.write("cm.yaml", CONFIGMAP)
    git_repo.commit()
    live = snapshot(tmp_path, live_configmap("0.9"))
    script = (
        "import sys\n"
        "from auditor.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as exc:\n"
        "    print('exit', exc.code, file=sys.stderr)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('auditor', 'kubernetes', "
        "'jsonschema'))), file=sys.stderr)\n"
    )
    args = ["drift", "--repo", str(git_repo.path), "--live-snapshot", str(live), "-o", "json"]
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60
    )
    assert json.loads(done.stdout)["summary"]["drifted"] == 1
    exit_line, modules_line = done.stderr.strip().splitlines()[-2:]
    assert exit_line == "exit 1"
    loaded = set(ast.literal_eval(modules_line))
    assert {"auditor.cli.drift", "auditor.pipeline", "auditor.drift", "auditor.model"} <= loaded
    never = (
        "kubernetes",
        "jsonschema",
        "auditor.model._",  # the values of provenance, policy, stored runs and admission
        "auditor.policy",
        "auditor.provenance",
        "auditor.store",
        "auditor.trust",
        "auditor.serving",
        "auditor.reports.text",
    )
    unwanted = {
        m
        for m in loaded
        if m.startswith(never)
        or (m.startswith("auditor.cli.") and m not in ("auditor.cli.drift", "auditor.cli.options"))
    }
    assert not unwanted, f"auditor drift imported {sorted(unwanted)}"


def drift_in_sync_to(
    stdout: int | IO[str] | None,
    git_repo: GitRepo,
    tmp_path: Path,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`auditor drift -o json` of an in-sync repo, as its own process, writing to `stdout`
    (`preexec_fn` runs in the child before it starts)."""
    git_repo.write("ml/config.yaml", CONFIGMAP)
    git_repo.commit()
    live = snapshot(tmp_path, live_configmap())
    return subprocess.run(
        [sys.executable, "-m", "auditor", "drift", "--repo", str(git_repo.path),
         "--live-snapshot", str(live), "-o", "json"],
        stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60, preexec_fn=preexec_fn,
    )  # fmt: skip


def test_a_reader_gone_before_the_output_is_written_is_never_a_clean_exit(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    # `auditor drift | head -1` under pipefail: with the reader gone the verdict went unseen,
    # so even an in-sync run must not exit 0; nor is it a traceback or an "internal error"
    # (click ends a command whose output pipe broke with exit 1)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = drift_in_sync_to(write_end, git_repo, tmp_path)
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr


def test_output_to_a_full_disk_is_a_clear_error_not_a_bug(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    # `auditor drift > /mnt/full/out.json`: the machine's fault, said as the store says a
    # full disk (exit 2), never "internal error" (exit 4, "a bug in auditor")
    with open("/dev/full", "w") as full:  # every write fails with ENOSPC
        done = drift_in_sync_to(full, git_repo, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "auditor: error: writing the output (stdout)" in done.stderr
    assert "No space left on device" in done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr


def close_stdout() -> None:
    os.close(1)


def test_a_closed_stdout_is_a_clear_error_not_a_bug(git_repo: GitRepo, tmp_path: Path) -> None:
    # `auditor drift >&-` (a cron line that closes it): Python starts without sys.stdout;
    # said in one line naming stdout (exit 2), never "internal error" (exit 4, "a bug")
    done = drift_in_sync_to(None, git_repo, tmp_path, preexec_fn=close_stdout)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("auditor: error: stdout is closed"), done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr

"""The policy stage under hostile input and runaway policies, through the real CLI.

An object nested far deeper than any real one (anyone who can create one object in an audited
namespace can plant it) and a policy that never finishes must each cost one `error`
evaluation, never the audit: exit 3 (incomplete), the other resources and policies evaluated,
no traceback. Interrupting or killing `auditor` mid-evaluation must leave no policy worker
process behind.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import GitRepo, run_cli
from tests.policy.gatekeeper.builders import REQUIRED_LABELS_REGO, constraint_yaml, template_yaml

TEAM_LABEL = """\
package hostile.team_label

import rego.v1

deny contains msg if {
  input.resource.kind == "ConfigMap"
  not input.resource.metadata.labels.team
  msg := sprintf("ConfigMap %s has no team label", [input.resource.metadata.name])
}
"""

# Ten billion iterations without allocating: it runs for the better part of an hour.
RUNAWAY = """\
package hostile.runaway

import rego.v1

deny contains "never reached" if {
  some i in numbers.range(1, 100000)
  some j in numbers.range(1, 100000)
  i * j == -1
}
"""


def nested(levels: int) -> dict[str, Any]:
    """`{"k": {"k": ... "leaf"}}`: `levels` mappings deep."""
    value: Any = "leaf"
    for _ in range(levels):
        value = {"k": value}
    return value


def config_map(name: str, *, team: str | None = None, **extra: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "ml"}
    if team:
        metadata["labels"] = {"team": team}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, **extra}


def write_policies(directory: Path, **files: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / f"{name}.rego").write_text(text)
    return directory


def write_json(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


def assert_no_trace(err: str) -> None:
    assert "Traceback" not in err and "Stack backtrace" not in err and "internal error" not in err


def eval_json(*args: str) -> tuple[int, dict[str, Any], str]:
    result = run_cli("policy", "eval", *args, "-o", "json")
    return result.code, json.loads(result.out) if result.out.strip() else {}, result.err


def results(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["policy"], e["resource"]["name"]): e for e in doc["evaluations"]}


# -- deep nesting ------------------------------------------------------------------------


def audit_setup(
    tmp_path: Path,
    git_repo: GitRepo,
    *,
    git: list[dict[str, Any]],
    live: list[dict[str, Any]],
    **policy: Any,
) -> Path:
    git_repo.write("ml/objects.yaml", yaml.safe_dump_all(git))
    git_repo.commit()
    write_json(tmp_path / "live.json", {"apiVersion": "v1", "kind": "List", "items": live})
    policies = write_policies(tmp_path / "policies", team_label=TEAM_LABEL)
    path = tmp_path / "auditor.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "git": {"repo": str(git_repo.path)},
                "clusters": [{"name": "prod", "snapshot": str(tmp_path / "live.json")}],
                # the shipped library too: it holds Gatekeeper-free Rego, and Git is always
                # handed to plug-ins as Gatekeeper's data.inventory
                "policy": {"paths": ["builtin", str(policies)], **policy},
                "store": str(tmp_path / "audit.db"),
            }
        )
    )
    return path


def incomplete_audit(
    tmp_path: Path, config: Path
) -> tuple[dict[str, Any], dict[tuple[str, str], tuple[str, str]], str]:
    """`auditor audit` that must end incomplete (exit 3) without a trace: its JSON, its stored
    evaluations by (policy, object name), its stderr."""
    result = run_cli("audit", "--config", str(config), "-o", "json")
    assert result.code == 3, result.err
    assert_no_trace(result.err)
    doc = json.loads(result.out)
    assert doc["run"]["status"] == "incomplete"
    return doc, stored_evaluations(tmp_path, doc["run"]["id"]), result.err


def stored_evaluations(tmp_path: Path, run_id: str) -> dict[tuple[str, str], tuple[str, str]]:
    db = sqlite3.connect(tmp_path / "audit.db")
    rows = db.execute(
        "select policy, name, result, coalesce(error, '') from evaluations where run_id = ?",
        (run_id,),
    ).fetchall()
    return {(policy, name): (result, error) for policy, name, result, error in rows}


def test_a_200_deep_unmanaged_config_map_in_a_live_snapshot_is_an_error_evaluation_not_a_crash(
    tmp_path: Path, git_repo: GitRepo
) -> None:
    owned = config_map("owned", team="risk", data={"a": "1"})
    deep = config_map("deep", team="risk", data={"a": "1"}, x=nested(200))
    path = audit_setup(tmp_path, git_repo, git=[owned], live=[owned, deep])

    doc, evaluations, _ = incomplete_audit(tmp_path, path)

    # every policy over the deep object is an error that names its depth ...
    deep_results = {k: v for k, v in evaluations.items() if k[1] == "deep"}
    assert deep_results and {r for r, _ in deep_results.values()} == {"error"}
    # the object is 201 levels (itself and `x`'s 200), its input one more
    assert all("input nests 202 levels deep" in e for _, e in deep_results.values())
    # ... while the other object is still judged by every policy
    assert evaluations[("hostile.team_label", "owned")] == ("pass", "")
    assert {r for (_, name), (r, _) in evaluations.items() if name == "owned"} == {"pass"}
    deep_findings = {f["check"] for f in doc["findings"] if f["resource"]["name"] == "deep"}
    assert deep_findings == {"drift.unmanaged", "policy.error"}
    error = next(f for f in doc["findings"] if f["check"] == "policy.error")
    assert error["message"].startswith("ConfigMap ml/deep: policy ")


def test_a_deep_manifest_in_git_is_an_error_evaluation_and_never_breaks_the_inventory(
    tmp_path: Path, git_repo: GitRepo
) -> None:
    # 150 levels pass the YAML reader (200) but not the JSON the engine reads data from; Git
    # is Gatekeeper's data.inventory, so every policy would fail to load if it went there
    owned = config_map("owned", team="risk", data={"a": "1"})
    deep = config_map("deep", team="risk", x=nested(150))
    path = audit_setup(tmp_path, git_repo, git=[owned, deep], live=[owned, deep])
    gatekeeper = tmp_path / "policies" / "gatekeeper"
    gatekeeper.mkdir()
    (gatekeeper / "template.yaml").write_text(
        template_yaml("K8sRequiredLabels", REQUIRED_LABELS_REGO)
    )
    match = {"kinds": [{"apiGroups": [""], "kinds": ["ConfigMap"]}]}
    (gatekeeper / "constraint.yaml").write_text(
        constraint_yaml(
            "K8sRequiredLabels", "team", {"match": match, "parameters": {"labels": ["team"]}}
        )
    )

    _, evaluations, err = incomplete_audit(tmp_path, path)

    assert "ConfigMap deep left out of data.inventory: it nests 151 levels deep" in err
    assert evaluations[("hostile.team_label", "deep")][0] == "error"
    assert evaluations[("hostile.team_label", "owned")] == ("pass", "")
    # a Gatekeeper constraint's own input (input.review.object) is bounded the same way
    team = "K8sRequiredLabels/team"
    assert evaluations[(team, "deep")] == (
        "error",
        "input nests 153 levels deep, over the policy engine's limit of 100: not evaluated",
    )
    assert evaluations[(team, "owned")] == ("pass", "")


def test_policy_eval_of_a_200_deep_object_names_it_and_still_judges_the_others(
    tmp_path: Path,
) -> None:
    policies = write_policies(tmp_path / "policies", team_label=TEAM_LABEL)
    deep = write_json(tmp_path / "deep.json", config_map("deep", x=nested(200)))
    plain = write_json(tmp_path / "plain.json", config_map("plain"))

    code, doc, err = eval_json("--policy", str(policies), str(deep), str(plain))

    assert code == 3, err
    assert_no_trace(err)
    by = results(doc)
    assert by[("hostile.team_label", "deep")]["result"] == "error"
    assert by[("hostile.team_label", "plain")]["result"] == "fail"
    (error,) = [f for f in doc["findings"] if f["check"] == "policy.error"]
    assert error["message"].startswith("ConfigMap ml/deep: policy hostile.team_label")
    assert "nests 202 levels deep" in error["message"] and "limit of 100" in error["message"]


@pytest.mark.parametrize(("levels", "result"), [(98, "fail"), (99, "error")])
def test_the_depth_limit_counts_the_whole_input_document(
    tmp_path: Path, levels: int, result: str
) -> None:
    # the object is one mapping around `levels`, and the input one more (`input.resource`):
    # 98 makes an input of exactly 100 levels, the limit
    policies = write_policies(tmp_path / "policies", team_label=TEAM_LABEL)
    objects = write_json(tmp_path / "cm.json", config_map("cm", x=nested(levels)))
    code, doc, err = eval_json("--policy", str(policies), str(objects))
    assert code == {"fail": 1, "error": 3}[result], err
    assert results(doc)[("hostile.team_label", "cm")]["result"] == result


def test_a_data_file_nested_too_deeply_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "policies", team_label=TEAM_LABEL)
    data = write_json(tmp_path / "params.json", {"params": nested(150)})
    objects = write_json(tmp_path / "plain.json", config_map("plain"))
    result = run_cli("policy", "eval", "--policy", str(policies), "--data", str(data), str(objects))
    assert result.code == 2, result.err
    assert_no_trace(result.err)
    assert f"{data}:1: nests 151 levels deep" in result.err


def test_an_inventory_file_nested_too_deeply_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    policies = write_policies(tmp_path / "policies", team_label=TEAM_LABEL)
    inventory = write_json(tmp_path / "inventory.json", config_map("deep", x=nested(150)))
    objects = write_json(tmp_path / "plain.json", config_map("plain"))
    result = run_cli(
        "policy", "eval", "--policy", str(policies), "--inventory", str(inventory), str(objects)
    )
    assert result.code == 2, result.err
    assert_no_trace(result.err)
    assert f"{inventory}" in result.err and "nests 151 levels deep" in result.err


# -- runaway policies --------------------------------------------------------------------


def test_a_runaway_policy_is_an_error_evaluation_and_the_other_policies_still_run(
    tmp_path: Path,
) -> None:
    policies = write_policies(tmp_path / "policies", team_label=TEAM_LABEL, runaway=RUNAWAY)
    objects = write_json(
        tmp_path / "objects.json",
        {"apiVersion": "v1", "kind": "List", "items": [config_map("a"), config_map("b", team="x")]},
    )

    code, doc, err = eval_json("--timeout", "1", "--policy", str(policies), str(objects))

    assert code == 3, err
    assert_no_trace(err)
    by = results(doc)
    assert by[("hostile.team_label", "a")]["result"] == "fail"
    assert by[("hostile.team_label", "b")]["result"] == "pass"
    assert by[("hostile.runaway", "a")]["result"] == "error"
    assert by[("hostile.runaway", "b")]["result"] == "error"
    messages = [f["message"] for f in doc["findings"] if f["check"] == "policy.error"]
    assert any("did not finish within 1 s" in m for m in messages), messages


def test_a_policy_that_overran_on_three_objects_is_not_run_on_the_rest(tmp_path: Path) -> None:
    # without this, a runaway policy would cost its whole budget on each of 10,000 objects
    policies = write_policies(tmp_path / "policies", team_label=TEAM_LABEL, runaway=RUNAWAY)
    items = [config_map(f"cm{i}") for i in range(5)]
    objects = write_json(
        tmp_path / "objects.json", {"apiVersion": "v1", "kind": "List", "items": items}
    )

    code, doc, err = eval_json("--timeout", "1", "--policy", str(policies), str(objects))

    assert code == 3, err
    runaway = [e for e in doc["evaluations"] if e["policy"] == "hostile.runaway"]
    assert [e["result"] for e in runaway] == ["error"] * 5
    team = [e for e in doc["evaluations"] if e["policy"] == "hostile.team_label"]
    assert [e["result"] for e in team] == ["fail"] * 5
    errors = {
        f["resource"]["name"]: f["message"] for f in doc["findings"] if f["check"] == "policy.error"
    }
    assert all("did not finish within 1 s" in errors[f"cm{i}"] for i in range(3))
    assert all(
        "not evaluated: it overran its time budget on 3 objects" in errors[f"cm{i}"] for i in (3, 4)
    )


def test_audit_gives_a_runaway_policy_its_configured_budget_and_finishes_incomplete(
    tmp_path: Path, git_repo: GitRepo
) -> None:
    owned = config_map("owned", team="risk", data={"a": "1"})
    path = audit_setup(tmp_path, git_repo, git=[owned], live=[owned], timeout_seconds=1)
    write_policies(tmp_path / "policies", runaway=RUNAWAY)

    _, evaluations, _ = incomplete_audit(tmp_path, path)

    assert evaluations[("hostile.runaway", "owned")][0] == "error"
    assert "did not finish within 1 s" in evaluations[("hostile.runaway", "owned")][1]
    assert evaluations[("hostile.team_label", "owned")] == ("pass", "")


# -- signals and worker processes ----------------------------------------------------------


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process, None when it no longer exists."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1]), int(fields[19])


def _cmdline(pid: int) -> bytes | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _forked_children(pid: int) -> dict[int, int]:
    """The live processes `pid` forked (same command line: not `git` and the like), with
    their start times."""
    out = {}
    command = _cmdline(pid)
    for entry in Path("/proc").iterdir():
        child = int(entry.name) if entry.name.isdigit() else None
        stat = _stat(child) if child is not None else None
        if child and stat and stat[1] == pid and stat[0] != "Z" and _cmdline(child) == command:
            out[child] = stat[2]
    return out


def _gone(pid: int, started: int) -> bool:
    stat = _stat(pid)
    # a zombie has died and waits to be reaped; another start time is another process
    return stat is None or stat[0] == "Z" or stat[2] != started


def _wait_for(condition: Any, what: str, limit: float = 60.0) -> None:
    """Polls `condition` until it holds; the limit only bounds a broken run, it is no
    timing assertion."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


@dataclass
class Busy:
    """A running `auditor` and the worker processes it forked."""

    proc: subprocess.Popen[bytes]
    stderr: Path
    workers: dict[int, int]  # pid -> start time

    def wait_for_workers(self) -> None:
        def started() -> bool:
            self.workers.update(_forked_children(self.proc.pid))
            return bool(self.workers)

        _wait_for(started, "the policy worker to start")


def _ctrl_c_as_at_a_terminal() -> None:
    # A shell starting the suite in the background (`cmd &` without job control) ignores
    # SIGINT for it, and an ignored signal stays ignored across exec: Python then never raises
    # KeyboardInterrupt. auditor at a terminal has SIGINT's default, which is what is tested.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(params=["policy eval", "audit"])
def busy_auditor(
    request: pytest.FixtureRequest, tmp_path: Path, git_repo: GitRepo
) -> Iterator[Busy]:
    """`auditor policy eval` or `auditor audit` busy on a runaway policy, with a budget it
    will not reach. Output goes to files: a worker left behind would hold a pipe open."""
    command = [sys.executable, "-m", "auditor"]
    if request.param == "policy eval":
        policies = write_policies(tmp_path / "policies", runaway=RUNAWAY)
        objects = write_json(tmp_path / "objects.json", config_map("a"))
        command += ["policy", "eval", "--timeout", "3600", "--policy", str(policies)]
        command.append(str(objects))
    else:
        owned = config_map("owned", team="risk")
        path = audit_setup(tmp_path, git_repo, git=[owned], live=[owned], timeout_seconds=3600)
        write_policies(tmp_path / "policies", runaway=RUNAWAY)
        command += ["audit", "--config", str(path)]
    stderr = tmp_path / "stderr.txt"
    with (tmp_path / "stdout.txt").open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=err,
            env={**os.environ, "NO_COLOR": "1"},
            preexec_fn=_ctrl_c_as_at_a_terminal,
        )
    busy = Busy(proc, stderr, {})
    try:
        yield busy
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for pid, started in busy.workers.items():  # what a failing test left behind
            if not _gone(pid, started):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killing_auditor_mid_evaluation_takes_its_policy_workers_down(
    busy_auditor: Busy, sig: signal.Signals
) -> None:
    busy_auditor.wait_for_workers()
    busy_auditor.proc.send_signal(sig)
    busy_auditor.proc.wait(timeout=60)
    assert busy_auditor.proc.returncode != 0
    workers = busy_auditor.workers
    _wait_for(lambda: all(_gone(p, s) for p, s in workers.items()), "the workers to die")


def test_ctrl_c_mid_evaluation_exits_130_and_stops_the_workers(busy_auditor: Busy) -> None:
    busy_auditor.wait_for_workers()
    busy_auditor.proc.send_signal(signal.SIGINT)
    busy_auditor.proc.wait(timeout=60)
    err = busy_auditor.stderr.read_text()
    assert busy_auditor.proc.returncode == 130, err
    assert_no_trace(err)
    # stopped and reaped before auditor exits: no waiting for the kernel here
    assert all(_gone(p, s) for p, s in busy_auditor.workers.items())

"""Parsing manifests on two cores gives what parsing them one by one gives: the same objects in
file order, and the error of the first bad file."""

from __future__ import annotations

import os

import pytest

from auditor.desired import parallel
from auditor.errors import InputError
from auditor.model import DesiredState
from auditor.safeyaml import load_documents
from tests.desired.conftest import GitRepo, deployment


def parse(item: tuple[str, str]) -> list[object]:
    name, text = item
    return [d.data for d in load_documents(text, name)]


FILES = [(f"f{i}.yaml", f"kind: ConfigMap\nmetadata: {{name: c{i}, pid: x}}\n") for i in range(40)]


@pytest.fixture
def forked(monkeypatch: pytest.MonkeyPatch) -> None:
    if not parallel._can_fork():
        pytest.fail("these tests need fork (Linux, macOS)")
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "_cores", lambda: 2)


def test_two_processes_give_the_objects_in_file_order(forked: None) -> None:
    sizes = [len(text) for _, text in FILES]
    assert list(parallel.parse_all(FILES, sizes, parse)) == [parse(f) for f in FILES]


def test_the_later_files_really_are_parsed_in_another_process(forked: None) -> None:
    def where(item: tuple[str, str]) -> int:
        return os.getpid()

    pids = list(parallel.parse_all(FILES, [1] * len(FILES), where))
    assert pids[0] == os.getpid()
    assert pids[-1] != os.getpid()


@pytest.mark.parametrize("bad", [3, 35])  # in this process's share, in the child's
def test_a_bad_file_is_the_error_as_when_parsing_alone(forked: None, bad: int) -> None:
    files = list(FILES)
    files[bad] = (f"f{bad}.yaml", "a: [unclosed\n")
    files[38] = ("f38.yaml", "b: {also: bad\n")
    with pytest.raises(InputError) as raised:
        list(parallel.parse_all(files, [1] * len(files), parse))
    assert raised.value.file == f"f{bad}.yaml"


def test_a_child_that_dies_has_its_share_parsed_here(forked: None) -> None:
    def dies_in_child(item: tuple[str, str], parent: int = os.getpid()) -> list[object]:
        if os.getpid() != parent:
            os._exit(9)
        return parse(item)

    sizes = [1] * len(FILES)
    assert list(parallel.parse_all(FILES, sizes, dies_in_child)) == [parse(f) for f in FILES]


def test_small_inputs_are_parsed_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "_cores", lambda: 2)
    pids = list(parallel.parse_all(FILES, [10] * len(FILES), lambda item: os.getpid()))
    assert set(pids) == {os.getpid()}


def test_manifests_read_in_two_processes_are_what_one_process_reads(
    repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(12):
        repo.write(f"apps/app{i}.yaml", deployment(f"d{i}") + "---\n" + deployment(f"e{i}"))
    repo.commit()
    alone = repo.read()
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "_cores", lambda: 2)
    both = repo.read()

    def seen(state: DesiredState) -> list[tuple[object, ...]]:
        return [(r.ref, dict(r.body), r.origin, r.line) for r in state.resources]

    assert seen(both) == seen(alone)
    assert len(both.resources) == 24 and both.resources[1].line == 8  # after 6 lines and ---

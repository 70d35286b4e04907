"""A YAML file a person wrote is read once, with the line of every key, and every mistake is a
ConfigError naming the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.errors import ConfigError
from auditor.located import Lines, read_yaml_mapping


def read(path: Path | str) -> tuple[dict, Lines]:
    return read_yaml_mapping(path, what="config file", not_mapping="must be a mapping")


def test_keys_and_list_items_have_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("git:\n  repo: x\nclusters:\n  - name: a\n  - name: b\n")
    raw, lines = read(path)
    assert raw["clusters"][1]["name"] == "b"
    assert lines.line(["clusters", 1, "name"]) == 5
    assert lines.line(["git", "repo"], of_key=True) == 2
    assert lines.exact(["clusters", 2]) is None


def test_an_endless_file_is_refused_before_it_is_read_whole() -> None:
    with pytest.raises(ConfigError, match="config file is a character device") as info:
        read("/dev/zero")
    assert info.value.file == "/dev/zero"


def test_two_documents_name_the_second_ones_line(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("a: 1\n---\nb: 2\n")
    with pytest.raises(ConfigError, match="one YAML document") as info:
        read(path)
    assert info.value.line == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "file is empty"), ("- a\n", "must be a mapping"), ("a: [\n", "invalid YAML")],
)
def test_unusable_files_say_why(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as info:
        read(path)
    assert info.value.file == str(path)


def test_a_directory_or_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        read(tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        read(tmp_path / "missing.yaml")

"""Hostile values from Git and the cluster are shown, never interpreted, in every report.

An annotation value, a key, a field manager's name or a policy message built from them is
text someone else controls: in `report.md` it must not break the findings table, inject HTML
or links, or add lines; on the terminal it must not send escape sequences or forge lines.
The Markdown is checked by rendering it with a real CommonMark parser (markdown-it-py, with
GFM tables), as a reader's viewer would.
"""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pytest
import yaml
from markdown_it import MarkdownIt

from auditor.reports.escaping import markdown_text, printable
from tests.conftest import CliResult, GitRepo, run_cli

# Each value tries one way out: HTML, a table cell break, a forged line, code and emphasis,
# a link and an entity, a terminal escape sequence, a bidirectional override.
HOSTILE_GIT = (
    "<img src=x onerror=alert(1)> | `tick` **bold** [click](https://evil.example) &lt;"
    "\nforged: every check passed"
)
HOSTILE_LIVE = "<script>alert(2)</script>|a|b|\x1b[2J\x1b[31mCLEAN\x1b[0m \u202etxt.exe\r\\"
HOSTILE_KEY = "x|<i>y</i>"
HOSTILE_MANAGER = "<b>kubectl</b>|`edit`"
POLICY = """\
package acme.notes

import rego.v1

deny contains msg if {
  note := input.resource.metadata.annotations.note
  msg := sprintf("note says %s", [note])
}
"""


def configmap(note: str, annotations: dict[str, str] | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "scorer-config",
            "namespace": "ml",
            "annotations": {"note": note, **(annotations or {})},
        },
        "data": {"threshold": "0.8"},
    }


@pytest.fixture
def audited(git_repo: GitRepo, tmp_path: Path) -> tuple[CliResult, str]:
    """`auditor audit` with the text report on stdout and report.md written."""
    git_repo.write("ml/config.yaml", yaml.safe_dump(configmap(HOSTILE_GIT, {HOSTILE_KEY: "v"})))
    git_repo.commit()
    live = configmap(HOSTILE_LIVE)
    live["metadata"]["managedFields"] = [
        {
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:annotations": {"f:note": {}}}},
            "manager": HOSTILE_MANAGER,
            "operation": "Update",
            "time": "2026-11-20T02:13:00Z",
        }
    ]
    snapshot = tmp_path / "live.json"
    snapshot.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [live]}))
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "notes.rego").write_text(POLICY)
    config = tmp_path / "auditor.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "git": {"repo": str(git_repo.path)},
                "clusters": [{"name": "prod", "snapshot": [str(snapshot)]}],
                "policy": {"paths": [str(tmp_path / "policies")]},
            }
        )
    )
    report = tmp_path / "report.md"
    result = run_cli(
        "audit", "--config", str(config), "--store", str(tmp_path / "a.db"), "--report", str(report)
    )
    assert result.code == 1, result.err
    return result, report.read_text()


# A first run: every finding is new, in the report's first findings table.
FINDINGS_SECTION = "New since the previous run"
COLUMNS = 11  # severity, check, class, resource, path, message, Git, live, changed by, seen, open


def findings_table(markdown: str) -> list[str]:
    section = markdown.split(f"## {FINDINGS_SECTION}", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("|")]


def rendered_rows(markdown: str) -> list[list[str]]:
    """The findings table as a reader sees it: each row's cells as plain text."""
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    body = html.split(f"<h2>{FINDINGS_SECTION}</h2>", 1)[1].split("<h2>", 1)[0]
    return [
        [unescape(cell) for cell in re.findall(r"<t[hd]>(.*?)</t[hd]>", row, re.DOTALL)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.DOTALL)
    ]


def test_hostile_values_keep_the_findings_table_whole(audited: tuple[CliResult, str]) -> None:
    _, markdown = audited
    rows = findings_table(markdown)
    # header, delimiter, and one line per finding: the two drift paths and the policy's deny
    assert len(rows) == 2 + 3
    assert [len(cells) for cells in rendered_rows(markdown)] == [COLUMNS] * 4  # no cell split


def test_hostile_values_inject_no_html_link_or_formatting(audited: tuple[CliResult, str]) -> None:
    _, markdown = audited
    html = MarkdownIt("commonmark").enable("table").enable("strikethrough").render(markdown)
    body = html.split(f"<h2>{FINDINGS_SECTION}</h2>", 1)[1].split("<h2>", 1)[0]
    for tag in ("<img", "<script", "<i>", "<b>", "<a ", "<strong>", "<em>", "<code>", "<s>"):
        assert tag not in body, tag
    # shown as the text it is
    assert (
        "&lt;img src=x onerror=alert(1)&gt; | `tick` **bold** [click](https://evil.example)" in body
    )
    assert "&amp;lt;" in body  # the entity is shown, not decoded
    assert "&lt;b&gt;kubectl&lt;/b&gt;|`edit`" in body  # the field manager
    assert "x|&lt;i&gt;y&lt;~1i&gt;" in body  # the key, in the path (`/` is `~1` there)


def test_invisible_characters_are_shown_as_escapes_in_the_markdown(
    audited: tuple[CliResult, str],
) -> None:
    _, markdown = audited
    assert "\x1b" not in markdown and "\u202e" not in markdown and "\r" not in markdown
    assert "forged: every check passed" not in markdown.splitlines()[-1]
    assert not any(line.startswith("forged") for line in markdown.splitlines())
    assert "\\\\x1b\\[2J" in markdown  # `\x1b[2J`, escaped for Markdown
    assert "\\\\u202etxt.exe" in markdown


def test_the_terminal_report_gets_no_escape_sequence_or_forged_line(
    audited: tuple[CliResult, str],
) -> None:
    result, _ = audited
    for char in ("\x1b", "\u202e", "\r"):
        assert char not in result.out
    assert not any(line.startswith("forged") for line in result.out.splitlines())
    # the policy judged the live object: its message carries the live value, markup as text
    assert "note says <script>alert(2)</script>|a|b|\\x1b[2J" in result.out


def test_each_finding_s_message_is_in_the_markdown_report(audited: tuple[CliResult, str]) -> None:
    _, markdown = audited
    header, *rows = rendered_rows(markdown)
    column = header.index("message")
    messages = {row[1]: row[column] for row in rows if row[1] != "drift.changed"}
    # the policy judged the live object: its message carries the live value, shown as it is
    assert messages == {
        "acme.notes": f"ConfigMap ml/scorer-config: note says {printable(HOSTILE_LIVE)}"
    }


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain gs://acme-models/fraud/v3", "plain gs://acme-models/fraud/v3"),
        ("a\nb\tc\rd", "a\\nb\\tc\\rd"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("\u202eevil\u200b", "\\u202eevil\\u200b"),
        ("naïve 模型", "naïve 模型"),  # letters of any script are not escapes
    ],
)
def test_printable_makes_control_and_format_characters_visible(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_markdown_text_round_trips_through_a_real_parser() -> None:
    nasty = "a\\|b <x> `c` *d* _e_ [f](g) &amp; ~~h~~ \\"
    md = MarkdownIt("commonmark").enable("table").enable("strikethrough")
    html = md.render(f"| v |\n| --- |\n| {markdown_text(nasty)} |\n")
    assert "<td>a\\|b &lt;x&gt; `c` *d* _e_ [f](g) &amp;amp; ~~h~~ \\</td>" in html


def test_markdown_text_cuts_before_escaping() -> None:
    # a cut inside `\|` would leave a lone backslash that escapes the cell's closing pipe
    cut = markdown_text("x" * 9 + "|tail", limit=10)
    assert cut == "x" * 9 + "…"

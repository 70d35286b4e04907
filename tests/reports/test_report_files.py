"""Writing a report file: the old file or the whole new one, never half of one, and a disk with
no room named by the report's path (the command says `PATH: File too large`, exit 2)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from auditor.reports.files import write_atomically


def test_a_report_replaces_the_old_one_whole(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "report.json"
    write_atomically(str(target), b"old")
    write_atomically(str(target), b"new, longer")
    assert target.read_bytes() == b"new, longer"
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_no_room_for_a_report_keeps_the_old_one_and_names_the_report(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_bytes(b"the last good report")
    # every file of the child may grow to 1,000 bytes: its write of 5,000 fails with EFBIG
    script = textwrap.dedent(f"""
        import errno, resource, signal
        from auditor.reports.files import write_atomically
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
        try:
            write_atomically({str(target)!r}, b"x" * 5000)
        except OSError as exc:
            print(errno.errorcode[exc.errno], exc.filename)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["EFBIG", str(target)]
    assert target.read_bytes() == b"the last good report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left

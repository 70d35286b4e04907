"""Run a script or module with the `auditor` package of another checkout (an older commit's
worktree), to compare two versions in the same minutes on a shared machine:

    python bench/store/with_code.py /work/old-worktree bench/store/run.py --skip-growth
    python bench/store/with_code.py /work/old-worktree -m auditor findings --store s.db

`PYTHONPATH` is not enough: an editable install (`pip install -e .`) puts its own finder on
`sys.meta_path`, ahead of every `sys.path` entry, so `auditor` would still come from it.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def main() -> None:
    root, *rest = sys.argv[1:]
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
    sys.path.insert(0, str(Path(root).resolve()))
    for name in [m for m in sys.modules if m == "auditor" or m.startswith("auditor.")]:
        del sys.modules[name]
    if rest[:1] == ["-m"]:
        sys.argv = rest[1:]
        runpy.run_module(rest[1], run_name="__main__", alter_sys=True)
        return
    sys.argv = rest
    sys.path.insert(0, str(Path(rest[0]).resolve().parent))
    runpy.run_path(rest[0], run_name="__main__")


if __name__ == "__main__":
    main()

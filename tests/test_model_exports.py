"""`auditor.model` is the one place values are imported from, also those defined in its `_`
modules and loaded on first use (auditor/model/__init__.py says why)."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import auditor.model
from auditor.model import _LAZY

PARTS = sorted(p for p in Path(auditor.model.__file__).parent.glob("_*.py") if p.stem != "__init__")


def _classes(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, ast.ClassDef) and not n.name.startswith("_")}


def test_every_value_defined_beside_the_model_is_exported_by_it() -> None:
    assert PARTS  # guards the test: a rule over no modules would always pass
    defined = {name: f"auditor.model.{path.stem}" for path in PARTS for name in _classes(path)}
    assert defined == _LAZY


@pytest.mark.parametrize("name", sorted(_LAZY))
def test_a_lazy_value_is_the_class_its_module_defines(name: str) -> None:
    value = getattr(auditor.model, name)
    assert value is getattr(importlib.import_module(_LAZY[name]), name)
    assert dataclasses.is_dataclass(value)
    assert name in dir(auditor.model)


def test_an_unknown_name_is_an_import_error_naming_it() -> None:
    with pytest.raises(ImportError, match="NoSuchValue"):
        from auditor.model import NoSuchValue  # type: ignore[attr-defined]  # noqa: F401


def test_importing_the_model_loads_none_of_its_parts_until_asked() -> None:
    script = (
        "import sys\n"
        "import auditor.model\n"
        "before = sorted(m for m in sys.modules if m.startswith('auditor.model._'))\n"
        "from auditor.model import Evaluation\n"
        "after = sorted(m for m in sys.modules if m.startswith('auditor.model._'))\n"
        "print(before, after)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[] ['auditor.model._policy']"

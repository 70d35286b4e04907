"""YAML read once, with line numbers: config files and trust policies.

Every mistake in a file a person wrote is a ConfigError naming the file, the key (in the
dotted form `clusters[0].name`) and its line. The file is parsed once: the same parse gives
the data and the node tree the line numbers come from.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from auditor.bounded import read_bounded
from auditor.errors import ConfigError, InputError
from auditor.safeyaml import load_located

if TYPE_CHECKING:  # jsonschema (60 ms to import) loads only when a file is validated
    import jsonschema

MAX_CONFIG_BYTES = 1024 * 1024

Path_ = Sequence[str | int]


def key_text(path: Path_) -> str:
    """`clusters[0].name`: the dotted form every ConfigError names a key by."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class Lines:
    """JSON path -> line number, from the composed YAML node tree."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    def node(self, path: Path_) -> tuple[yaml.Node | None, yaml.Node | None]:
        """(value node, key node) of the deepest existing node along `path`."""
        node, key_node = self.root, None
        for part in path:
            if isinstance(node, yaml.MappingNode):
                found = next(((k, v) for k, v in node.value if k.value == str(part)), None)
                if found is None:
                    break
                key_node, node = found
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    break
                node, key_node = node.value[part], None
            else:
                break
        return node, key_node

    def exact(self, path: Path_) -> yaml.Node | None:
        """The value node at exactly `path`; None when the path does not exist."""
        node = self.root
        for part in path:
            if isinstance(node, yaml.MappingNode):
                node = next((v for k, v in node.value if k.value == str(part)), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                node = node.value[part] if part < len(node.value) else None
            else:
                return None
            if node is None:
                return None
        return node

    def line(self, path: Path_, *, of_key: bool = False) -> int | None:
        node, key_node = self.node(path)
        target = key_node if of_key and key_node is not None else node
        return target.start_mark.line + 1 if target is not None else None


NO_LINES = Lines(None)


def located_error(
    message: str, source: str, lines: Lines, path: Path_, *, of_key: bool = False, **kw: Any
) -> ConfigError:
    """A ConfigError at `path` of `source`: the file, the key and its line."""
    return ConfigError(
        message,
        file=source,
        line=lines.line(path, of_key=of_key),
        key=key_text(path) or None,
        **kw,
    )


def schema_error(error: jsonschema.ValidationError, source: str, lines: Lines) -> ConfigError:
    """A JSON Schema error as a ConfigError naming the file, the key and its line."""
    path: list[str | int] = list(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(schema.get("properties", {}))
        unknown = sorted(k for k in error.instance if k not in allowed)
        if unknown:
            known = ", ".join(sorted(allowed))
            return located_error(
                f"unknown key {unknown[0]!r}",
                source,
                lines,
                [*path, unknown[0]],
                of_key=True,
                hint=f"allowed here: {known}",
            )
    if error.validator == "required":
        message = error.message.replace("is a required property", "is required")
    elif error.validator == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)  # type: ignore[union-attr]
        message = f"{error.instance!r} is not one of: {choices}"
    elif error.validator == "oneOf":
        message = f"{error.instance!r} must be a string or a list of strings"
    elif error.validator == "pattern" and path and path[-2:-1] == ["pointers"]:
        message = f"{error.instance!r} is not a JSON pointer (it must start with '/')"
    else:
        message = error.message
    return located_error(message, source, lines, path)


@functools.cache
def _validator(schema_file: Path) -> jsonschema.protocols.Validator:
    import jsonschema

    schema = json.loads(schema_file.read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)  # type: ignore[no-any-return]


def validate(instance: Any, schema_file: Path, source: str, lines: Lines) -> None:
    """Raises the ConfigError of the most specific schema violation, if any."""
    # sorted by path, so that among equally relevant errors the same one is named every time
    errors = sorted(
        _validator(schema_file).iter_errors(instance),
        key=lambda e: list(map(str, e.absolute_path)),
    )
    if errors:
        import jsonschema

        raise schema_error(jsonschema.exceptions.best_match(errors), source, lines)


# The `trust:` section has one schema wherever it is checked: the trust policy holds it to it
# before reading any material, config on its own where the material is not read (drift).
TRUST_SCHEMA_FILE = Path(__file__).parent / "schemas" / "trust.schema.json"


def validate_trust(raw: Any, source: str, lines: Lines) -> None:
    """Raises the ConfigError of the value of a `trust:` key that breaks its schema (keys named
    from the top: `trust.authorities[0].key`)."""
    validate({"trust": raw}, TRUST_SCHEMA_FILE, source, lines)


def read_yaml_mapping(
    path: str | Path, *, what: str, not_mapping: str, max_bytes: int = MAX_CONFIG_BYTES
) -> tuple[dict[str, Any], Lines]:
    """A YAML file that must hold one mapping, with its line index for located errors.

    Every problem (missing, unreadable, too large, malformed, not a mapping) is a ConfigError
    naming the file and, where known, the line. The file is read with `read_bounded`:
    `/dev/zero`, a named pipe or a huge file is refused, not loaded.
    """
    source = str(path)
    content = read_bounded(path, max_bytes=max_bytes, what=what, error=ConfigError)
    try:
        raw, root = load_located(content, source, max_bytes=max_bytes)
    except InputError as exc:
        raise ConfigError(exc.message, file=source, line=exc.line) from None
    if raw is None:
        raise ConfigError("file is empty", file=source)
    if not isinstance(raw, dict):
        raise ConfigError(not_mapping, file=source, line=1)
    return raw, Lines(root)


def resolve_path(base: Path, value: str) -> Path:
    """`value` (`~` expanded) as an absolute path, relative ones against `base`."""
    expanded = Path(os.path.expanduser(value))
    return expanded if expanded.is_absolute() else (base / expanded).resolve()


__all__ = [
    "MAX_CONFIG_BYTES",
    "NO_LINES",
    "Lines",
    "key_text",
    "located_error",
    "read_yaml_mapping",
    "resolve_path",
    "schema_error",
    "validate",
]

"""What the store writes as JSON is exactly what `json.dumps` writes, however it is built;
what is not JSON is refused naming the value."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from auditor.store.keys import digest, to_json_text

VALUES: list[Any] = [
    None,
    True,
    0,
    -17,
    2**70,
    1.5,
    1e-300,
    "",
    'ünïcödé 日本語 🧪 \x00\n\t"\\',
    [],
    {},
    ["a", 1, None, [2.25, {"k": "v"}]],
    {"b": 1, "a": [True, False], "nested": {"z": {"y": ["x"]}}},
    ("tuple", "as", "list"),
    {"1": "one", "ü": "two"},
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_json_text_is_json_dumps_text(value: Any) -> None:
    assert to_json_text(value, what="v") == json.dumps(value, ensure_ascii=False, allow_nan=False)


@pytest.mark.parametrize(
    ("value", "problem"),
    [(math.nan, "Out of range"), ({"k": object()}, "not JSON serializable"), ({1j}, "set")],
    ids=["nan", "object", "set"],
)
def test_a_value_that_is_not_json_is_refused_naming_it(value: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=rf"finding x: details is not JSON: .*{problem}"):
        to_json_text(value, what="finding x: details")


def test_a_circular_value_is_refused_not_a_crash() -> None:
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(ValueError, match="finding x: details is not JSON"):
        to_json_text(looped, what="finding x: details")


def test_a_content_digest_is_the_digest_of_its_compact_json_list() -> None:
    import hashlib

    parts = ("fingerprint", 12, None, 'quote " ü')
    text = json.dumps(list(parts), ensure_ascii=False, separators=(",", ":"))
    assert digest(*parts) == hashlib.sha256(text.encode()).digest()[:16]
    assert digest("a,b") != digest("a", "b")


@pytest.mark.parametrize(
    "options",
    [
        {"ensure_ascii": False, "allow_nan": False},  # values (to_json_text)
        {"ensure_ascii": False, "separators": (",", ":")},  # a content's digest
        # canonical messages (store/compact.py), lists of content keys (store/writer.py)
        {"ensure_ascii": False, "allow_nan": False, "sort_keys": True, "separators": (",", ":")},
        {"separators": (",", ":")},
    ],
    ids=["values", "digest", "canonical", "ids"],
)
def test_every_way_the_store_writes_json_is_the_json_modules(options: dict[str, Any]) -> None:
    from auditor.store.jsonencode import encoder

    encode = encoder(**options)
    for value in VALUES:
        assert encode(value) == json.JSONEncoder(**options).encode(value)
    assert encode({"b": {"d": 1, "c": 2}, "a": 3}) == json.JSONEncoder(**options).encode(
        {"b": {"d": 1, "c": 2}, "a": 3}
    )

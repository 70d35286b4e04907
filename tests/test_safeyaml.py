"""Untrusted YAML is read as Kubernetes reads it, within limits."""

from __future__ import annotations

import pytest

from auditor.errors import InputError
from auditor.safeyaml import load_documents, load_one


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("a: 2024-01-01", "2024-01-01"),  # kubectl has no timestamp type: a string
        ("a: 2001-12-14t21:59:43.10-05:00", "2001-12-14t21:59:43.10-05:00"),
        ("a: 1", 1),
        ("a: 1.5", 1.5),
        ("a: yes", True),  # YAML 1.1 booleans, as sigs.k8s.io/yaml reads them
        ("a: ~", None),
        ('a: "8080"', "8080"),
    ],
)
def test_scalars_resolve_as_kubernetes_yaml_does(text: str, value: object) -> None:
    assert load_one(text, "x.yaml") == {"a": value}


def test_documents_report_their_start_line() -> None:
    docs = load_documents("a: 1\n---\n# c\nb: 2\n", "x.yaml")
    assert [(d.data, d.line) for d in docs] == [({"a": 1}, 1), ({"b": 2}, 4)]


def test_alias_bomb_is_rejected_quickly() -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    # 10**12 nodes if expanded: finishing at all shows it was counted, not expanded
    with pytest.raises(InputError, match="alias"):
        load_documents("\n".join(lines), "bomb.yaml")


def test_a_few_aliases_are_fine() -> None:
    doc = load_one("base: &b {cpu: 1}\nx: *b\ny: *b\n", "x.yaml")
    assert doc["x"] == doc["y"] == {"cpu": 1}


def test_size_limit_is_checked_before_parsing() -> None:
    with pytest.raises(InputError, match="limit") as caught:
        load_documents(b"a: " + b"x" * 2048, "big.yaml", max_bytes=1024)
    assert caught.value.file == "big.yaml"


def test_invalid_yaml_names_file_and_line() -> None:
    with pytest.raises(InputError) as caught:
        load_documents("a: 1\nb: [\n", "bad.yaml")
    assert caught.value.file == "bad.yaml" and caught.value.line == 3


def test_invalid_json_names_file_and_line() -> None:
    with pytest.raises(InputError) as caught:
        load_documents('{\n"a": 1,\n}', "bad.json")
    assert caught.value.line == 3


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("metadata:\n  name: a\n  labels: {}\n  name: b\n", 4, "'name' (first at line 2)"),
        ("x: {a: 1, b: 2, a: 3}\n", 1, "'a' (first at line 1)"),
        # beside a merge key: the node's own keys still may not repeat
        ("base: &b {mem: 2}\nx:\n  <<: *b\n  cpu: 1\n  cpu: 3\n", 5, "'cpu' (first at line 4)"),
    ],
)
def test_a_key_given_twice_is_refused_with_both_lines(text: str, line: int, message: str) -> None:
    with pytest.raises(InputError) as caught:
        load_documents(text, "dup.yaml")
    assert caught.value.line == line
    assert caught.value.message == f"invalid YAML: duplicate key {message}"


def test_overriding_a_merged_key_is_not_a_duplicate() -> None:
    doc = load_one("base: &b {cpu: 1, mem: 2}\nx:\n  <<: *b\n  cpu: 3\n", "merge.yaml")
    assert doc["x"] == {"cpu": 3, "mem": 2}


def test_two_merged_maps_may_share_keys() -> None:
    text = "a: &a {k: 1}\nb: &b {k: 2}\nx:\n  <<: [*a, *b]\n"
    assert load_one(text, "merge.yaml")["x"] == {"k": 1}


def test_a_json_key_given_twice_is_refused_with_its_line() -> None:
    with pytest.raises(InputError) as caught:
        load_documents('{"kind": "List",\n "items": [],\n "kind": "Pod"}', "dup.json")
    assert caught.value.line == 3
    assert caught.value.message == "invalid JSON: duplicate key 'kind' (first at line 1)"


def _with_pyyaml_constructors(text: str) -> list[object]:
    """What PyYAML's own constructors build from each document (the tree builder's reference)."""

    from auditor.safeyaml import _Loader

    loader = _Loader(text)
    documents = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                documents.append(loader.construct_document(node))
    finally:
        loader.dispose()
    return documents


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: 1.5\nc: yes\nd: off\ne: ~\nf: 0x1F\ng: 0o17\nh: 1_000\ni: 1:30\nj: .inf\n"
        "k: -.Inf\nl: 2024-01-01\nm: '2024-01-01'\nn: !!str 12\no: !!int '42'\nq: ''\nr:\n",
        "1: one\n2.5: two\nfalse: three\n~: four\n=: five\n",  # keys of every scalar type
        "v: [1, two, 3.0, true, ~]\nw: {x: 1, y: [a, {z: b}]}\nempty: {}\nnone: []\n",
        "a: &anchor {b: 1}\nc: d\n",  # an anchor no alias uses: still a tree
        "---\na: 1\n---\n---\nb: [2]\n...\n",
        "!!map {a: 1}",
        "- !!float 1\n- !!null ''\n- !!bool 'yes'\n",
        "t: !!timestamp 2024-01-01\n",  # explicit tags go to PyYAML's constructors
        "b: !!binary aGVsbG8=\n",
        "s: !!set {a, b}\n",
        # deeper than Python's recursion limit allows the builder (libyaml stops at 1,000)
        "a:\n" + "".join("  " * i + "k:\n" for i in range(1, 990)) + "  " * 990 + "v: 1\n",
    ],
)
def test_the_tree_builder_builds_what_pyyaml_builds(text: str) -> None:
    assert _identical(
        [d.data for d in load_documents(text, "x.yaml")], _with_pyyaml_constructors(text)
    )


def _identical(a: object, b: object) -> bool:
    """Equal with the same types (1, 1.0 and True apart) and keys in the same order; walked
    without recursion, as some documents nest deeper than Python's recursion limit."""
    pending = [(a, b)]
    while pending:
        x, y = pending.pop()
        if type(x) is not type(y):
            return False
        if isinstance(x, dict) and isinstance(y, dict):
            if list(x) != list(y):
                return False
            pending += [(x[k], y[k]) for k in x]
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                return False
            pending += zip(x, y, strict=True)
        elif x != y:
            return False
    return True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("=: 1\n=: 2\n", "duplicate key '='"),  # `=` keys are strings, also when repeated
        ("a: =\n", "could not determine a constructor"),  # ... and only keys
        ("1: a\ntrue: b\n", "duplicate key True"),  # True == 1, as in Python
        ("? [a, b]\n: 1\n", "unhashable key"),
        ("x: !custom foo\n", "could not determine a constructor"),
        ("x: !!str\n  a: 1\n", "expected a scalar node"),
    ],
)
def test_what_the_tree_builder_cannot_build_fails_as_pyyaml_says(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_documents(text, "x.yaml")


@pytest.mark.parametrize(
    "value",
    [
        "1",
        "1.5",
        "yes",
        "No",
        "on",
        "~",
        "null",
        "",
        "0x1F",
        "1:30",
        ".inf",
        "=",
        "<<",
        "abc",
        "2024-01-01",
        "1e3",
        "-.5",
        "y",
    ],
)
def test_a_remembered_plain_scalar_resolves_as_pyyaml_resolves_it(value: str) -> None:
    import yaml

    from auditor.safeyaml import _Loader

    expected = yaml.SafeLoader("").resolve(yaml.ScalarNode, value, (True, False))
    if expected == "tag:yaml.org,2002:timestamp":
        expected = "tag:yaml.org,2002:str"  # kubectl has no timestamp type
    loader = _Loader("")
    first = loader.resolve(yaml.ScalarNode, value, (True, False))
    assert (first, loader.resolve(yaml.ScalarNode, value, (True, False))) == (expected, expected)
    # quoted, the same text is a string whatever it looks like
    assert loader.resolve(yaml.ScalarNode, value, (False, True)) == "tag:yaml.org,2002:str"

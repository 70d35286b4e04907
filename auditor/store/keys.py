"""Integer keys for what runs repeat: objects, policies, finding contents, message lists.

A nightly audit of one cluster sees the same 10,000 objects, the same policies and mostly
the same findings every night. Each is stored once and named by an integer key from then
on; a run's own rows are integers pointing at them (DESIGN "Store": a store that lasts).

Policies and message lists are found again by a 128-bit digest of their canonical JSON: two
different contents never share a key (a collision is as likely as a SHA-256 one cut to 128
bits). Finding contents are found again by their values among their own finding's few.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from auditor.model import Finding, PolicyInfo, ResourceRef, fingerprint_digest
from auditor.store import compact
from auditor.store.inserts import append_rows
from auditor.store.jsonencode import encoder

ObjectKey = tuple[str, str, str, str, str]  # cluster, apiVersion, kind, namespace, name
_OBJECT_COLUMNS = ("cluster", "api_version", "kind", "namespace", "name")

# SQLite's default limit on bound parameters is 32766 since 3.32; stay well under it.
_CHUNK = 5000


_ENCODE = encoder(ensure_ascii=False, allow_nan=False)


def to_json_text(value: Any, *, what: str) -> str:
    """`value` as plain JSON text; ValueError naming `what` when it is not JSON.

    Strict on purpose (no NaN, no str() fallback): the stored value must read back equal,
    and every consumer of the store must be able to parse it.
    """
    if value is None:
        return "null"
    try:
        return _ENCODE(value)
    except (TypeError, ValueError, RecursionError) as error:
        raise ValueError(f"{what} is not JSON: {error}") from error


# Compact: the digest of a row is the encoding of its values as one JSON list.
_ENCODE_ROW = encoder(ensure_ascii=False, separators=(",", ":"))


def digest(*parts: str | int | None) -> bytes:
    """The content key of a row's values: SHA-256, cut to 16 bytes, of their JSON list
    (unambiguous whatever the values hold)."""
    return hashlib.sha256(_ENCODE_ROW(parts).encode("utf-8", "surrogatepass")).digest()[:16]


def object_key(ref: ResourceRef) -> ObjectKey:
    return (ref.cluster, ref.api_version, ref.kind, ref.namespace, ref.name)


def chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def next_id(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").fetchone()[0])


def append_keyed(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> int:
    """Appends `rows` (values of `columns`) to `table`, each taking the table's next key, and
    returns the first row's key: row n's is that + n."""
    first = next_id(conn, table)
    marks = ", ".join("?" * len(columns))
    append_rows(conn, f"INSERT INTO {table} ({', '.join(columns)})", f"({marks})", rows, first)
    return first


class ObjectKeys:
    """The integer key of each object, adding the ones the store has not seen yet; one per
    transaction (keys of an aborted transaction must not be remembered). `none_stored`: the
    table was empty when the transaction began, so every object it holds is in `known`."""

    def __init__(self, conn: sqlite3.Connection, *, none_stored: bool = False) -> None:
        self.conn = conn
        self.known: dict[ObjectKey, int] = {}
        self._scanned: set[str] = set()
        self._none_stored = none_stored

    def _scan(self, cluster: str) -> None:
        # One scan per cluster beats one lookup per object for a run that sees most of them.
        # The cluster is not read back: each text value read costs as much as a row's step.
        self._scanned.add(cluster)
        known = self.known
        for key, api_version, kind, namespace, name in self.conn.execute(
            "SELECT id, api_version, kind, namespace, name FROM objects WHERE cluster = ?",
            (cluster,),
        ):
            known[(cluster, api_version, kind, namespace, name)] = key

    def many(self, wanted: Sequence[ObjectKey]) -> list[int]:
        """The keys of `wanted`, in order; new objects are added in one statement."""
        if not self._none_stored:
            for cluster in {key[0] for key in wanted} - self._scanned:
                self._scan(cluster)
        missing = [key for key in dict.fromkeys(wanted) if key not in self.known]
        if missing:
            first = append_keyed(self.conn, "objects", _OBJECT_COLUMNS, missing)
            self.known.update((key, first + n) for n, key in enumerate(missing))
        return [self.known[key] for key in wanted]

    def __call__(self, key: ObjectKey) -> int:
        return self.many([key])[0]


def content_ids(
    conn: sqlite3.Connection, table: str, rows: dict[bytes, tuple[Any, ...]], columns: Sequence[str]
) -> dict[bytes, int]:
    """The key of every content (by digest) in `table`, inserting those not stored yet.

    `rows` maps a digest to the values of `columns` (without `digest`).
    """
    digests = list(rows)
    found: dict[bytes, int] = {}
    for chunk in chunks(digests):
        marks = ",".join("?" * len(chunk))
        found.update(
            (bytes(row[1]), row[0])
            for row in conn.execute(
                f"SELECT id, digest FROM {table} WHERE digest IN ({marks})", chunk
            )
        )
    missing = [key for key in digests if key not in found]
    if missing:
        first = append_keyed(conn, table, ("digest", *columns), [(k, *rows[k]) for k in missing])
        found.update((key, first + n) for n, key in enumerate(missing))
    return found


CONTENT_COLUMNS = (
    "object",
    "policy",
    "category",
    "check_id",
    "severity",
    "class",
    "path",
    "message_form",
    "message",
    "expected",
    "actual",
    "changed_by_manager",
    "changed_by_operation",
    "changed_by_time",
    "details",
    "controls",
)
_CONTENT_NAMES = ", ".join(CONTENT_COLUMNS)


def _json_columns(
    finding: Finding, details: Any, controls: bool
) -> tuple[str, str, str, str | None]:
    """expected, actual, details and (when `controls`, else None) controls as JSON text."""
    try:
        return (
            _ENCODE(finding.expected),
            _ENCODE(finding.actual),
            _ENCODE(dict(details)) if details else "{}",
            (_ENCODE(list(finding.controls)) if finding.controls else "[]") if controls else None,
        )
    except (TypeError, ValueError, RecursionError):
        pass
    # Named only on failure: building the names costs more than the encoding.
    what = f"finding {finding.check} on {finding.ref.display()} at {finding.path!r}"
    return (
        to_json_text(finding.expected, what=f"{what}: expected"),
        to_json_text(finding.actual, what=f"{what}: actual"),
        to_json_text(dict(details), what=f"{what}: details"),
        to_json_text(list(finding.controls), what=f"{what}: controls") if controls else None,
    )


def content_values(
    finding: Finding,
    object_id: int,
    object_key: ObjectKey,
    policy: compact.PolicyText | None,
) -> tuple[Any, ...]:
    """A finding as the values of CONTENT_COLUMNS (JSON columns as JSON text), in the compact
    forms wherever they give back exactly this finding (`auditor.store.compact`)."""
    details: Any = finding.details
    policy_key = None
    own_controls = True
    if policy is not None and (compacted := compact.policy_details(finding, policy)) is not None:
        details, policy_key = compacted, policy.key
        own_controls = tuple(finding.controls) != policy.controls
    form = compact.message_form(finding, object_key) if details else None
    expected, actual, details_text, controls = _json_columns(finding, details, own_controls)
    changed_by = finding.changed_by
    by_policy = policy_key is not None
    return (
        object_id,
        policy_key,
        None if by_policy else finding.category,
        None if by_policy else finding.check,
        finding.severity,
        finding.drift_class,
        None if by_policy and compact.path_in_details(finding) else finding.path,
        form,
        None if form else finding.message,
        expected,
        actual,
        changed_by.manager if changed_by else None,
        changed_by.operation if changed_by else None,
        changed_by.time if changed_by else None,
        details_text,
        controls,
    )


def stored_fingerprint(fingerprint: str) -> str | bytes:
    """A fingerprint as `fingerprints` holds it: the 16 bytes of the 32 lowercase hex digits
    auditor makes, the text of any other (the views show the hex again)."""
    if len(fingerprint) == 32:
        try:
            raw = bytes.fromhex(fingerprint)
        except ValueError:
            return fingerprint
        # fromhex also takes capitals and spaces: only 32 lowercase hex digits come back as
        # themselves (twice the speed of a regular expression, run for every finding)
        if raw.hex() == fingerprint:
            return raw
    return fingerprint


def stored_fingerprint_of(finding: Finding) -> str | bytes:
    """`stored_fingerprint(finding.fingerprint)`, without the hex made and read back."""
    if finding.recorded_fingerprint:
        return stored_fingerprint(finding.recorded_fingerprint)
    return fingerprint_digest(
        finding.category, finding.check, finding.ref, finding.path, finding.discriminator
    )


def _content_rows(
    conn: sqlite3.Connection, column: str, wanted: Sequence[int]
) -> Iterator[tuple[Any, ...]]:
    """The stored contents (id, finding, *values) whose `column` (id or finding) is in
    `wanted`."""
    for chunk in chunks(wanted):
        marks = ",".join("?" * len(chunk))
        yield from conn.execute(
            f"SELECT id, finding, {_CONTENT_NAMES} FROM finding_contents WHERE {column} IN ({marks})",
            chunk,
        )


def finding_content_ids(
    conn: sqlite3.Connection,
    findings: Sequence[int],
    values: Sequence[tuple[Any, ...]],
    added: set[int],
    latest: Mapping[int, int] | None = None,
) -> list[int]:
    """The content key of each (finding, values), inserting the contents not stored yet.

    A content is looked for among its own finding's contents only, and recognised by its
    values: the values of CONTENT_COLUMNS read back exactly as they were written (integers,
    text, NULL). `latest` (finding -> the content it was last seen with) is tried first, by
    key: a finding seen again is mostly seen as it was, and its values are compared with that
    one content's as they are (hashing tuples of 17 values to find them costs more than the
    query). The others' contents are found by the index on `finding`, a handful of rows each.
    Findings in `added` are new in this transaction and have no contents to look for.
    """
    ids: list[int | None] = [None] * len(findings)
    if latest:
        wanted_last = [latest[f] for f in dict.fromkeys(findings) if f in latest]
        last = {row[0]: row for row in _content_rows(conn, "id", wanted_last)}
        for n, (finding, row) in enumerate(zip(findings, values, strict=True)):
            content = latest.get(finding)
            if content is not None and last[content] == (content, finding, *row):
                ids[n] = content
    # (finding, *values): the tuple stored contents are read back as, built once a finding
    rest = [n for n, content in enumerate(ids) if content is None]
    wanted = {n: (findings[n], *values[n]) for n in rest}
    found: dict[tuple[Any, ...], int] = {}
    old = [f for f in dict.fromkeys(findings[n] for n in rest) if f not in added]
    # the stored contents of the other findings, by that tuple
    found.update((row[1:], row[0]) for row in _content_rows(conn, "finding", old))
    new: list[tuple[Any, ...]] = []
    first = next_id(conn, "finding_contents") if rest else 0
    for n, key in wanted.items():
        content = found.get(key)
        if content is None:
            content = found[key] = first + len(new)
            new.append(key)
        ids[n] = content
    marks = ", ".join("?" * (len(CONTENT_COLUMNS) + 1))
    append_rows(
        conn, f"INSERT INTO finding_contents (finding, {_CONTENT_NAMES})", f"({marks})", new, first
    )
    return ids  # type: ignore[return-value]  # every one set above


def interned(conn: sqlite3.Connection, table: str, texts: Iterable[str]) -> dict[str, int]:
    """The key of each text in `table` (id, text UNIQUE), adding the ones not there yet."""
    wanted = list(dict.fromkeys(texts))
    found: dict[str, int] = {}
    for chunk in chunks(wanted):
        marks = ",".join("?" * len(chunk))
        found.update(conn.execute(f"SELECT text, id FROM {table} WHERE text IN ({marks})", chunk))
    missing = [t for t in wanted if t not in found]
    if missing:
        first = append_keyed(conn, table, ("text",), [(t,) for t in missing])
        found.update((t, first + n) for n, t in enumerate(missing))
    return found


def codes(
    conn: sqlite3.Connection, table: str, column: str, names: Iterable[str]
) -> dict[str, int]:
    """The integer code of each name in a code table, adding names it does not have yet."""
    known = dict(conn.execute(f"SELECT {column}, code FROM {table}"))
    for name in dict.fromkeys(names):
        if name not in known:
            known[name] = conn.execute(
                f"INSERT INTO {table} (code, {column}) SELECT COALESCE(MAX(code), -1) + 1, ?"
                f" FROM {table} RETURNING code",
                (name,),
            ).fetchone()[0]
    return known


POLICY_COLUMNS = (
    "policy",
    "title",
    "description",
    "severity",
    "warn_severity",
    "controls",
    "source",
    "kind",
    "source_digest",
)


def policy_values(policy: PolicyInfo) -> tuple[Any, ...]:
    return (
        policy.id,
        policy.title,
        policy.description,
        policy.severity,
        policy.warn_severity,
        to_json_text(list(policy.controls), what=f"policy {policy.id} controls"),
        policy.source,
        policy.kind,
        policy.digest,
    )


def policy_ids(conn: sqlite3.Connection, policies: Iterable[PolicyInfo]) -> dict[str, int]:
    """Policy id -> the key of this run's version of it (METADATA as the run loaded it)."""
    rows = {digest(*values): values for values in map(policy_values, policies)}
    keys = content_ids(conn, "policies", rows, POLICY_COLUMNS)
    return {values[0]: keys[key] for key, values in rows.items()}

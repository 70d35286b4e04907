"""Inserting many rows at once: a couple of hundred rows to a statement.

Python's `executemany` pays for every row it is given: a reset, a bind of each value, a step
with the interpreter lock let go and taken back. One row to a statement, that is about half of
the time of inserting short rows (100,000 rows of five integers: 0.19 s, against 0.09 s two
hundred rows to a statement). A run of 100,000 findings inserts four rows a finding.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import chain, count
from operator import itemgetter
from typing import Any

# Past a couple of hundred rows a statement the gain is gone, and the statement's text and
# compiled program only grow.
ROWS_PER_STATEMENT = 200


@lru_cache(maxsize=256)
def _statement(head: str, row: str, rows: int) -> str:
    return f"{head} VALUES {','.join([row] * rows)}"


_PLACEHOLDER = re.compile(r"\?(\d*)")


@lru_cache(maxsize=256)
def _row_width(row: str, shared: int) -> int:
    """How many values a row of `row` takes: its plain `?`s. Its `?1`...`?{shared}` come
    first, since SQLite numbers a plain `?` one past the largest number before it."""
    marks = _PLACEHOLDER.findall(row)
    numbered = [int(n) for n in marks if n]
    plain = marks.index("") if "" in marks else len(marks)
    if plain == len(marks):
        raise ValueError(f"{row}: a row takes at least one value of its own (a plain ?)")
    if any(not 1 <= n <= shared for n in numbered) or any(marks[plain:]):
        raise ValueError(f"{row}: shared values are ?1 to ?{shared}, ahead of a row's own ?s")
    return len(marks) - len(numbered)


@lru_cache(maxsize=256)
def _nulls_written(row: str, nulls: frozenset[int]) -> str:
    """`row` with its plain `?`s at these places (0: its first plain `?`) written as NULL."""
    places = count()

    def place(mark: re.Match[str]) -> str:
        if mark.group(1):  # a shared value: not one of the row's own
            return mark.group(0)
        return "NULL" if next(places) in nulls else "?"

    return _PLACEHOLDER.sub(place, row)


def _without_nulls(row: str, rows: list[Sequence[Any]]) -> tuple[str, list[Sequence[Any]]]:
    """`row` and `rows` with every column that is None in all of them written into the
    statement as NULL, instead of bound row by row: Python's sqlite3 sends each None through
    its adapter registry (schema.py), and a run's new finding contents have five such columns
    (writing the contents of 100,000 new findings: 0.28-0.30 s, against 0.35-0.36 s). Only
    where the first row has a None is a column looked at."""
    candidates = [n for n, value in enumerate(rows[0]) if value is None]
    nulls = frozenset(
        n for n in candidates if list(map(itemgetter(n), rows)).count(None) == len(rows)
    )
    kept = [n for n in range(len(rows[0])) if n not in nulls]
    if not nulls or not kept:  # nothing to leave out, or nothing left to bind
        return row, rows
    # itemgetter of one place gives the value itself, not a row of one
    take = itemgetter(*kept) if len(kept) > 1 else lambda r: (r[kept[0]],)
    return _nulls_written(row, nulls), list(map(take, rows))


def insert_rows(
    conn: sqlite3.Connection,
    head: str,
    row: str,
    rows: Iterable[Sequence[Any]],
    shared: Sequence[Any] = (),
) -> None:
    """`conn.executemany(f"{head} VALUES {row}", rows)`, several rows to a statement.

    `row` is one row's values, `(?, ?, 1, ?)`: each `?` takes the next value of a row, and
    every row must have one value for each (ValueError naming `head` otherwise, before
    anything is inserted: a row one value short would shift every later row's columns).
    `shared` are values every row takes, bound once a statement instead of once a row (a
    run's key and its time three times over in each of 100,000 new fingerprint rows: 0.139 s
    to insert them, against 0.103 s shared): `row` names them `?1`, `?2`, ... ahead of its
    own, `(?1, ?, ?1, ?)`.
    """
    width = _row_width(row, len(shared))
    given = rows if isinstance(rows, list) else list(rows)
    if not given:
        return
    bad = next((values for values in given if len(values) != width), None)
    if bad is not None:
        raise ValueError(f"{head}: a row of {len(bad)} values for {width} columns")
    row, given = _without_nulls(row, given)
    width = len(given[0])
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - len(shared)
    per = max(1, min(ROWS_PER_STATEMENT, limit // width))
    flat = list(chain.from_iterable(given))
    step = per * width
    whole = len(flat) - len(flat) % step
    if whole:
        conn.executemany(
            _statement(head, row, per),
            ([*shared, *flat[at : at + step]] for at in range(0, whole, step))
            if shared
            else (flat[at : at + step] for at in range(0, whole, step)),
        )
    # the rest one a statement: a statement of every other length would be compiled once each
    conn.executemany(
        _statement(head, row, 1),
        ([*shared, *flat[at : at + width]] for at in range(whole, len(flat), width)),
    )


def append_rows(
    conn: sqlite3.Connection, head: str, row: str, rows: Iterable[Sequence[Any]], first: int
) -> None:
    """`insert_rows` of rows that take the next keys of their table, `first` on, in order.

    `head` leaves out the table's INTEGER PRIMARY KEY: SQLite gives each row one more than the
    largest key, appending to the table without first looking for a key it was given (a fifth
    of the time of inserting 100,000 finding contents). `first` is that key for the first row
    (the largest + 1, as `keys.next_id` reads it, under this transaction's write lock); the
    rows taking any other keys is an error (RuntimeError), and the transaction is undone.
    """
    given = rows if isinstance(rows, list) else list(rows)
    insert_rows(conn, head, row, given)
    if given:
        (last,) = conn.execute("SELECT last_insert_rowid()").fetchone()
        if last != first + len(given) - 1:
            raise RuntimeError(f"{head}: {len(given)} rows took keys up to {last}, not {first} on")

"""Inserting many rows at once: a couple of hundred rows to a statement.

Python's `executemany` pays for every row it is given: a reset, a bind of each value, a step
with the interpreter lock let go and taken back. One row to a statement, that is about half of
the time of inserting short rows (100,000 rows of five integers: 0.19 s, against 0.09 s two
hundred rows to a statement). A run of 100,000 findings inserts four rows a finding.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import chain
from typing import Any

# Past a couple of hundred rows a statement the gain is gone, and the statement's text and
# compiled program only grow.
ROWS_PER_STATEMENT = 200


@lru_cache(maxsize=256)
def _statement(head: str, row: str, rows: int) -> str:
    return f"{head} VALUES {','.join([row] * rows)}"


def insert_rows(
    conn: sqlite3.Connection, head: str, row: str, rows: Iterable[Sequence[Any]]
) -> None:
    """`conn.executemany(f"{head} VALUES {row}", rows)`, several rows to a statement.

    `row` is one row's values, `(?, ?, 1, ?)`: each `?` takes the next value of a row, and
    every row must have one value for each (ValueError naming `head` otherwise, before
    anything is inserted: a row one value short would shift every later row's columns).
    """
    width = row.count("?")
    given = rows if isinstance(rows, list) else list(rows)
    if not given:
        return
    bad = next((values for values in given if len(values) != width), None)
    if bad is not None:
        raise ValueError(f"{head}: a row of {len(bad)} values for {width} columns")
    per = max(
        1, min(ROWS_PER_STATEMENT, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
    )
    flat = list(chain.from_iterable(given))
    step = per * width
    whole = len(flat) - len(flat) % step
    if whole:
        conn.executemany(
            _statement(head, row, per), (flat[at : at + step] for at in range(0, whole, step))
        )
    # the rest one a statement: a statement of every other length would be compiled once each
    conn.executemany(
        _statement(head, row, 1), (flat[at : at + width] for at in range(whole, len(flat), width))
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

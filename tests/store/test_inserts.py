"""insert_rows: many rows, several to a statement, exactly as one statement a row would."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

import pytest

from auditor.store.inserts import ROWS_PER_STATEMENT, append_rows, insert_rows


@pytest.fixture
def conn() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, seen INTEGER, gone TEXT)")
    return conn


def stored(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    return conn.execute("SELECT id, name, seen, gone FROM t ORDER BY id").fetchall()


@pytest.mark.parametrize(
    "count", [0, 1, ROWS_PER_STATEMENT - 1, ROWS_PER_STATEMENT, 2 * ROWS_PER_STATEMENT + 7]
)
def test_every_row_goes_in_with_its_own_values_in_order(
    conn: sqlite3.Connection, count: int
) -> None:
    rows = [(n, f"object {n}", None if n % 3 else n, None) for n in range(count)]
    insert_rows(conn, "INSERT INTO t (id, name, seen, gone)", "(?, ?, ?, ?)", rows)
    assert stored(conn) == rows


def test_values_written_into_the_row_apply_to_every_row(conn: sqlite3.Connection) -> None:
    rows = ((n, f"object {n}") for n in range(ROWS_PER_STATEMENT + 3))  # any iterable
    insert_rows(conn, "INSERT INTO t (id, name, seen, gone)", "(?, ?, 1, NULL)", rows)
    assert stored(conn) == [(n, f"object {n}", 1, None) for n in range(ROWS_PER_STATEMENT + 3)]


def test_a_row_of_the_wrong_width_is_refused_before_anything_is_written(
    conn: sqlite3.Connection,
) -> None:
    rows = [(n, f"object {n}", n, None) for n in range(10)]
    rows[7] = (7, "object 7", 7)  # one short: it would shift every later row's columns
    with pytest.raises(ValueError, match=r"INSERT INTO t .*: a row of 3 values for 4 columns"):
        insert_rows(conn, "INSERT INTO t (id, name, seen, gone)", "(?, ?, ?, ?)", rows)
    assert stored(conn) == []


def test_a_connection_that_binds_few_values_gets_fewer_rows_a_statement(
    conn: sqlite3.Connection,
) -> None:
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 10)  # two rows of four
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    rows = [(n, f"object {n}", n, f"gone {n}") for n in range(5)]
    insert_rows(conn, "INSERT INTO t (id, name, seen, gone)", "(?, ?, ?, ?)", rows)
    assert stored(conn) == rows
    assert [s.count("),(") + 1 for s in statements if s.startswith("INSERT")] == [2, 2, 1]


def test_a_constraint_broken_by_one_row_fails_the_insert(conn: sqlite3.Connection) -> None:
    rows = [(n % 150, f"object {n}", n, None) for n in range(300)]  # ids given twice
    with pytest.raises(sqlite3.IntegrityError):
        insert_rows(conn, "INSERT INTO t (id, name, seen, gone)", "(?, ?, ?, ?)", rows)


def test_appended_rows_take_the_next_keys_in_order(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO t (id, name) VALUES (41, 'before')")
    rows = [(f"object {n}", n) for n in range(ROWS_PER_STATEMENT + 5)]
    append_rows(conn, "INSERT INTO t (name, seen)", "(?, ?)", rows, 42)
    assert stored(conn)[1:] == [(42 + n, name, seen, None) for n, (name, seen) in enumerate(rows)]


def test_appended_rows_that_took_other_keys_are_an_error(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO t (id, name) VALUES (41, 'before')")
    # a caller that read the next key before another row came in: its keys would be wrong
    with pytest.raises(
        RuntimeError, match=r"INSERT INTO t \(name\): 2 rows took keys up to 43, not 41 on"
    ):
        append_rows(conn, "INSERT INTO t (name)", "(?)", [("a",), ("b",)], 41)


def test_shared_values_are_bound_once_a_statement_and_go_into_every_row(
    conn: sqlite3.Connection,
) -> None:
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    rows = [(n, f"object {n}") for n in range(2 * ROWS_PER_STATEMENT + 3)]
    insert_rows(conn, "INSERT INTO t (seen, gone, id, name)", "(?1, ?2, ?, ?)", rows, (7, "x"))
    assert stored(conn) == [(n, name, 7, "x") for n, name in rows]
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert [s.count("),(") + 1 for s in inserts] == [ROWS_PER_STATEMENT] * 2 + [1] * 3


def test_shared_values_count_against_the_connections_limit(conn: sqlite3.Connection) -> None:
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 9)  # one shared, then four rows of two
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    rows = [(n, f"object {n}") for n in range(5)]
    insert_rows(conn, "INSERT INTO t (seen, id, name)", "(?1, ?, ?)", rows, (3,))
    assert stored(conn) == [(n, name, 3, None) for n, name in rows]
    assert [s.count("),(") + 1 for s in statements if s.startswith("INSERT")] == [4, 1]


@pytest.mark.parametrize(
    "row",
    [
        "(?, ?1, ?)",  # a shared value after a row's own: SQLite would number that `?` 1
        "(?1, ?3, ?)",  # only two shared values given
    ],
)
def test_a_row_that_would_misplace_shared_values_is_refused(
    conn: sqlite3.Connection, row: str
) -> None:
    with pytest.raises(ValueError, match="shared values are"):
        insert_rows(conn, "INSERT INTO t (seen, id, name)", row, [(1, "a")], (3, 4))
    assert stored(conn) == []


def test_a_row_with_no_value_of_its_own_is_refused(conn: sqlite3.Connection) -> None:
    with pytest.raises(ValueError, match="at least one value of its own"):
        insert_rows(conn, "INSERT INTO t (seen, id)", "(?1, ?2)", [()], (3, 4))
    assert stored(conn) == []


def test_a_column_none_in_every_row_is_written_as_null_and_the_rest_bound(
    conn: sqlite3.Connection,
) -> None:
    class Recorded:
        """The connection, with the text and values of each statement it is given."""

        def __init__(self) -> None:
            self.calls: list[tuple[str, list[Sequence[object]]]] = []

        def getlimit(self, category: int) -> int:
            return conn.getlimit(category)

        def executemany(self, sql: str, values: Iterable[Sequence[object]]) -> None:
            given = list(values)
            self.calls.append((sql, given))
            conn.executemany(sql, given)

    recorded = Recorded()
    # `seen` is None in some rows only: bound; `gone` in all: NULL in the statement
    rows = [(n, f"object {n}", None if n % 2 else n, None) for n in range(ROWS_PER_STATEMENT + 2)]
    insert_rows(recorded, "INSERT INTO t (id, name, seen, gone)", "(?, ?, ?, ?)", rows)  # type: ignore[arg-type]
    assert stored(conn) == rows
    assert [sql.count("(?, ?, ?, NULL)") for sql, _ in recorded.calls] == [ROWS_PER_STATEMENT, 1]
    bound = [len(values) for _, given in recorded.calls for values in given]
    assert bound == [3 * ROWS_PER_STATEMENT, 3, 3]


def test_shared_values_stay_bound_beside_a_column_written_as_null(
    conn: sqlite3.Connection,
) -> None:
    rows = [(n, None) for n in range(5)]
    insert_rows(conn, "INSERT INTO t (seen, id, gone)", "(?1, ?, ?)", rows, (9,))
    assert stored(conn) == [(n, None, 9, None) for n in range(5)]


def test_rows_of_nothing_but_none_are_still_written(conn: sqlite3.Connection) -> None:
    rows = [(None, None) for _ in range(3)]
    insert_rows(conn, "INSERT INTO t (name, gone)", "(?, ?)", rows)
    assert stored(conn) == [(n, None, None, None) for n in (1, 2, 3)]

"""Schema version 3: a store that lasts, and history that answers at once.

A 10,000-resource run wrote 31 MB in version 2 (the evaluations three quarters of it), most
of it what the night before had written already. From here on:

- `objects` and `policies` hold each object and each version of a policy's METADATA once;
  a run's rows name them by integer keys, and runs are keyed by `runs.seq`;
- `finding_contents` and `evaluation_messages` hold each distinct finding and message list
  once (found again by a 128-bit digest of their content); a run's findings are a list of
  content keys (`run_findings`), so a finding that is the same tonight costs a few bytes;
- `run_resources`, `run_evaluations`, `run_policies`: per run, clustered by (run, position);
- `finding_states`: each fingerprint's history, maintained as runs are recorded
  (`auditor.store.history`), indexed for first seen, last seen, open and resolved.

The version 2 tables `findings`, `resources` and `evaluations` become views with the same
columns (`id` becomes `position` within the run; evaluations' `duration_ms` is kept to the
microsecond), so queries written against them keep working. Existing rows are converted;
the history is computed from them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

from sqlite_utils import Database

from auditor.store import keys
from auditor.store.migrations import v3history as history

TABLES = """
CREATE TABLE objects (
    id INTEGER PRIMARY KEY,
    cluster TEXT NOT NULL, api_version TEXT NOT NULL, kind TEXT NOT NULL,
    namespace TEXT NOT NULL, name TEXT NOT NULL
);
CREATE UNIQUE INDEX objects_identity ON objects (cluster, api_version, kind, namespace, name);
CREATE TABLE policies (
    id INTEGER PRIMARY KEY, digest BLOB NOT NULL UNIQUE,
    policy TEXT NOT NULL, title TEXT, description TEXT, severity TEXT, warn_severity TEXT,
    controls TEXT, source TEXT, kind TEXT, source_digest TEXT
);
CREATE INDEX policies_policy ON policies (policy);
CREATE TABLE finding_contents (
    id INTEGER PRIMARY KEY, digest BLOB NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL, object INTEGER NOT NULL,
    category TEXT NOT NULL, check_id TEXT NOT NULL, severity TEXT NOT NULL, class TEXT,
    path TEXT, message TEXT, expected TEXT, actual TEXT,
    changed_by_manager TEXT, changed_by_operation TEXT, changed_by_time TEXT,
    details TEXT, controls TEXT
);
CREATE INDEX finding_contents_fingerprint ON finding_contents (fingerprint);
CREATE TABLE evaluation_messages (
    id INTEGER PRIMARY KEY, digest BLOB NOT NULL UNIQUE, messages TEXT NOT NULL
);
CREATE TABLE run_findings (
    run INTEGER NOT NULL REFERENCES runs (seq) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    content INTEGER NOT NULL,
    PRIMARY KEY (run, position)
) WITHOUT ROWID;
CREATE INDEX run_findings_content ON run_findings (content);
CREATE TABLE run_resources (
    run INTEGER NOT NULL REFERENCES runs (seq) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    object INTEGER NOT NULL,
    status TEXT NOT NULL, origin TEXT, line INTEGER, body_digest TEXT,
    PRIMARY KEY (run, position)
) WITHOUT ROWID;
CREATE TABLE run_evaluations (
    run INTEGER NOT NULL REFERENCES runs (seq) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    policy INTEGER NOT NULL,
    object INTEGER,
    result TEXT NOT NULL,
    messages INTEGER,
    duration_us INTEGER,
    error TEXT,
    PRIMARY KEY (run, position)
) WITHOUT ROWID;
CREATE TABLE run_policies (
    run INTEGER NOT NULL REFERENCES runs (seq) ON DELETE CASCADE,
    policy INTEGER NOT NULL,
    PRIMARY KEY (run, policy)
) WITHOUT ROWID;
CREATE TABLE finding_states (
    fingerprint TEXT PRIMARY KEY,
    cluster TEXT NOT NULL,
    first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, runs_seen INTEGER NOT NULL,
    open_since TEXT, resolved_at TEXT,
    last_run INTEGER NOT NULL, last_content INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX finding_states_open ON finding_states (cluster) WHERE resolved_at IS NULL;
CREATE INDEX finding_states_first_seen ON finding_states (first_seen);
CREATE INDEX finding_states_resolved_at ON finding_states (resolved_at);
"""

VIEWS = """
CREATE VIEW findings AS
SELECT runs.id AS run_id, rf.position, fc.fingerprint, fc.category, fc.check_id,
    fc.severity, fc.class, o.cluster, o.api_version, o.kind, o.namespace, o.name, fc.path,
    fc.message, fc.expected, fc.actual, fc.changed_by_manager, fc.changed_by_operation,
    fc.changed_by_time, fc.details, fc.controls
FROM run_findings rf
JOIN runs ON runs.seq = rf.run
JOIN finding_contents fc ON fc.id = rf.content
JOIN objects o ON o.id = fc.object;

CREATE VIEW resources AS
SELECT runs.id AS run_id, rr.position, o.cluster, o.api_version, o.kind, o.namespace,
    o.name, rr.status, rr.origin, rr.line, rr.body_digest
FROM run_resources rr
JOIN runs ON runs.seq = rr.run
JOIN objects o ON o.id = rr.object;

CREATE VIEW evaluations AS
SELECT runs.id AS run_id, re.position, p.policy, o.cluster, o.api_version, o.kind,
    o.namespace, o.name, re.result, COALESCE(m.messages, '[]') AS messages,
    re.duration_us / 1000.0 AS duration_ms, re.error
FROM run_evaluations re
JOIN runs ON runs.seq = re.run
JOIN policies p ON p.id = re.policy
LEFT JOIN objects o ON o.id = re.object
LEFT JOIN evaluation_messages m ON m.id = re.messages;

CREATE VIEW latest_run AS
SELECT * FROM runs
WHERE finished IS NOT NULL
ORDER BY started DESC, id DESC
LIMIT 1;

CREATE VIEW finding_history AS
SELECT s.fingerprint, fc.category, fc.check_id, fc.severity, fc.class, o.cluster,
    o.api_version, o.kind, o.namespace, o.name, fc.path, fc.message,
    s.first_seen, s.last_seen, s.runs_seen, s.open_since, s.resolved_at,
    CASE WHEN s.resolved_at IS NULL THEN 'open' ELSE 'resolved' END AS status,
    runs.id AS run_id
FROM finding_states s
JOIN finding_contents fc ON fc.id = s.last_content
JOIN objects o ON o.id = fc.object
LEFT JOIN runs ON runs.seq = s.last_run;

CREATE VIEW open_findings AS
SELECT * FROM finding_history WHERE status = 'open';

CREATE VIEW policy_summary AS
SELECT runs.id AS run_id, p.policy,
    COUNT(*) AS evaluated,
    SUM(re.result = 'pass') AS passed,
    SUM(re.result = 'fail') AS failed,
    SUM(re.result = 'warn') AS warned,
    SUM(re.result = 'error') AS errored
FROM run_evaluations re
JOIN runs ON runs.seq = re.run
JOIN policies p ON p.id = re.policy
GROUP BY re.run, p.policy;
"""


def _script(conn: sqlite3.Connection, script: str) -> None:
    # executescript would COMMIT the migration's transaction: run statement by statement.
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _number_runs(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE runs ADD COLUMN trust_policy_digest TEXT")
    # what a run could not say (snapshots without managedFields...), a JSON list of sentences
    conn.execute("ALTER TABLE runs ADD COLUMN notes TEXT NOT NULL DEFAULT '[]'")
    conn.execute("ALTER TABLE runs ADD COLUMN seq INTEGER")
    conn.execute(
        "UPDATE runs SET seq = (SELECT n FROM (SELECT id, ROW_NUMBER() OVER"
        " (ORDER BY started, id) AS n FROM runs) AS numbered WHERE numbered.id = runs.id)"
    )
    conn.execute("CREATE UNIQUE INDEX runs_seq ON runs (seq)")


def _ref(row: sqlite3.Row) -> keys.ObjectKey | None:
    if row["kind"] is None and row["name"] is None:
        return None
    return (
        row["cluster"] or "",
        row["api_version"] or "",
        row["kind"] or "",
        row["namespace"] or "",
        row["name"] or "",
    )


def _rows(conn: sqlite3.Connection, table: str) -> Iterator[sqlite3.Row]:
    cursor = conn.execute(
        f"SELECT {table}.*, runs.seq AS run_seq FROM {table}_v2 AS {table}"
        f" JOIN runs ON runs.id = {table}.run_id ORDER BY {table}.id"
    )
    cursor.row_factory = sqlite3.Row
    yield from cursor


def _object_id(objects: keys.ObjectKeys, key: keys.ObjectKey | None) -> int | None:
    return objects(key) if key is not None else None


def _convert_findings(conn: sqlite3.Connection, objects: keys.ObjectKeys) -> None:
    positions: dict[int, int] = {}
    for row in _rows(conn, "findings"):
        values = (
            row["fingerprint"],
            _object_id(objects, _ref(row) or ("", "", "", "", "")),
            *(row[column] for column in history.FINDING_COLUMNS[2:]),
        )
        content = keys.content_ids(
            conn, "finding_contents", {keys.digest(*values): values}, history.FINDING_COLUMNS
        )
        position = positions.get(row["run_seq"], 0)
        positions[row["run_seq"]] = position + 1
        conn.execute(
            "INSERT INTO run_findings (run, position, content) VALUES (?, ?, ?)",
            (row["run_seq"], position, next(iter(content.values()))),
        )


def _convert_resources(conn: sqlite3.Connection, objects: keys.ObjectKeys) -> None:
    positions: dict[int, int] = {}
    for row in _rows(conn, "resources"):
        position = positions.get(row["run_seq"], 0)
        positions[row["run_seq"]] = position + 1
        conn.execute(
            "INSERT INTO run_resources (run, position, object, status, origin, line,"
            " body_digest) VALUES (?, ?, ?, ?, ?, NULL, ?)",
            (
                row["run_seq"],
                position,
                _object_id(objects, _ref(row)),
                row["status"],
                row["origin"],
                row["body_digest"],
            ),
        )


def _convert_evaluations(conn: sqlite3.Connection, objects: keys.ObjectKeys) -> None:
    positions: dict[int, int] = {}
    policies: dict[str, int] = {}
    for row in _rows(conn, "evaluations"):
        policy = row["policy"]
        if policy not in policies:
            # Version 2 kept no METADATA: the policy is known by its id only.
            from auditor.model import PolicyInfo

            policies.update(keys.policy_ids(conn, [PolicyInfo(policy, severity="high")]))
        messages = None
        if row["messages"] not in (None, "[]"):
            text = json.dumps(json.loads(row["messages"]), ensure_ascii=False)
            found = keys.content_ids(
                conn, "evaluation_messages", {keys.digest(text): (text,)}, ("messages",)
            )
            messages = next(iter(found.values()))
        position = positions.get(row["run_seq"], 0)
        positions[row["run_seq"]] = position + 1
        conn.execute(
            "INSERT INTO run_evaluations (run, position, policy, object, result, messages,"
            " duration_us, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row["run_seq"],
                position,
                policies[policy],
                _object_id(objects, _ref(row)),
                row["result"],
                messages,
                round((row["duration_ms"] or 0.0) * 1000),
                row["error"],
            ),
        )
        conn.execute(
            "INSERT OR IGNORE INTO run_policies (run, policy) VALUES (?, ?)",
            (row["run_seq"], policies[policy]),
        )


def migrate(db: Database) -> None:
    conn = db.conn
    for view in ("latest_run", "open_findings", "finding_history", "policy_summary"):
        conn.execute(f"DROP VIEW IF EXISTS {view}")
    _number_runs(conn)
    for table in ("findings", "resources", "evaluations"):
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_v2")
    _script(conn, TABLES)
    objects = keys.ObjectKeys(conn)
    _convert_findings(conn, objects)
    _convert_resources(conn, objects)
    _convert_evaluations(conn, objects)
    for table in ("findings", "resources", "evaluations"):
        conn.execute(f"DROP TABLE {table}_v2")
    _script(conn, VIEWS)
    history.rebuild(conn)

"""Schema version 6: a first run that costs what a nightly one does, and cheaper indexes.

Version 3 stored a 10,000-resource run in 17 MB the first time (4.5 MB each night after).
Most of it repeated what the store had already, or what the same run said elsewhere:

- a fingerprint (32 characters) was the key of `finding_states` and sat again in its three
  indexes, in every finding content and in an index on those: now `fingerprints` holds each
  once (as its 16 bytes when it is 32 lowercase hex digits, as auditor makes them; the views
  show the hex), and contents and history name it by an integer (`finding`);
- a policy finding carried its policy's id, title, source and controls, and the path its
  message named; a content with `policy` set takes them from that `policies` row (category
  `policy`, check_id the policy's id; its stored `details` lack `policy_title` and `source`;
  `controls` NULL is the policy's, `path` NULL the `path` of its details' message), and
  `message_form` 1 or 2 says its message is `<Kind ns/name>: ` + (or just) the `msg` of its
  details, so the text is stored once;
- an evaluation's messages repeated the findings they produced: `run_evaluations.messages`
  is either a key of `evaluation_messages`, whose row holds the message list (`messages`) or
  the finding contents it is made of (`contents`, a JSON list of ids), or, negative, minus
  the key of the one finding content its only message is made of; the `evaluations` view
  builds the same list from them (`finding_messages`: the message each content gives back);
- `run_evaluations.result` and `run_resources.status` are small integer codes (named in
  `evaluation_results` and `resource_statuses`); `run_resources.origin` (`path@commit`) is two
  keys into `origin_parts`, so a path and a commit are stored once however many runs see them;
- contents are found again by finding and digest (an index on `finding`, never on a random
  digest), objects by cluster: an insert no longer lands at a random place in four indexes.

Each compact form is used only where it gives back exactly what was recorded (the writer
checks); any other value is stored as it is. Rows of versions 3 and 4 are kept as they are
(the verbatim forms); their content digests stay those of version 3, so a finding recorded again
after the migration gets one new content row, once. Every view keeps its columns; JSON built
by a view is the same value, written without spaces.

Self-contained: everything this migration needs is in this module.
"""

from __future__ import annotations

import re
import sqlite3

from sqlite_utils import Database

# The codes of version 6, in this order: the writer reads them back from the tables.
EVALUATION_RESULTS = ("pass", "fail", "warn", "error")
RESOURCE_STATUSES = ("in_sync", "drifted", "missing", "unmanaged", "live", "desired")

TABLES = """
CREATE TABLE fingerprints (id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL UNIQUE);
CREATE TABLE evaluation_results (code INTEGER PRIMARY KEY, result TEXT NOT NULL UNIQUE);
CREATE TABLE resource_statuses (code INTEGER PRIMARY KEY, status TEXT NOT NULL UNIQUE);
CREATE TABLE origin_parts (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
CREATE TABLE finding_contents (
    id INTEGER PRIMARY KEY,
    finding INTEGER NOT NULL,
    digest BLOB NOT NULL,
    object INTEGER NOT NULL,
    policy INTEGER,
    category TEXT, check_id TEXT, severity TEXT NOT NULL, class TEXT,
    path TEXT, message_form INTEGER, message TEXT, expected TEXT, actual TEXT,
    changed_by_manager TEXT, changed_by_operation TEXT, changed_by_time TEXT,
    details TEXT, controls TEXT
);
CREATE INDEX finding_contents_finding ON finding_contents (finding);
CREATE TABLE finding_states (
    finding INTEGER PRIMARY KEY,
    cluster TEXT NOT NULL,
    first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, runs_seen INTEGER NOT NULL,
    open_since TEXT, resolved_at TEXT,
    last_run INTEGER NOT NULL, last_content INTEGER NOT NULL
);
CREATE INDEX finding_states_open ON finding_states (cluster) WHERE resolved_at IS NULL;
CREATE TABLE evaluation_messages (
    id INTEGER PRIMARY KEY, digest BLOB NOT NULL UNIQUE, messages TEXT, contents TEXT,
    CHECK ((messages IS NULL) != (contents IS NULL))
);
CREATE TABLE run_evaluations (
    run INTEGER NOT NULL REFERENCES runs (seq) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    policy INTEGER NOT NULL,
    object INTEGER,
    result INTEGER NOT NULL,
    messages INTEGER,
    duration_us INTEGER,
    error TEXT,
    PRIMARY KEY (run, position)
) WITHOUT ROWID;
CREATE TABLE run_resources (
    run INTEGER NOT NULL REFERENCES runs (seq) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    object INTEGER NOT NULL,
    status INTEGER NOT NULL,
    origin_path INTEGER, origin_commit INTEGER, line INTEGER, body_digest TEXT,
    PRIMARY KEY (run, position)
) WITHOUT ROWID;
CREATE INDEX objects_cluster ON objects (cluster);
"""

# The object's name as messages write it (`ResourceRef.display`).
_DISPLAY = (
    "o.kind || ' ' || CASE WHEN o.namespace != '' THEN o.namespace || '/' ELSE '' END || o.name"
)
_MSG = "json_extract(fc.details, '$.message.msg')"
# A fingerprint is 16 bytes when it is the 32 hex digits auditor makes, else its text.
_FINGERPRINT = (
    "CASE WHEN typeof(fp.fingerprint) = 'blob' THEN lower(hex(fp.fingerprint))"
    " ELSE fp.fingerprint END"
)

VIEWS = f"""
CREATE VIEW finding_values AS
SELECT fc.id, {_FINGERPRINT} AS fingerprint, fc.finding, fc.object, o.cluster, o.api_version,
    o.kind,
    o.namespace, o.name, COALESCE(fc.category, 'policy') AS category,
    COALESCE(fc.check_id, p.policy) AS check_id, fc.severity, fc.class,
    CASE WHEN fc.path IS NULL AND fc.policy IS NOT NULL
        THEN json_extract(fc.details, '$.message.path') ELSE fc.path
    END AS path,
    CASE fc.message_form
        WHEN 1 THEN {_DISPLAY} || ': ' || {_MSG}
        WHEN 2 THEN {_MSG}
        ELSE fc.message
    END AS message,
    fc.expected, fc.actual, fc.changed_by_manager, fc.changed_by_operation,
    fc.changed_by_time,
    CASE WHEN fc.policy IS NULL THEN fc.details
        ELSE json_set(fc.details, '$.policy_title', p.title, '$.source', p.source)
    END AS details,
    CASE WHEN fc.controls IS NULL AND fc.policy IS NOT NULL THEN p.controls
        ELSE fc.controls
    END AS controls
FROM finding_contents fc
JOIN fingerprints fp ON fp.id = fc.finding
JOIN objects o ON o.id = fc.object
LEFT JOIN policies p ON p.id = fc.policy;

CREATE VIEW findings AS
SELECT runs.id AS run_id, rf.position, v.fingerprint, v.category, v.check_id,
    v.severity, v.class, v.cluster, v.api_version, v.kind, v.namespace, v.name, v.path,
    v.message, v.expected, v.actual, v.changed_by_manager, v.changed_by_operation,
    v.changed_by_time, v.details, v.controls
FROM run_findings rf
JOIN runs ON runs.seq = rf.run
JOIN finding_values v ON v.id = rf.content;

CREATE VIEW resources AS
SELECT runs.id AS run_id, rr.position, o.cluster, o.api_version, o.kind, o.namespace,
    o.name, s.status, op.text || COALESCE('@' || oc.text, '') AS origin, rr.line,
    rr.body_digest
FROM run_resources rr
JOIN runs ON runs.seq = rr.run
JOIN objects o ON o.id = rr.object
JOIN resource_statuses s ON s.code = rr.status
LEFT JOIN origin_parts op ON op.id = rr.origin_path
LEFT JOIN origin_parts oc ON oc.id = rr.origin_commit;

CREATE VIEW finding_messages AS
SELECT fc.id, json_object(
    'rule', json_extract(fc.details, '$.rule'),
    'msg', CASE json_type(fc.details, '$.message')
        WHEN 'object' THEN {_MSG} ELSE json_extract(fc.details, '$.message') END,
    'details', CASE json_type(fc.details, '$.message')
        WHEN 'object' THEN json(json_extract(fc.details, '$.message')) ELSE json('{{}}') END
) AS message
FROM finding_contents fc;

CREATE VIEW evaluation_message_lists AS
SELECT m.id, COALESCE(m.messages, (
    SELECT json_group_array(json(fm.message))
    FROM json_each(m.contents) AS part
    JOIN finding_messages fm ON fm.id = part.value
)) AS messages
FROM evaluation_messages m;

CREATE VIEW evaluations AS
SELECT runs.id AS run_id, re.position, p.policy, o.cluster, o.api_version, o.kind,
    o.namespace, o.name, r.result,
    CASE
        WHEN re.messages < 0 THEN (
            SELECT json_array(json(fm.message)) FROM finding_messages fm
            WHERE fm.id = -re.messages
        )
        ELSE COALESCE(m.messages, '[]')
    END AS messages,
    re.duration_us / 1000.0 AS duration_ms, re.error
FROM run_evaluations re
JOIN runs ON runs.seq = re.run
JOIN policies p ON p.id = re.policy
JOIN evaluation_results r ON r.code = re.result
LEFT JOIN objects o ON o.id = re.object
LEFT JOIN evaluation_message_lists m ON m.id = re.messages;

CREATE VIEW finding_history AS
SELECT v.fingerprint, v.category, v.check_id, v.severity, v.class, v.cluster,
    v.api_version, v.kind, v.namespace, v.name, v.path, v.message,
    s.first_seen, s.last_seen, s.runs_seen, s.open_since, s.resolved_at,
    CASE WHEN s.resolved_at IS NULL THEN 'open' ELSE 'resolved' END AS status,
    runs.id AS run_id
FROM finding_states s
JOIN fingerprints fp ON fp.id = s.finding
JOIN finding_values v ON v.id = s.last_content
LEFT JOIN runs ON runs.seq = s.last_run;

CREATE VIEW open_findings AS
SELECT * FROM finding_history WHERE status = 'open';

CREATE VIEW policy_summary AS
SELECT runs.id AS run_id, p.policy,
    COUNT(*) AS evaluated,
    SUM(re.result = 0) AS passed,
    SUM(re.result = 1) AS failed,
    SUM(re.result = 2) AS warned,
    SUM(re.result = 3) AS errored
FROM run_evaluations re
JOIN runs ON runs.seq = re.run
JOIN policies p ON p.id = re.policy
GROUP BY re.run, p.policy;
"""

# Version 3's rows, as they are (the verbatim forms of version 6).
CONVERT = """
INSERT INTO fingerprints (fingerprint)
    SELECT fingerprint FROM finding_contents_v3
    UNION SELECT fingerprint FROM finding_states_v3;
INSERT INTO finding_contents
    (id, finding, digest, object, policy, category, check_id, severity, class, path,
     message_form, message, expected, actual, changed_by_manager, changed_by_operation,
     changed_by_time, details, controls)
    SELECT c.id, f.id, c.digest, c.object, NULL, c.category, c.check_id, c.severity, c.class,
        c.path, NULL, c.message, c.expected, c.actual, c.changed_by_manager,
        c.changed_by_operation, c.changed_by_time, c.details, c.controls
    FROM finding_contents_v3 c JOIN fingerprints f ON f.fingerprint = c.fingerprint
    ORDER BY c.id;
INSERT INTO finding_states
    SELECT f.id, s.cluster, s.first_seen, s.last_seen, s.runs_seen, s.open_since,
        s.resolved_at, s.last_run, s.last_content
    FROM finding_states_v3 s JOIN fingerprints f ON f.fingerprint = s.fingerprint
    ORDER BY f.id;
INSERT INTO evaluation_messages (id, digest, messages)
    SELECT id, digest, messages FROM evaluation_messages_v3 ORDER BY id;
INSERT OR IGNORE INTO evaluation_results (result)
    SELECT DISTINCT result FROM run_evaluations_v3;
INSERT INTO run_evaluations
    SELECT re.run, re.position, re.policy, re.object, r.code, re.messages, re.duration_us,
        re.error
    FROM run_evaluations_v3 re JOIN evaluation_results r ON r.result = re.result
    ORDER BY re.run, re.position;
INSERT OR IGNORE INTO resource_statuses (status)
    SELECT DISTINCT status FROM run_resources_v3
"""

_REPLACED = ("finding_contents", "finding_states", "evaluation_messages", "run_evaluations")
_REPLACED_INDEXES = (
    "finding_contents_fingerprint",
    "finding_states_open",
    "finding_states_first_seen",
    "finding_states_resolved_at",
    "objects_identity",
)
_VIEWS = (
    "findings",
    "resources",
    "evaluations",
    "finding_history",
    "open_findings",
    "policy_summary",
)


def _script(conn: sqlite3.Connection, script: str) -> None:
    # executescript would COMMIT the migration's transaction: run statement by statement.
    for statement in script.split(";\n"):
        if statement.strip():
            conn.execute(statement)


def _origin_part(conn: sqlite3.Connection, known: dict[str, int], text: str | None) -> int | None:
    if text is None:
        return None
    if text not in known:
        known[text] = conn.execute(
            "INSERT INTO origin_parts (text) VALUES (?) RETURNING id", (text,)
        ).fetchone()[0]
    return known[text]


_HEX32 = re.compile(r"[0-9a-f]{32}")


def _convert_fingerprints(conn: sqlite3.Connection) -> None:
    rows = conn.execute("SELECT id, fingerprint FROM fingerprints").fetchall()
    conn.executemany(
        "UPDATE fingerprints SET fingerprint = ? WHERE id = ?",
        ((bytes.fromhex(text), key) for key, text in rows if _HEX32.fullmatch(text)),
    )


def _convert_resources(conn: sqlite3.Connection) -> None:
    """`path@commit` split at its last `@` (none: the whole text is the path)."""
    statuses = dict(conn.execute("SELECT status, code FROM resource_statuses"))
    parts: dict[str, int] = {}
    rows = conn.execute(
        "SELECT run, position, object, status, origin, line, body_digest FROM run_resources_v3"
        " ORDER BY run, position"
    ).fetchall()
    converted = []
    for run, position, obj, status, origin, line, body_digest in rows:
        path, commit = origin, None
        if origin is not None and "@" in origin:
            path, _, commit = origin.rpartition("@")
        converted.append(
            (
                run,
                position,
                obj,
                statuses[status],
                _origin_part(conn, parts, path),
                _origin_part(conn, parts, commit),
                line,
                body_digest,
            )
        )
    conn.executemany("INSERT INTO run_resources VALUES (?, ?, ?, ?, ?, ?, ?, ?)", converted)


def migrate(db: Database) -> None:
    conn = db.conn
    for view in _VIEWS:
        conn.execute(f"DROP VIEW IF EXISTS {view}")
    for index in _REPLACED_INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {index}")
    for table in (*_REPLACED, "run_resources"):
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_v3")
    _script(conn, TABLES)
    conn.executemany(
        "INSERT INTO evaluation_results (code, result) VALUES (?, ?)",
        enumerate(EVALUATION_RESULTS),
    )
    conn.executemany(
        "INSERT INTO resource_statuses (code, status) VALUES (?, ?)",
        enumerate(RESOURCE_STATUSES),
    )
    _script(conn, CONVERT)
    _convert_fingerprints(conn)
    _convert_resources(conn)
    for table in (*_REPLACED, "run_resources"):
        conn.execute(f"DROP TABLE {table}_v3")
    _script(conn, VIEWS)

-- v6: the audit log, hash-chained and signed (server/src/audit.rs).
CREATE TABLE audit_log (
    seq     INTEGER PRIMARY KEY,
    at_ms   INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL,
    prev    TEXT NOT NULL,
    hash    TEXT NOT NULL,
    sig     BLOB NOT NULL
);

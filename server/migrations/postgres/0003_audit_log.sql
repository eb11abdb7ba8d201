-- v3: the audit log, hash-chained and signed (server/src/audit.rs).
CREATE TABLE audit_log (
    seq     BIGINT PRIMARY KEY,
    at_ms   BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL,
    prev    TEXT NOT NULL,
    hash    TEXT NOT NULL,
    sig     BYTEA NOT NULL
);

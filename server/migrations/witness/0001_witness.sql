-- v1: a witness's own database (witness.db in its data directory, never
-- beside a coordinator's). Its cosigning key, wrapped like a
-- coordinator's keys (by a key file on other storage, or a passphrase);
-- the logs it follows, each with the newest head it cosigned; and the
-- signed checkpoints it refused because they did not extend that head,
-- which are evidence that the log's operator rewrote its history.
CREATE TABLE witness (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    name     TEXT NOT NULL,
    key      BLOB NOT NULL,
    lock     BLOB NOT NULL,
    made_ms  INTEGER NOT NULL
);

CREATE TABLE logs (
    origin       TEXT PRIMARY KEY,
    key          BLOB NOT NULL CHECK (length(key) = 32),
    followed_ms  INTEGER NOT NULL,
    -- The newest cosigned head and the checkpoint as the log signed it;
    -- all NULL until the first cosignature.
    size         INTEGER,
    root         BLOB,
    note         BLOB,
    cosigned_ms  INTEGER,
    CHECK ((size IS NULL) = (root IS NULL) AND (size IS NULL) = (note IS NULL))
);

CREATE TABLE refusals (
    id       INTEGER PRIMARY KEY,
    origin   TEXT NOT NULL REFERENCES logs (origin),
    at_ms    INTEGER NOT NULL,
    held     BLOB NOT NULL,
    offered  BLOB NOT NULL,
    why      TEXT NOT NULL
);
CREATE INDEX refusals_by_origin ON refusals (origin, id);

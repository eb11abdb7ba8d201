-- v1: records keyed by their chain position, the outbox state beside
-- each record (pending, in flight, delivered, rejected), the receipts
-- that proved delivery or rejection, and key/value metadata (wrapped
-- device key, chain head, enrollment, server clock).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE receipts (
    id          INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    bytes       BLOB NOT NULL
);
CREATE TABLE records (
    seq         INTEGER PRIMARY KEY,
    id          BLOB NOT NULL UNIQUE CHECK (length(id) = 32),
    body        BLOB NOT NULL,
    sig         BLOB NOT NULL CHECK (length(sig) = 64),
    station     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    captured_at INTEGER NOT NULL,
    state       INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2, 3)),
    receipt     INTEGER REFERENCES receipts(id),
    rejection   TEXT,
    CHECK ((state IN (2, 3)) = (receipt IS NOT NULL)),
    CHECK ((state = 3) = (rejection IS NOT NULL))
);
CREATE INDEX records_by_state ON records(state, seq);
CREATE INDEX records_by_station ON records(station, seq);
CREATE INDEX records_by_kind ON records(kind, seq);
CREATE INDEX records_by_time ON records(captured_at);

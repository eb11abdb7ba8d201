-- v1: enrollment tokens (by hash), devices, the records (a record's rowid
-- is its leaf index in the log), conflicts kept aside, and key/value
-- metadata (wrapped keys, the log's frontier).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE tokens (
    hash       BLOB PRIMARY KEY,
    stations   TEXT NOT NULL,
    name       TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    device     TEXT
) WITHOUT ROWID;
CREATE TABLE devices (
    id           TEXT PRIMARY KEY,
    public_key   BLOB NOT NULL,
    name         TEXT,
    stations     TEXT NOT NULL,
    enrolled_at  INTEGER NOT NULL,
    revoked_at   INTEGER,
    last_contact INTEGER,
    hb_seq       INTEGER,
    hb_head      BLOB
) WITHOUT ROWID;
CREATE TABLE records (
    log_index   INTEGER PRIMARY KEY,
    id          BLOB NOT NULL UNIQUE,
    device      TEXT NOT NULL REFERENCES devices(id),
    seq         INTEGER NOT NULL,
    prev        BLOB,
    station     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    captured_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    body        BLOB NOT NULL,
    sig         BLOB NOT NULL,
    UNIQUE (device, seq)
);
CREATE INDEX records_by_station ON records(station, log_index);
CREATE TABLE conflicts (
    id          BLOB PRIMARY KEY,
    device      TEXT NOT NULL REFERENCES devices(id),
    seq         INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    body        BLOB NOT NULL,
    sig         BLOB NOT NULL
);

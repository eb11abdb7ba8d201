-- v1: the schema the SQLite backend reached at its v4, in PostgreSQL's
-- types: enrollment tokens (by hash), devices, the records (a record's
-- log_index is its leaf index in the log), conflicts and quarantine kept
-- aside, published forms, official results, media, and key/value
-- metadata (the wrapped keys).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
-- The log's head: one row holding the Merkle frontier. Every append locks
-- it (SELECT ... FOR UPDATE) inside its ingest transaction, so batches
-- from any number of server nodes append one after another: leaf indexes
-- unique and gap-free, one tree.
CREATE TABLE log_head (
    id       SMALLINT PRIMARY KEY CHECK (id = 1),
    frontier BYTEA NOT NULL
);
CREATE TABLE tokens (
    hash       BYTEA PRIMARY KEY,
    stations   TEXT NOT NULL,
    name       TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    device     TEXT
);
CREATE TABLE devices (
    id                TEXT PRIMARY KEY,
    public_key        BYTEA NOT NULL,
    name              TEXT,
    stations          TEXT NOT NULL,
    enrolled_at       BIGINT NOT NULL,
    revoked_at        BIGINT,
    revoked_after_seq BIGINT,
    last_contact      BIGINT,
    hb_seq            BIGINT,
    hb_head           BYTEA
);
-- records.device (and conflicts' and quarantine's) has no foreign key,
-- unlike SQLite's: PostgreSQL checks one per inserted row, and that check
-- was two thirds of an insert's cost (about 10 us a row). The ingest
-- transaction reads and share-locks the device's row instead, and no
-- code path deletes a device.
CREATE TABLE records (
    log_index   BIGINT PRIMARY KEY,
    id          BYTEA NOT NULL UNIQUE,
    device      TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    prev        BYTEA,
    station     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    captured_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    body        BYTEA NOT NULL,
    sig         BYTEA NOT NULL,
    form_clean  BOOLEAN,
    form_check  TEXT,
    sealed      TEXT,
    UNIQUE (device, seq)
);
CREATE INDEX records_by_station ON records(station, log_index);
CREATE INDEX records_by_kind ON records(kind, log_index);
CREATE TABLE conflicts (
    id          BYTEA PRIMARY KEY,
    device      TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    body        BYTEA NOT NULL,
    sig         BYTEA NOT NULL,
    sealed      TEXT
);
CREATE INDEX conflicts_by_device ON conflicts(device);
CREATE TABLE quarantine (
    id          BYTEA PRIMARY KEY,
    device      TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    body        BYTEA NOT NULL,
    sig         BYTEA NOT NULL,
    sealed      TEXT
);
CREATE INDEX quarantine_by_device ON quarantine(device);
CREATE TABLE forms (
    id           TEXT NOT NULL,
    version      INTEGER NOT NULL,
    definition   TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    PRIMARY KEY (id, version)
);
CREATE TABLE official (
    station     TEXT PRIMARY KEY,
    region      TEXT,
    figures     TEXT NOT NULL,
    imported_at BIGINT NOT NULL
);
CREATE TABLE attachments (
    record_id BYTEA NOT NULL REFERENCES records(id),
    sha256    TEXT NOT NULL,
    bytes     BIGINT NOT NULL,
    PRIMARY KEY (record_id, sha256)
);
CREATE INDEX attachments_by_sha256 ON attachments(sha256);
CREATE TABLE media (
    sha256       TEXT PRIMARY KEY,
    bytes        BIGINT NOT NULL,
    completed_at BIGINT NOT NULL
);

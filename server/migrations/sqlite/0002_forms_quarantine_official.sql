-- v2: published forms, each record's form check, revocation's quarantine
-- and the imported official results.
CREATE TABLE forms (
    id           TEXT NOT NULL,
    version      INTEGER NOT NULL,
    definition   TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    PRIMARY KEY (id, version)
) WITHOUT ROWID;
ALTER TABLE records ADD COLUMN form_clean INTEGER;
ALTER TABLE records ADD COLUMN form_check TEXT;
CREATE INDEX records_by_kind ON records(kind, log_index);
ALTER TABLE devices ADD COLUMN revoked_after_seq INTEGER;
CREATE TABLE quarantine (
    id          BLOB PRIMARY KEY,
    device      TEXT NOT NULL REFERENCES devices(id),
    seq         INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    body        BLOB NOT NULL,
    sig         BLOB NOT NULL
);
CREATE TABLE official (
    station     TEXT PRIMARY KEY,
    region      TEXT,
    figures     TEXT NOT NULL,
    imported_at INTEGER NOT NULL
) WITHOUT ROWID;

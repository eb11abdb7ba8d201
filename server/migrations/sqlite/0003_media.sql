-- v3: which media each record references (filled at ingest, and here
-- from the bodies already held), and which media arrived complete.
CREATE TABLE attachments (
    record_id BLOB NOT NULL REFERENCES records(id),
    sha256    TEXT NOT NULL,
    bytes     INTEGER NOT NULL,
    PRIMARY KEY (record_id, sha256)
) WITHOUT ROWID;
CREATE INDEX attachments_by_sha256 ON attachments(sha256);
INSERT OR IGNORE INTO attachments (record_id, sha256, bytes)
    SELECT r.id, json_extract(a.value, '$.sha256'), json_extract(a.value, '$.bytes')
    FROM records r, json_each(CAST(r.body AS TEXT), '$.attachments') a;
CREATE TABLE media (
    sha256       TEXT PRIMARY KEY,
    bytes        INTEGER NOT NULL,
    completed_at INTEGER NOT NULL
) WITHOUT ROWID;

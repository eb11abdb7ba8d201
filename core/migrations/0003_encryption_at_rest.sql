-- v3: encryption at rest. What says what was observed (the signed body,
-- its signature and id, the kind, receipts, rejection reasons) moves
-- into `content`, sealed under the data key; rows are found by `tag`,
-- an HMAC of the id. Station and capture time stay readable for
-- queries. `for_org` holds the copy sealed to the organisation (HPKE)
-- for forms it seals. The v2 tables are renamed, not converted here:
-- sealing needs the data key, so `Store::open` converts their rows in
-- one transaction and drops them (see `legacy.rs`).
DROP INDEX records_by_state;
DROP INDEX records_by_station;
DROP INDEX records_by_kind;
DROP INDEX records_by_time;
ALTER TABLE records RENAME TO plain_records;
ALTER TABLE receipts RENAME TO plain_receipts;
CREATE TABLE receipts (
    id          INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    content     BLOB NOT NULL
);
CREATE TABLE records (
    seq         INTEGER PRIMARY KEY,
    tag         BLOB NOT NULL UNIQUE CHECK (length(tag) = 32),
    content     BLOB NOT NULL,
    for_org     BLOB,
    station     TEXT NOT NULL,
    captured_at INTEGER NOT NULL,
    state       INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2, 3)),
    receipt     INTEGER REFERENCES receipts(id),
    rejection   BLOB,
    CHECK ((state IN (2, 3)) = (receipt IS NOT NULL)),
    CHECK ((state = 3) = (rejection IS NOT NULL))
);
CREATE INDEX records_by_state ON records(state, seq);
CREATE INDEX records_by_station ON records(station, seq);
CREATE INDEX records_by_time ON records(captured_at);

-- v2: form definitions published by the coordinator, every version kept
-- (a record names the version it was filled against).
CREATE TABLE forms (
    id          TEXT NOT NULL,
    version     INTEGER NOT NULL,
    definition  TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (id, version)
) WITHOUT ROWID;

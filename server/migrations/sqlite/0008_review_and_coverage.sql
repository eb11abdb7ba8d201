-- v8: the verification workflow and coverage (server/src/review.rs,
-- server/src/triage.rs). A record's category, priority, phase and the
-- record it corrects are derived once, at arrival, from its signed body;
-- `review` is the state its newest decision left it in, kept beside the
-- record so that the queue is one walk of an index. The signed bytes are
-- never edited: every decision stays in `reviews`. A verifier's hold on a
-- record is a row of `claims` until it expires. `station_phases` says
-- which stations reported on which phase of the day, and since when,
-- so that coverage reads a row per station rather than every record.
-- Records stored before v8 have no category or phase (they were not
-- triaged when they arrived) and are reviewed as routine.
ALTER TABLE records ADD COLUMN category TEXT;
ALTER TABLE records ADD COLUMN priority INTEGER NOT NULL DEFAULT 2;
ALTER TABLE records ADD COLUMN phase TEXT;
ALTER TABLE records ADD COLUMN supersedes BLOB;
ALTER TABLE records ADD COLUMN review TEXT NOT NULL DEFAULT 'unreviewed';
CREATE INDEX records_queue ON records(review, priority, log_index);
-- A region's queue: its stations' records, without walking everyone's.
CREATE INDEX records_by_station_queue ON records(station, review, priority, log_index);
CREATE INDEX records_by_supersedes ON records(supersedes) WHERE supersedes IS NOT NULL;
CREATE INDEX records_by_category ON records(station, category, captured_at) WHERE category IS NOT NULL;
CREATE TABLE reviews (
    seq       INTEGER PRIMARY KEY,
    log_index INTEGER NOT NULL REFERENCES records(log_index),
    state     TEXT NOT NULL CHECK (state IN ('confirmed', 'rejected', 'needs_corroboration')),
    reviewer  TEXT NOT NULL,
    note      TEXT NOT NULL,
    at_ms     INTEGER NOT NULL
);
CREATE INDEX reviews_by_record ON reviews(log_index, seq);
CREATE TABLE claims (
    log_index INTEGER PRIMARY KEY REFERENCES records(log_index),
    account   TEXT NOT NULL,
    until_ms  INTEGER NOT NULL
);
CREATE TABLE station_phases (
    station        TEXT NOT NULL,
    phase          TEXT NOT NULL,
    first_captured INTEGER NOT NULL,
    first_received INTEGER NOT NULL,
    records        INTEGER NOT NULL,
    PRIMARY KEY (station, phase)
) WITHOUT ROWID;
-- Each device's records held and their highest seq, counted as they are
-- stored, so that coverage says how many records are known to exist but
-- never arrived without reading every device's chain.
ALTER TABLE devices ADD COLUMN held BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN max_seq BIGINT NOT NULL DEFAULT 0;
UPDATE devices SET
    held = (SELECT count(*) FROM records WHERE records.device = devices.id),
    max_seq = (SELECT coalesce(max(seq), 0) FROM records WHERE records.device = devices.id);

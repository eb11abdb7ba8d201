-- v5: the verification workflow and coverage, as SQLite's v8 (see
-- server/migrations/sqlite/0008_review_and_coverage.sql for why each
-- column and table is there).
ALTER TABLE records ADD COLUMN category TEXT;
ALTER TABLE records ADD COLUMN priority SMALLINT NOT NULL DEFAULT 2;
ALTER TABLE records ADD COLUMN phase TEXT;
ALTER TABLE records ADD COLUMN supersedes BYTEA;
ALTER TABLE records ADD COLUMN review TEXT NOT NULL DEFAULT 'unreviewed';
CREATE INDEX records_queue ON records(review, priority, log_index);
-- A region's queue: its stations' records, without walking everyone's.
CREATE INDEX records_by_station_queue ON records(station, review, priority, log_index);
CREATE INDEX records_by_supersedes ON records(supersedes) WHERE supersedes IS NOT NULL;
CREATE INDEX records_by_category ON records(station, category, captured_at) WHERE category IS NOT NULL;
CREATE TABLE reviews (
    seq       BIGSERIAL PRIMARY KEY,
    log_index BIGINT NOT NULL REFERENCES records(log_index),
    state     TEXT NOT NULL CHECK (state IN ('confirmed', 'rejected', 'needs_corroboration')),
    reviewer  TEXT NOT NULL,
    note      TEXT NOT NULL,
    at_ms     BIGINT NOT NULL
);
CREATE INDEX reviews_by_record ON reviews(log_index, seq);
CREATE TABLE claims (
    log_index BIGINT PRIMARY KEY REFERENCES records(log_index),
    account   TEXT NOT NULL,
    until_ms  BIGINT NOT NULL
);
CREATE TABLE station_phases (
    station        TEXT NOT NULL,
    phase          TEXT NOT NULL,
    first_captured BIGINT NOT NULL,
    first_received BIGINT NOT NULL,
    records        BIGINT NOT NULL,
    PRIMARY KEY (station, phase)
);
-- Each device's records held and their highest seq, counted as they are
-- stored, so that coverage says how many records are known to exist but
-- never arrived without reading every device's chain.
ALTER TABLE devices ADD COLUMN held BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN max_seq BIGINT NOT NULL DEFAULT 0;
UPDATE devices SET
    held = (SELECT count(*) FROM records WHERE records.device = devices.id),
    max_seq = (SELECT coalesce(max(seq), 0) FROM records WHERE records.device = devices.id);

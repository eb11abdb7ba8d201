-- SMS reports: parts waiting for the rest of their message, and what
-- every received SMS came to (see the SQLite migration 0013).
CREATE TABLE sms_parts (
    sender      TEXT NOT NULL,
    message     TEXT NOT NULL,
    total       INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    data        TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (sender, message, total, idx)
);
CREATE TABLE sms_log (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    sender  TEXT NOT NULL,
    gateway TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail  TEXT NOT NULL
);

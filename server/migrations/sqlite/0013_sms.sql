-- v13: SMS reports. Parts wait in `sms_parts` until their message is
-- complete (or expires); `sms_log` keeps what every received SMS came to,
-- with the number it came from (never taken as identity: the signature is).
CREATE TABLE sms_parts (
    sender      TEXT NOT NULL,
    message     TEXT NOT NULL,
    total       INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    data        TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (sender, message, total, idx)
) WITHOUT ROWID;
CREATE TABLE sms_log (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    sender  TEXT NOT NULL,
    gateway TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail  TEXT NOT NULL
);

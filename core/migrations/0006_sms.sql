-- v6: which records this phone sent by SMS, and when: they stay pending
-- (only a receipt proves delivery) and the app shows "sent by SMS,
-- receipt awaited". Found by the record's tag, like `records`.
CREATE TABLE sms_sent (
    tag     BLOB PRIMARY KEY CHECK (length(tag) = 32),
    sent_at INTEGER NOT NULL
) WITHOUT ROWID;

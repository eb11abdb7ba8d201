-- v12: the receipts the coordinator signed, byte for byte, so that an
-- evidence package can show the receipt a record's clock.after names (the
-- record was made after it) and the one that acknowledged the record (it
-- was received no later). Written shortly after each receipt is sent, off
-- the sync's path (`server/src/receipts.rs`); `hash` is SHA-256 of `body`.
CREATE TABLE receipts (
    hash        BLOB PRIMARY KEY,
    device      TEXT NOT NULL,
    server_time INTEGER NOT NULL,
    body        BLOB NOT NULL,
    sig         BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX receipts_by_device ON receipts(device, server_time);

-- v12: the receipts the coordinator signed, byte for byte, so that an
-- evidence package can show the receipt a record's clock.after names (the
-- record was made after it) and the one that acknowledged the record (it
-- was received no later). Written shortly after each receipt is sent, off
-- the sync's path (`server/src/receipts.rs`), appended in rowid order
-- with no other index: a key in a random order (a hash, a device) would
-- make every archived receipt dirty a page of its own on election night,
-- while an export, which is rare, can afford to read the table through.
CREATE TABLE receipts (
    n           INTEGER PRIMARY KEY,
    device      TEXT NOT NULL,
    server_time INTEGER NOT NULL,
    body        BLOB NOT NULL,
    sig         BLOB NOT NULL
);

-- v4: evidence media. Each file is stored once, encrypted in chunks
-- under the data key in `media/`, named by a random id; the row is
-- found by an HMAC of the file's SHA-256 and seals the hash, size, id
-- and MIME type. `bytes` stays readable (the file's size on disk tells
-- it anyway) so uploads can go smallest first.
CREATE TABLE media (
    tag         BLOB PRIMARY KEY CHECK (length(tag) = 32),
    content     BLOB NOT NULL,
    bytes       INTEGER NOT NULL,
    imported_at INTEGER NOT NULL,
    delivered   INTEGER NOT NULL DEFAULT 0 CHECK (delivered IN (0, 1))
) WITHOUT ROWID;

-- v5: the relay outbox. Other phones' records this phone carries for them
-- (relay bundles): sealed to the organisation by their own device, never
-- part of this device's chain, delivered to `/v1/sealed` and deleted once a
-- verified receipt settles them. `tag` (an HMAC of device and seq under
-- the data key) makes an import idempotent without leaving the device
-- readable; `content` is the sealed record with its label, encrypted again
-- under the data key.
CREATE TABLE relay (
    id          INTEGER PRIMARY KEY,
    tag         BLOB NOT NULL UNIQUE CHECK (length(tag) = 32),
    content     BLOB NOT NULL,
    imported_at INTEGER NOT NULL
);

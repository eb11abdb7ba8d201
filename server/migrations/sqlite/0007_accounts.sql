-- v7: coordinator accounts and their sessions (server/src/accounts.rs).
-- A session row holds the SHA-256 digest of its token, never the token.
CREATE TABLE accounts (
    name           TEXT PRIMARY KEY,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'supervisor', 'verifier', 'analyst')),
    password_hash  TEXT NOT NULL,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at_ms  INTEGER NOT NULL,
    failed_logins  INTEGER NOT NULL DEFAULT 0,
    last_failed_ms INTEGER,
    last_login_ms  INTEGER
);

CREATE TABLE sessions (
    digest        TEXT PRIMARY KEY,
    account       TEXT NOT NULL REFERENCES accounts (name),
    created_at_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL
);

CREATE INDEX sessions_by_account ON sessions (account);

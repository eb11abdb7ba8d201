-- v4: coordinator accounts and their sessions (server/src/accounts.rs).
-- A session row holds the SHA-256 digest of its token, never the token.
CREATE TABLE accounts (
    name           TEXT PRIMARY KEY,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'supervisor', 'verifier', 'analyst')),
    password_hash  TEXT NOT NULL,
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_ms  BIGINT NOT NULL,
    failed_logins  INTEGER NOT NULL DEFAULT 0,
    last_failed_ms BIGINT,
    last_login_ms  BIGINT
);

CREATE TABLE sessions (
    digest        TEXT PRIMARY KEY,
    account       TEXT NOT NULL REFERENCES accounts (name),
    created_at_ms BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL
);

CREATE INDEX sessions_by_account ON sessions (account);

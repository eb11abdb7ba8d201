-- v9: regional coordinators and a second factor (server/src/accounts.rs).
-- `region` NULL: the account works on the whole country; otherwise only on
-- that registry region's stations, their devices and records. An admin is
-- always national; a coordinator (an admin of one region) always has one.
-- `totp_sealed`: the account's TOTP key sealed to the organisation's key
-- (observer_core::seal::seal_secret), never plain beside the data;
-- `totp_last_step`: the last time step a code was accepted for, so that a
-- code is used once.
-- SQLite cannot change a CHECK in place, so the table is rebuilt; every
-- session ends with the upgrade (coordinators sign in again).
DELETE FROM sessions;

CREATE TABLE accounts_v9 (
    name           TEXT PRIMARY KEY,
    role           TEXT NOT NULL
                   CHECK (role IN ('admin', 'coordinator', 'supervisor', 'verifier', 'analyst')),
    password_hash  TEXT NOT NULL,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at_ms  INTEGER NOT NULL,
    failed_logins  INTEGER NOT NULL DEFAULT 0,
    last_failed_ms INTEGER,
    last_login_ms  INTEGER,
    region         TEXT,
    totp_sealed    BLOB,
    totp_last_step INTEGER,
    CHECK (role <> 'admin' OR region IS NULL),
    CHECK (role <> 'coordinator' OR region IS NOT NULL)
);

INSERT INTO accounts_v9 (name, role, password_hash, disabled, created_at_ms,
                         failed_logins, last_failed_ms, last_login_ms)
SELECT name, role, password_hash, disabled, created_at_ms,
       failed_logins, last_failed_ms, last_login_ms
FROM accounts;

DROP TABLE accounts;
ALTER TABLE accounts_v9 RENAME TO accounts;
CREATE INDEX accounts_by_region ON accounts (region);

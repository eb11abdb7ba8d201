-- v6: regional coordinators and a second factor (server/src/accounts.rs).
-- `region` NULL: the account works on the whole country; otherwise only on
-- that registry region's stations, their devices and records. An admin is
-- always national; a coordinator (an admin of one region) always has one.
-- `totp_sealed`: the account's TOTP key sealed to the organisation's key
-- (observer_core::seal::seal_secret), never plain beside the data;
-- `totp_last_step`: the last time step a code was accepted for, so that a
-- code is used once.
ALTER TABLE accounts DROP CONSTRAINT accounts_role_check;
ALTER TABLE accounts ADD COLUMN region TEXT;
ALTER TABLE accounts ADD COLUMN totp_sealed BYTEA;
ALTER TABLE accounts ADD COLUMN totp_last_step BIGINT;
ALTER TABLE accounts ADD CONSTRAINT accounts_role_check
    CHECK (role IN ('admin', 'coordinator', 'supervisor', 'verifier', 'analyst'));
ALTER TABLE accounts ADD CONSTRAINT accounts_admin_is_national CHECK (role <> 'admin' OR region IS NULL);
ALTER TABLE accounts ADD CONSTRAINT accounts_coordinator_has_region
    CHECK (role <> 'coordinator' OR region IS NOT NULL);
CREATE INDEX accounts_by_region ON accounts (region);

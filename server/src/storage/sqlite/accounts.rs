//! [`AccountStore`] on SQLite.

use observer_core::record::Sha256Digest;
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::SqliteStorage;
use crate::storage::StorageError;
use crate::storage::accounts::{Account, AccountStore, Session, digest, expiry_bounds, role};

const ACCOUNT_COLUMNS: &str = "name, role, password_hash, disabled, created_at_ms, \
     failed_logins, last_failed_ms, last_login_ms, region, totp_sealed, totp_last_step";

fn account_row(r: &Row<'_>) -> rusqlite::Result<(Account, String)> {
    let role_text: String = r.get(1)?;
    Ok((
        Account {
            name: r.get(0)?,
            // Replaced below, once the role's text is checked.
            role: crate::accounts::Role::Analyst,
            password_hash: r.get(2)?,
            disabled: r.get(3)?,
            created_at_ms: r.get(4)?,
            failed_logins: r.get(5)?,
            last_failed_ms: r.get(6)?,
            last_login_ms: r.get(7)?,
            region: r.get(8)?,
            totp_sealed: r.get(9)?,
            totp_last_step: r.get(10)?,
        },
        role_text,
    ))
}

fn checked((mut account, role_text): (Account, String)) -> Result<Account, StorageError> {
    account.role = role(&role_text)?;
    Ok(account)
}

impl AccountStore for SqliteStorage {
    fn add_account(&self, a: &Account) -> Result<bool, StorageError> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO accounts (name, role, password_hash, disabled, created_at_ms,
                                             region, totp_sealed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                a.name,
                a.role.as_str(),
                a.password_hash,
                a.disabled,
                a.created_at_ms,
                a.region,
                a.totp_sealed
            ],
        )?;
        Ok(n == 1)
    }

    fn account(&self, name: &str) -> Result<Option<Account>, StorageError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = ?1"
        ))?;
        stmt.query_row([name], account_row)
            .optional()?
            .map(checked)
            .transpose()
    }

    fn accounts(&self) -> Result<Vec<Account>, StorageError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY name"
        ))?;
        let rows = stmt.query_map([], account_row)?;
        rows.map(|r| checked(r?)).collect()
    }

    fn set_password(&self, name: &str, password_hash: &str) -> Result<bool, StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE accounts SET password_hash = ?2, failed_logins = 0 WHERE name = ?1",
            params![name, password_hash],
        )?;
        tx.execute("DELETE FROM sessions WHERE account = ?1", [name])?;
        tx.commit()?;
        Ok(n == 1)
    }

    fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, StorageError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "UPDATE accounts SET disabled = ?2 WHERE name = ?1",
            params![name, disabled],
        )?;
        if disabled {
            tx.execute("DELETE FROM sessions WHERE account = ?1", [name])?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    fn set_totp(&self, name: &str, sealed: Option<&[u8]>) -> Result<bool, StorageError> {
        let n = self.conn().execute(
            "UPDATE accounts SET totp_sealed = ?2, totp_last_step = NULL WHERE name = ?1",
            params![name, sealed],
        )?;
        Ok(n == 1)
    }

    fn use_totp_step(&self, name: &str, step: i64) -> Result<bool, StorageError> {
        let n = self.conn().execute(
            "UPDATE accounts SET totp_last_step = ?2
             WHERE name = ?1 AND (totp_last_step IS NULL OR totp_last_step < ?2)",
            params![name, step],
        )?;
        Ok(n == 1)
    }

    fn note_login(&self, name: &str, succeeded: bool, now_ms: i64) -> Result<(), StorageError> {
        let sql = if succeeded {
            "UPDATE accounts SET failed_logins = 0, last_login_ms = ?2 WHERE name = ?1"
        } else {
            "UPDATE accounts SET failed_logins = failed_logins + 1, last_failed_ms = ?2 WHERE name = ?1"
        };
        self.conn().execute(sql, params![name, now_ms])?;
        Ok(())
    }

    fn create_session(&self, s: &Session, now_ms: i64) -> Result<(), StorageError> {
        let (created, seen) = expiry_bounds(now_ms);
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM sessions WHERE created_at_ms <= ?1 OR last_seen_ms <= ?2",
            params![created, seen],
        )?;
        tx.execute(
            "INSERT INTO sessions (digest, account, created_at_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?4)",
            params![s.digest.to_string(), s.account, s.created_at_ms, s.last_seen_ms],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn session(&self, d: &Sha256Digest) -> Result<Option<Session>, StorageError> {
        let conn = self.read()?;
        let mut stmt = conn.prepare_cached(
            "SELECT digest, account, created_at_ms, last_seen_ms FROM sessions WHERE digest = ?1",
        )?;
        let row = stmt
            .query_row([d.to_string()], |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        row.map(|(d, account, created_at_ms, last_seen_ms)| {
            Ok(Session {
                digest: digest(&d)?,
                account,
                created_at_ms,
                last_seen_ms,
            })
        })
        .transpose()
    }

    fn touch_session(&self, d: &Sha256Digest, now_ms: i64) -> Result<(), StorageError> {
        self.conn().execute(
            "UPDATE sessions SET last_seen_ms = max(last_seen_ms, ?2) WHERE digest = ?1",
            params![d.to_string(), now_ms],
        )?;
        Ok(())
    }

    fn end_session(&self, d: &Sha256Digest) -> Result<(), StorageError> {
        self.conn()
            .execute("DELETE FROM sessions WHERE digest = ?1", [d.to_string()])?;
        Ok(())
    }
}

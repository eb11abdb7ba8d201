//! [`AccountStore`] on PostgreSQL.

use observer_core::record::Sha256Digest;
use postgres::Row;

use super::PostgresStorage;
use crate::storage::StorageError;
use crate::storage::accounts::{Account, AccountStore, Session, digest, expiry_bounds, role};

const ACCOUNT_COLUMNS: &str = "name, role, password_hash, disabled, created_at_ms, \
     failed_logins, last_failed_ms, last_login_ms, region, totp_sealed, totp_last_step";

fn account_row(r: &Row) -> Result<Account, StorageError> {
    Ok(Account {
        name: r.try_get(0)?,
        role: role(r.try_get(1)?)?,
        password_hash: r.try_get(2)?,
        disabled: r.try_get(3)?,
        created_at_ms: r.try_get(4)?,
        failed_logins: r.try_get::<_, i32>(5)?.max(0) as u32,
        last_failed_ms: r.try_get(6)?,
        last_login_ms: r.try_get(7)?,
        region: r.try_get(8)?,
        totp_sealed: r.try_get(9)?,
        totp_last_step: r.try_get(10)?,
    })
}

impl AccountStore for PostgresStorage {
    fn add_account(&self, a: &Account) -> Result<bool, StorageError> {
        let n = self.conn()?.execute(
            "INSERT INTO accounts (name, role, password_hash, disabled, created_at_ms,
                                   region, totp_sealed)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
            &[
                &a.name,
                &a.role.as_str(),
                &a.password_hash,
                &a.disabled,
                &a.created_at_ms,
                &a.region,
                &a.totp_sealed,
            ],
        )?;
        Ok(n == 1)
    }

    fn account(&self, name: &str) -> Result<Option<Account>, StorageError> {
        self.conn()?
            .query_opt(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = $1"),
                &[&name],
            )?
            .as_ref()
            .map(account_row)
            .transpose()
    }

    fn accounts(&self) -> Result<Vec<Account>, StorageError> {
        self.conn()?
            .query(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY name"),
                &[],
            )?
            .iter()
            .map(account_row)
            .collect()
    }

    fn set_password(&self, name: &str, password_hash: &str) -> Result<bool, StorageError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE accounts SET password_hash = $2, failed_logins = 0 WHERE name = $1",
            &[&name, &password_hash],
        )?;
        tx.execute("DELETE FROM sessions WHERE account = $1", &[&name])?;
        tx.commit()?;
        Ok(n == 1)
    }

    fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, StorageError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE accounts SET disabled = $2 WHERE name = $1",
            &[&name, &disabled],
        )?;
        if disabled {
            tx.execute("DELETE FROM sessions WHERE account = $1", &[&name])?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    fn set_totp(&self, name: &str, sealed: Option<&[u8]>) -> Result<bool, StorageError> {
        let n = self.conn()?.execute(
            "UPDATE accounts SET totp_sealed = $2, totp_last_step = NULL WHERE name = $1",
            &[&name, &sealed],
        )?;
        Ok(n == 1)
    }

    fn use_totp_step(&self, name: &str, step: i64) -> Result<bool, StorageError> {
        let n = self.conn()?.execute(
            "UPDATE accounts SET totp_last_step = $2
             WHERE name = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
            &[&name, &step],
        )?;
        Ok(n == 1)
    }

    fn note_login(&self, name: &str, succeeded: bool, now_ms: i64) -> Result<(), StorageError> {
        let sql = if succeeded {
            "UPDATE accounts SET failed_logins = 0, last_login_ms = $2 WHERE name = $1"
        } else {
            "UPDATE accounts SET failed_logins = failed_logins + 1, last_failed_ms = $2 WHERE name = $1"
        };
        self.conn()?.execute(sql, &[&name, &now_ms])?;
        Ok(())
    }

    fn create_session(&self, s: &Session, now_ms: i64) -> Result<(), StorageError> {
        let (created, seen) = expiry_bounds(now_ms);
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM sessions WHERE created_at_ms <= $1 OR last_seen_ms <= $2",
            &[&created, &seen],
        )?;
        tx.execute(
            "INSERT INTO sessions (digest, account, created_at_ms, last_seen_ms) VALUES ($1, $2, $3, $4)",
            &[&s.digest.to_string(), &s.account, &s.created_at_ms, &s.last_seen_ms],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn session(&self, d: &Sha256Digest) -> Result<Option<Session>, StorageError> {
        self.conn()?
            .query_opt(
                "SELECT digest, account, created_at_ms, last_seen_ms FROM sessions WHERE digest = $1",
                &[&d.to_string()],
            )?
            .map(|r| {
                Ok(Session {
                    digest: digest(r.try_get(0)?)?,
                    account: r.try_get(1)?,
                    created_at_ms: r.try_get(2)?,
                    last_seen_ms: r.try_get(3)?,
                })
            })
            .transpose()
    }

    fn touch_session(&self, d: &Sha256Digest, now_ms: i64) -> Result<(), StorageError> {
        self.conn()?.execute(
            "UPDATE sessions SET last_seen_ms = greatest(last_seen_ms, $2) WHERE digest = $1",
            &[&d.to_string(), &now_ms],
        )?;
        Ok(())
    }

    fn end_session(&self, d: &Sha256Digest) -> Result<(), StorageError> {
        self.conn()?
            .execute("DELETE FROM sessions WHERE digest = $1", &[&d.to_string()])?;
        Ok(())
    }
}

//! The phone store's SQLite schema and the migration runner (shared with
//! the server), driven by `PRAGMA user_version`.
//!
//! Each entry of [`MIGRATIONS`] (a numbered file in `core/migrations/`)
//! moves the schema one version up and runs in
//! its own transaction together with the `user_version` bump, so a crash
//! mid-migration leaves the previous version intact. Entries are never
//! edited once released: a change is a new entry.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Migrations in order; `MIGRATIONS[i]` takes version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_outbox.sql"),
    include_str!("../../migrations/0002_forms.sql"),
    include_str!("../../migrations/0003_encryption_at_rest.sql"),
    include_str!("../../migrations/0004_media.sql"),
    include_str!("../../migrations/0005_relay.sql"),
    include_str!("../../migrations/0006_sms.sql"),
];

/// The schema version this code writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The schema version recorded in the database.
pub fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Brings the schema to [`SCHEMA_VERSION`]; refuses a newer one.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_to(conn, MIGRATIONS, SCHEMA_VERSION)
}

/// Brings a database whose schema is defined by `migrations` (entry `i`
/// takes version `i` to `i + 1`) to version `target`, refusing a database
/// newer than `migrations` knows. Shared by the phone's store and the
/// server's, so both migrate the same way.
pub fn migrate_to(
    conn: &mut Connection,
    migrations: &[&str],
    target: u32,
) -> Result<(), StoreError> {
    let latest = migrations.len() as u32;
    let found = user_version(conn)?;
    if found > latest {
        tracing::error!(
            found,
            supported = latest,
            "the database is from a newer version; left untouched"
        );
        return Err(StoreError::TooNew {
            found,
            supported: latest,
        });
    }
    for v in found..target.min(latest) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        if user_version(&tx)? != v {
            continue;
        }
        tx.execute_batch(migrations[v as usize])?;
        tx.pragma_update(None, "user_version", v + 1)?;
        tx.commit()?;
        tracing::info!(from = v, to = v + 1, "schema migrated");
    }
    Ok(())
}

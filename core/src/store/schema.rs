//! The phone store's SQLite schema and the migration runner (shared with
//! the server), driven by `PRAGMA user_version`.
//!
//! Each entry of [`MIGRATIONS`] moves the schema one version up and runs in
//! its own transaction together with the `user_version` bump, so a crash
//! mid-migration leaves the previous version intact. Entries are never
//! edited once released: a change is a new entry.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Migrations in order; `MIGRATIONS[i]` takes version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // v1: records keyed by their chain position, the outbox state beside
    // each record (pending, in flight, delivered, rejected), the receipts
    // that proved delivery or rejection, and key/value metadata (wrapped
    // device key, chain head, enrollment, server clock).
    "CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE receipts (
        id          INTEGER PRIMARY KEY,
        received_at INTEGER NOT NULL,
        bytes       BLOB NOT NULL
    );
    CREATE TABLE records (
        seq         INTEGER PRIMARY KEY,
        id          BLOB NOT NULL UNIQUE CHECK (length(id) = 32),
        body        BLOB NOT NULL,
        sig         BLOB NOT NULL CHECK (length(sig) = 64),
        station     TEXT NOT NULL,
        kind        TEXT NOT NULL,
        captured_at INTEGER NOT NULL,
        state       INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2, 3)),
        receipt     INTEGER REFERENCES receipts(id),
        rejection   TEXT,
        CHECK ((state IN (2, 3)) = (receipt IS NOT NULL)),
        CHECK ((state = 3) = (rejection IS NOT NULL))
    );
    CREATE INDEX records_by_state ON records(state, seq);
    CREATE INDEX records_by_station ON records(station, seq);
    CREATE INDEX records_by_kind ON records(kind, seq);
    CREATE INDEX records_by_time ON records(captured_at);",
    // v2: form definitions published by the coordinator, every version kept
    // (a record names the version it was filled against).
    "CREATE TABLE forms (
        id          TEXT NOT NULL,
        version     INTEGER NOT NULL,
        definition  TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (id, version)
    ) WITHOUT ROWID;",
    // v3: encryption at rest. What says what was observed (the signed body,
    // its signature and id, the kind, receipts, rejection reasons) moves
    // into `content`, sealed under the data key; rows are found by `tag`,
    // an HMAC of the id. Station and capture time stay readable for
    // queries. `for_org` holds the copy sealed to the organisation (HPKE)
    // for forms it seals. The v2 tables are renamed, not converted here:
    // sealing needs the data key, so `Store::open` converts their rows in
    // one transaction and drops them (see `legacy.rs`).
    "DROP INDEX records_by_state;
    DROP INDEX records_by_station;
    DROP INDEX records_by_kind;
    DROP INDEX records_by_time;
    ALTER TABLE records RENAME TO plain_records;
    ALTER TABLE receipts RENAME TO plain_receipts;
    CREATE TABLE receipts (
        id          INTEGER PRIMARY KEY,
        received_at INTEGER NOT NULL,
        content     BLOB NOT NULL
    );
    CREATE TABLE records (
        seq         INTEGER PRIMARY KEY,
        tag         BLOB NOT NULL UNIQUE CHECK (length(tag) = 32),
        content     BLOB NOT NULL,
        for_org     BLOB,
        station     TEXT NOT NULL,
        captured_at INTEGER NOT NULL,
        state       INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2, 3)),
        receipt     INTEGER REFERENCES receipts(id),
        rejection   BLOB,
        CHECK ((state IN (2, 3)) = (receipt IS NOT NULL)),
        CHECK ((state = 3) = (rejection IS NOT NULL))
    );
    CREATE INDEX records_by_state ON records(state, seq);
    CREATE INDEX records_by_station ON records(station, seq);
    CREATE INDEX records_by_time ON records(captured_at);",
    // v4: evidence media. Each file is stored once, encrypted in chunks
    // under the data key in `media/`, named by a random id; the row is
    // found by an HMAC of the file's SHA-256 and seals the hash, size, id
    // and MIME type. `bytes` stays readable (the file's size on disk tells
    // it anyway) so uploads can go smallest first.
    "CREATE TABLE media (
        tag         BLOB PRIMARY KEY CHECK (length(tag) = 32),
        content     BLOB NOT NULL,
        bytes       INTEGER NOT NULL,
        imported_at INTEGER NOT NULL,
        delivered   INTEGER NOT NULL DEFAULT 0 CHECK (delivered IN (0, 1))
    ) WITHOUT ROWID;",
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
    }
    Ok(())
}

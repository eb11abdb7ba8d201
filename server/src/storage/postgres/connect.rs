//! Reaching PostgreSQL: the URL an operator writes, TLS when it asks for
//! it, the pool, the typed errors, and the schema's version discipline.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::pool::{Manager, Pool};

use crate::storage::StorageError;

/// The migrations, in order; `observer_schema.version` says how many ran.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_schema.sql"),
    include_str!("../../../migrations/postgres/0002_station_registry.sql"),
    include_str!("../../../migrations/postgres/0003_audit_log.sql"),
    include_str!("../../../migrations/postgres/0004_accounts.sql"),
    include_str!("../../../migrations/postgres/0005_review_and_coverage.sql"),
    include_str!("../../../migrations/postgres/0006_account_region_and_totp.sql"),
    include_str!("../../../migrations/postgres/0007_official_versions.sql"),
    include_str!("../../../migrations/postgres/0008_log_nodes.sql"),
    include_str!("../../../migrations/postgres/0009_receipts.sql"),
    include_str!("../../../migrations/postgres/0010_sms.sql"),
];

/// An arbitrary but fixed key for `pg_advisory_xact_lock`: nodes that
/// start at the same moment migrate one after another.
const MIGRATION_LOCK: i64 = 0x4f62_7365_7276_6572; // "Observer"

/// Connections per node. A batch holds one for its transaction; 16 per
/// node leaves room for several nodes under PostgreSQL's default
/// `max_connections = 100`.
const POOL_SIZE: u32 = 16;

/// How long a request waits for a connection before it is answered
/// "unavailable, retry" (a PostgreSQL restart lasts about this long).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings every connection runs with: a receipt is signed only for a
/// durable commit (`synchronous_commit` cannot be turned off under us); a
/// lock wait or an abandoned transaction never holds the log's head for
/// long (a node that dies mid-batch loses its connection and PostgreSQL
/// rolls its transaction back). Prepared statements are planned for their
/// parameters each time: the tables start empty on election morning, and a
/// generic plan made then (a scan: the table was tiny) would stay while
/// they grow, each lookup getting slower with every record held.
const SESSION_OPTIONS: &str = "-c synchronous_commit=on -c lock_timeout=5000 \
     -c idle_in_transaction_session_timeout=10000 -c statement_timeout=60000 \
     -c plan_cache_mode=force_custom_plan";

/// A PostgreSQL database as an operator names it:
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=require&sslrootcert=CA.pem]`.
#[derive(Clone)]
pub struct DatabaseUrl {
    config: postgres::Config,
    /// The CA that signed the database's certificate; TLS is used exactly
    /// when one is given.
    root_cert: Option<PathBuf>,
    /// The URL without its password: safe to log and to write to disk.
    redacted: String,
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

/// Why a database URL cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("the database URL {url}: {problem}")]
pub struct UrlError {
    url: String,
    problem: String,
}

impl DatabaseUrl {
    /// Parses a `postgres://` or `postgresql://` URL. `sslmode=require`
    /// (or `verify-full`) needs `sslrootcert`: the certificate is always
    /// checked, chain and host name, against that CA and no other (never
    /// the system's store).
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let redacted = redact(url);
        let fail = |problem: String| UrlError {
            url: redacted.clone(),
            problem,
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(fail(
                "write it as postgres://USER@HOST:PORT/DATABASE".into(),
            ));
        }
        // sslrootcert and the verify modes are libpq's; tokio-postgres does
        // not know them, so they are taken out before it parses the rest.
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut root_cert = None;
        let mut require = false;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sslrootcert" => root_cert = Some(PathBuf::from(v)),
                "sslmode" => match v {
                    "disable" | "prefer" => {}
                    "require" | "verify-ca" | "verify-full" => require = true,
                    other => {
                        return Err(fail(format!(
                            "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
                        )));
                    }
                },
                _ => kept.push(pair),
            }
        }
        if require && root_cert.is_none() {
            return Err(fail(
                "sslmode=require needs sslrootcert=FILE, the CA (PEM) that signed the database's certificate".into(),
            ));
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut config: postgres::Config = rest.parse().map_err(|e| fail(format!("{e}")))?;
        config.ssl_mode(if root_cert.is_some() {
            postgres::config::SslMode::Require
        } else {
            postgres::config::SslMode::Disable
        });
        let options = match config.get_options() {
            Some(o) if !o.is_empty() => format!("{o} {SESSION_OPTIONS}"),
            _ => SESSION_OPTIONS.to_string(),
        };
        config.options(&options);
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("observer-server");
        Ok(Self {
            config,
            root_cert,
            redacted,
        })
    }

    /// The URL without its password.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    fn tls(&self) -> Result<MakeRustlsConnect, StorageError> {
        use rustls::pki_types::{CertificateDer, pem::PemObject as _};
        let mut roots = rustls::RootCertStore::empty();
        if let Some(path) = &self.root_cert {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    StorageError::Unavailable(format!("sslrootcert {}: {e}", path.display()))
                })?;
            for c in certs {
                roots.add(c).map_err(|e| {
                    StorageError::Unavailable(format!("sslrootcert {}: {e}", path.display()))
                })?;
            }
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| StorageError::Unavailable(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }

    /// Connects once (so that a wrong password or an unreachable host is
    /// named as such), migrates the schema, then opens the pool.
    pub(crate) fn open_pool(&self) -> Result<Pool, StorageError> {
        let tls = self.tls()?;
        let mut first = self
            .config
            .connect(tls.clone())
            .map_err(|e| connect_error(self, e))?;
        migrate(&mut first)?;
        drop(first);
        let manager = Manager {
            config: self.config.clone(),
            tls,
        };
        r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(CONNECT_TIMEOUT)
            .error_handler(Box::new(LogErrors))
            .build(manager)
            .map_err(|e| StorageError::Unavailable(format!("{}: {e}", self.redacted)))
    }
}

/// The pool's failures to reconnect go to the server's log.
#[derive(Debug)]
struct LogErrors;

impl r2d2::HandleError<postgres::Error> for LogErrors {
    fn handle_error(&self, error: postgres::Error) {
        tracing::warn!(cause = %error, "database connection failed");
    }
}

/// What a failed first connection means to the operator.
fn connect_error(url: &DatabaseUrl, e: postgres::Error) -> StorageError {
    let at = url.redacted();
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            return StorageError::Unavailable(format!(
                "the database at {at} refused the login: {} (check the user and password)",
                db.message()
            ));
        }
        if *code == SqlState::INVALID_CATALOG_NAME {
            return StorageError::Unavailable(format!(
                "{at}: {} (create it first: createdb)",
                db.message()
            ));
        }
    }
    let cause = std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
    StorageError::Unavailable(format!("cannot reach the database at {at}: {cause}"))
}

/// Creates or migrates the schema in one transaction (PostgreSQL's DDL is
/// transactional); a schema newer than this build is refused untouched.
fn migrate(client: &mut postgres::Client) -> Result<(), StorageError> {
    let latest = MIGRATIONS.len() as i32;
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS observer_schema (version INTEGER NOT NULL)")?;
    let found: i32 = tx
        .query_opt("SELECT version FROM observer_schema", &[])?
        .map_or(0, |r| r.get(0));
    if found > latest {
        tracing::error!(
            found,
            supported = latest,
            "the database is from a newer version; left untouched"
        );
        return Err(StorageError::TooNew {
            found: found as u32,
            supported: latest as u32,
        });
    }
    for v in found..latest {
        tx.batch_execute(MIGRATIONS[v as usize])?;
        tracing::info!(from = v, to = v + 1, "schema migrated");
    }
    if found < latest {
        tx.execute("DELETE FROM observer_schema", &[])?;
        tx.execute(
            "INSERT INTO observer_schema (version) VALUES ($1)",
            &[&latest],
        )?;
        let empty =
            serde_json::to_vec(&observer_core::merkle::Frontier::new()).expect("serialises");
        tx.execute(
            "INSERT INTO log_head (id, frontier) VALUES (1, $1) ON CONFLICT DO NOTHING",
            &[&empty],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// The URL with its password (if any) taken out.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".into();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

impl From<postgres::Error> for StorageError {
    fn from(e: postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            let message = db.message().to_string();
            return match code.code() {
                // integrity_constraint_violation
                c if c.starts_with("23") => StorageError::Constraint(message),
                // serialization failure, deadlock, lock timeout, too many
                // connections, statement timeout: try again
                "40001" | "40P01" | "55P03" | "53300" | "57014" => StorageError::Busy,
                "53100" => StorageError::DiskFull,
                // connection exceptions, shutdowns, "cannot connect now",
                // authentication, no such database
                c if c.starts_with("08") || c.starts_with("57P") || c.starts_with("28") => {
                    StorageError::Unavailable(message)
                }
                "3D000" => StorageError::Unavailable(message),
                "XX001" | "XX002" => StorageError::Corrupt(message),
                _ => StorageError::Database(format!("{message} ({})", code.code())),
            };
        }
        if e.is_closed() || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>())
        {
            return StorageError::Unavailable(e.to_string());
        }
        StorageError::Database(e.to_string())
    }
}

impl From<r2d2::Error> for StorageError {
    fn from(e: r2d2::Error) -> Self {
        StorageError::Unavailable(format!("no database connection: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_leave_the_url() {
        let u = DatabaseUrl::parse("postgres://observer:s3cret@db.example:5433/obs").unwrap();
        assert_eq!(u.redacted(), "postgres://observer@db.example:5433/obs");
        assert!(!format!("{u:?} {u}").contains("s3cret"));
        assert_eq!(redact("postgresql://a@h/d?x=1"), "postgresql://a@h/d?x=1");
    }

    #[test]
    fn tls_is_verified_against_the_named_ca_or_not_asked_for() {
        let e = DatabaseUrl::parse("postgres://o@h/d?sslmode=require")
            .err()
            .unwrap();
        assert!(e.to_string().contains("sslrootcert"), "{e}");
        let u =
            DatabaseUrl::parse("postgres://o@h/d?sslmode=verify-full&sslrootcert=/ca.pem").unwrap();
        assert_eq!(
            u.root_cert.as_deref(),
            Some(std::path::Path::new("/ca.pem"))
        );
        assert!(DatabaseUrl::parse("mysql://o@h/d").is_err());
        assert!(DatabaseUrl::parse("postgres://o@h/d?sslmode=maybe").is_err());
        assert!(DatabaseUrl::parse("postgres://o@h/d?nonsense=1").is_err());
    }
}

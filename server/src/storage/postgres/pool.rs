//! The connection pool: r2d2 over `postgres` clients, each connection with
//! the statements it has prepared. A batch runs a handful of statements;
//! prepared once per connection, each then costs one round trip instead of
//! two (parse, then execute).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio_postgres_rustls::MakeRustlsConnect;

/// How recently a connection must have come back to the pool whole for it
/// to be handed out again without a round trip to check it. On election
/// night every sync takes a connection at least twice (its device, its
/// group's commit); a check at each would add a round trip to each, and
/// a connection that answered half a second ago is alive unless the
/// database restarted in that half second, which fails the statements in
/// flight then anyway (the phone retries; nothing it was told is kept is
/// lost). HikariCP skips its check for the same window.
const TRUSTED_FOR: Duration = Duration::from_millis(500);

/// One pooled connection.
pub(crate) struct Connection {
    pub(crate) client: postgres::Client,
    statements: HashMap<&'static str, postgres::Statement>,
    /// When it last came back to the pool unbroken.
    returned: Option<Instant>,
}

impl Connection {
    /// `sql`, prepared on this connection the first time it is asked for.
    pub(crate) fn prepared(
        &mut self,
        sql: &'static str,
    ) -> Result<postgres::Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }
}

impl std::ops::Deref for Connection {
    type Target = postgres::Client;
    fn deref(&self) -> &postgres::Client {
        &self.client
    }
}

impl std::ops::DerefMut for Connection {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        &mut self.client
    }
}

/// Opens connections for r2d2.
pub(crate) struct Manager {
    pub(crate) config: postgres::Config,
    pub(crate) tls: MakeRustlsConnect,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Connection;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Connection, postgres::Error> {
        Ok(Connection {
            client: self.config.connect(self.tls.clone())?,
            statements: HashMap::new(),
            returned: None,
        })
    }

    /// Run as a connection is taken from the pool: one idle for longer
    /// than [`TRUSTED_FOR`] (after a PostgreSQL restart, say) is asked
    /// once, found dead here and replaced, not handed to a batch.
    fn is_valid(&self, c: &mut Connection) -> Result<(), postgres::Error> {
        if c.returned.is_some_and(|at| at.elapsed() < TRUSTED_FOR) {
            return Ok(());
        }
        c.client.simple_query("").map(|_| ())
    }

    /// Run as a connection comes back to the pool.
    fn has_broken(&self, c: &mut Connection) -> bool {
        let broken = c.client.is_closed();
        if !broken {
            c.returned = Some(Instant::now());
        }
        broken
    }
}

pub(crate) type Pool = r2d2::Pool<Manager>;

//! The connection pool: r2d2 over `postgres` clients, each connection with
//! the statements it has prepared. A batch runs a handful of statements;
//! prepared once per connection, each then costs one round trip instead of
//! two (parse, then execute).

use std::collections::HashMap;

use tokio_postgres_rustls::MakeRustlsConnect;

/// One pooled connection.
pub(crate) struct Connection {
    pub(crate) client: postgres::Client,
    statements: HashMap<&'static str, postgres::Statement>,
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
        })
    }

    /// Run as a connection is taken from the pool: one after a PostgreSQL
    /// restart is found dead here and replaced, not handed to a batch.
    fn is_valid(&self, c: &mut Connection) -> Result<(), postgres::Error> {
        c.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, c: &mut Connection) -> bool {
        c.client.is_closed()
    }
}

pub(crate) type Pool = r2d2::Pool<Manager>;

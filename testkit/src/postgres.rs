//! A private PostgreSQL cluster for one test: `initdb` and `pg_ctl` from
//! Debian's `postgresql` package, on a loopback port, in a temporary
//! directory, stopped (and removed) when dropped.
//!
//! PostgreSQL refuses to run as root, so as root the cluster belongs to
//! the unprivileged `postgres` user the package creates (`runuser`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

/// The superuser's password over TCP (local socket logins need none).
pub const PASSWORD: &str = "observer-test-password";

/// A running cluster whose superuser `observer` logs in over loopback TCP
/// with [`PASSWORD`] (SCRAM), as a deployment's server nodes would.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    next_db: std::sync::atomic::AtomicU32,
}

fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    found.retain(|p| p.join("initdb").exists());
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!("PostgreSQL is not installed: apt-get install postgresql (tests/run does it)")
    })
}

fn as_root() -> bool {
    rustix::process::geteuid().is_root()
}

impl PgCluster {
    /// Creates and starts a cluster; panics with the server's log if it
    /// does not start.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("observer-pg")
            .tempdir()
            .expect("a temporary directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let c = Self {
            dir,
            bin: bin_dir(),
            port,
            next_db: Default::default(),
        };
        if as_root() {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(c.dir.path())
                .status()
                .expect("chown");
            assert!(status.success());
        }
        let pwfile = c.dir.path().join("pwfile");
        std::fs::write(&pwfile, PASSWORD).expect("the password file");
        c.run(
            "initdb",
            &[
                "-D",
                &c.data().to_string_lossy(),
                "-U",
                "observer",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                &format!("--pwfile={}", pwfile.display()),
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        c.pg_ctl_start();
        c
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The cluster's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `tool` from PostgreSQL's bin directory, as the cluster's owner.
    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self
            .command(tool)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
            panic!(
                "{tool} {args:?} failed: {}{}\n{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200 {}",
            self.port,
            self.dir.path().display(),
            self.extra_options()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().to_string_lossy(),
                "-o",
                &options,
                "-l",
                &self.dir.path().join("log").to_string_lossy(),
                "-w",
                "start",
            ],
        );
    }

    /// Options from `DIR/extra_options` (TLS settings a test wrote), then
    /// from `OBSERVER_TEST_PG_OPTIONS` (`-c log_min_duration_statement=0`
    /// to see what a run asks of the database, say).
    fn extra_options(&self) -> String {
        let written =
            std::fs::read_to_string(self.dir.path().join("extra_options")).unwrap_or_default();
        let given = std::env::var("OBSERVER_TEST_PG_OPTIONS").unwrap_or_default();
        format!("{written} {given}")
    }

    /// Turns TLS on with this certificate and key (PEM) and refuses TCP
    /// logins without it (`hostssl` only), restarting.
    pub fn enable_tls(&self, cert_pem: &str, key_pem: &str) {
        let hba = self.data().join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
        let tls_only: String = rules
            .lines()
            .map(|l| match l.strip_prefix("host ") {
                Some(rest) => format!("hostssl {rest}\n"),
                None => format!("{l}\n"),
            })
            .collect();
        std::fs::write(&hba, tls_only).expect("pg_hba.conf");
        let (cert, key) = (
            self.dir.path().join("server.crt"),
            self.dir.path().join("server.key"),
        );
        std::fs::write(&cert, cert_pem).unwrap();
        std::fs::write(&key, key_pem).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        if as_root() {
            for f in [&cert, &key] {
                assert!(
                    Command::new("chown")
                        .arg("postgres:postgres")
                        .arg(f)
                        .status()
                        .unwrap()
                        .success()
                );
            }
        }
        std::fs::write(
            self.dir.path().join("extra_options"),
            format!(
                "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        self.restart();
    }

    /// Stops the server (fast: open transactions are rolled back).
    pub fn stop(&self) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().to_string_lossy(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
    }

    /// Starts it again after [`PgCluster::stop`].
    pub fn start_again(&self) {
        self.pg_ctl_start();
    }

    /// Stops and starts it: every connection is cut.
    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }

    /// Runs SQL as the superuser through `psql` (on the local socket).
    pub fn psql(&self, database: &str, sql: &str) -> String {
        self.try_psql(database, sql)
            .unwrap_or_else(|e| panic!("psql {sql}: {e}"))
    }

    /// [`PgCluster::psql`], its failure returned (while the server restarts).
    pub fn try_psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(self.bin.join("psql"))
            .arg("-h")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-U", "observer"])
            .args(["-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// A new, empty database; returns its name.
    pub fn create_database(&self) -> String {
        let n = self
            .next_db
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("observer_{n}");
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        name
    }

    /// A new, empty database; returns its URL (with the password).
    pub fn database(&self) -> String {
        let name = self.create_database();
        self.url(&name)
    }

    /// Drops the database at `url` (as [`PgCluster::database`] returned
    /// it), closing its connections: a benchmark's finished database is
    /// not read again, and the disk it holds is wanted.
    pub fn drop_database(&self, url: &str) -> Result<String, String> {
        let name = url.rsplit('/').next().unwrap_or_default();
        self.try_psql("postgres", &format!("DROP DATABASE {name} WITH (FORCE)"))
    }

    /// The URL of `database` for the superuser, with its password.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://observer:{PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

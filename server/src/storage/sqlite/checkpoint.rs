//! Copying the write-ahead log back into the database file off the
//! committing thread.
//!
//! SQLite checkpoints by default inside the commit that takes the log past
//! 1,000 pages: that commit writes every page again into the database file
//! and flushes it, on the one connection that commits. On election night
//! that connection is what limits twenty-record bursts (a fifth of its time
//! went to checkpoints), and every phone in the group waits for it. So a
//! thread of its own checkpoints (`PASSIVE`: it never blocks a commit or a
//! reader) every [`EVERY`], and the committing connection checkpoints only
//! if the log outgrows [`BACKSTOP_PAGES`] (the thread stalled, or readers
//! kept it from finishing). Durability does not move: a commit is durable
//! once the log is flushed (`synchronous = FULL`), before and after this.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::StorageError;

/// How often the log is copied back.
const EVERY: Duration = Duration::from_millis(200);

/// The log's size, in pages, at which the committing connection
/// checkpoints after all (64 MiB of 4 KiB pages).
pub(super) const BACKSTOP_PAGES: u32 = 16_384;

/// The checkpointing thread; stops (after one last checkpoint) when
/// dropped.
pub(super) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` (already in WAL mode).
    pub(super) fn start(path: &Path) -> Result<Self, StorageError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                loop {
                    let last = !matches!(
                        stopped.recv_timeout(EVERY),
                        Err(mpsc::RecvTimeoutError::Timeout)
                    );
                    if let Err(e) = checkpoint(&conn) {
                        tracing::warn!(cause = %e, "checkpointing the write-ahead log failed; the committing connection will when it grows");
                    }
                    if last {
                        break;
                    }
                }
            })
            .map_err(|e| StorageError::Unavailable(format!("the checkpointing thread: {e}")))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// Copies what it can of the log into the database file.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_copied_back_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let writer = Connection::open(&path).unwrap();
        observer_core::store::configure(&writer).unwrap();
        writer
            .pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)
            .unwrap();
        writer
            .execute_batch("CREATE TABLE t (x BLOB NOT NULL)")
            .unwrap();
        let _checkpointer = Checkpointer::start(&path).unwrap();
        // 300 commits of two or three pages each: past SQLite's own 1,000
        // pages, far below the backstop, so the writer never checkpoints.
        for _ in 0..300 {
            writer
                .execute("INSERT INTO t (x) VALUES (zeroblob(8000))", [])
                .unwrap();
        }
        // Only a checkpoint writes the database file; the thread does.
        let file = || std::fs::metadata(&path).unwrap().len();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while file() < 300 * 8000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the database file holds {} bytes",
                file()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

//! Issue 18's figures: the log's inclusion and consistency proofs at ten
//! million leaves, made from the stored nodes (`server/src/proofs.rs`) on
//! SQLite and PostgreSQL, beside the floor any database-backed proof
//! pays, one indexed read of one stored hash, and beside the hashing a
//! proof needs once its hashes are in memory. Also how long an existing
//! log takes to get its nodes written when it is first opened by this
//! version.
//!
//! The log is filled directly in the database (rows with random ids: the
//! proofs read ids and nodes, never bodies), its frontier computed from
//! those ids, and its nodes left to the storage's own fill at open.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use observer_core::merkle::{Frontier, NodeId, ProofPlan, leaf_hash};
use observer_core::record::Sha256Digest;
use observer_server::proofs;
use observer_server::storage::Storage;
use observer_server::storage::postgres::{DatabaseUrl, PostgresStorage};
use observer_server::storage::sqlite::SqliteStorage;
use observer_testkit::PgCluster;
use ring::rand::{SecureRandom as _, SystemRandom};

use crate::report::{Samples, machine, ms, us};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// One backend's figures.
struct Figures {
    fill: Duration,
    nodes_at_open: Duration,
    inclusion: Samples,
    consistency: Samples,
    most_hashes: usize,
    point_read: Samples,
    assemble: Samples,
}

fn random_below(rng: &SystemRandom, n: u64) -> u64 {
    let mut b = [0u8; 8];
    rng.fill(&mut b).expect("rng");
    u64::from_le_bytes(b) % n
}

/// How the log was made: filled, then its nodes written at open.
struct Made {
    fill: Duration,
    nodes_at_open: Duration,
}

/// Times `rounds` proofs of each kind on `storage`, a log of `size` leaves,
/// and the floor: `point` reads one stored hash by its index.
fn measure(
    made: Made,
    storage: &dyn Storage,
    size: u64,
    rounds: usize,
    mut point: impl FnMut(u64) -> Result<()>,
) -> Result<Figures> {
    let rng = SystemRandom::new();
    let (mut inc, mut con, mut reads, mut asm) = (vec![], vec![], vec![], vec![]);
    let mut most = 0;
    for _ in 0..rounds {
        let index = random_below(&rng, size);
        let t = Instant::now();
        let p = proofs::inclusion(storage, index, size)?;
        inc.push(t.elapsed());
        assert!(!p.proof.is_empty());
        let from = 1 + random_below(&rng, size - 1);
        let t = Instant::now();
        proofs::consistency(storage, from, size)?;
        con.push(t.elapsed());
        let t = Instant::now();
        point(index)?;
        reads.push(t.elapsed());
        // The hashing alone, its inputs already in memory.
        let plan = ProofPlan::inclusion(index, size)?;
        let needs = plan.needs();
        most = most
            .max(needs.len())
            .max(ProofPlan::consistency(from, size)?.needs().len());
        let held: HashMap<NodeId, Sha256Digest> = storage.log_hashes(&needs)?.hashes;
        let t = Instant::now();
        plan.assemble(&held)?;
        asm.push(t.elapsed());
    }
    Ok(Figures {
        fill: made.fill,
        nodes_at_open: made.nodes_at_open,
        inclusion: Samples::new(inc),
        consistency: Samples::new(con),
        most_hashes: most,
        point_read: Samples::new(reads),
        assemble: Samples::new(asm),
    })
}

/// The frontier of the log whose leaf ids `each` yields in order.
fn frontier_of(each: impl FnOnce(&mut dyn FnMut(&[u8])) -> Result<()>) -> Result<Frontier> {
    let mut f = Frontier::new();
    each(&mut |id| {
        f.push(leaf_hash(id));
    })?;
    Ok(f)
}

fn sqlite(scratch: &Path, leaves: u64, rounds: usize) -> Result<Figures> {
    let path = scratch.join("proofs.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    drop(SqliteStorage::open(&path)?);
    let t = Instant::now();
    let mut c = rusqlite::Connection::open(&path)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    c.execute(
        "INSERT INTO devices (id, public_key, stations, enrolled_at) VALUES ('bench', zeroblob(32), '[]', 0)",
        [],
    )?;
    c.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1)
         INSERT INTO records (log_index, id, device, seq, station, kind, captured_at, received_at, body, sig)
         SELECT i, randomblob(32), 'bench', i + 1, 'S-1', 'checklist', 0, 0, x'', x'' FROM n",
        [leaves as i64],
    )?;
    let frontier = frontier_of(|push| {
        let tx = c.transaction()?;
        let mut stmt = tx.prepare("SELECT id FROM records ORDER BY log_index")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            push(&r.get::<_, Vec<u8>>(0)?);
        }
        Ok(())
    })?;
    c.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('frontier', ?1)",
        [serde_json::to_vec(&frontier)?],
    )?;
    let fill = t.elapsed();
    drop(c);
    let t = Instant::now();
    let storage = SqliteStorage::open(&path)?;
    let nodes_at_open = t.elapsed();
    let raw = rusqlite::Connection::open(&path)?;
    let mut read = raw.prepare("SELECT id FROM records WHERE log_index = ?1")?;
    let made = Made {
        fill,
        nodes_at_open,
    };
    measure(made, &storage, leaves, rounds, |i| {
        let _: Vec<u8> = read.query_row([i as i64], |r| r.get(0))?;
        Ok(())
    })
}

fn postgres(leaves: u64, rounds: usize) -> Result<Figures> {
    let cluster = PgCluster::start();
    let name = cluster.create_database();
    let url = cluster.url(&name);
    drop(PostgresStorage::open(&DatabaseUrl::parse(&url)?)?);
    let t = Instant::now();
    let mut c = postgres::Client::connect(&url, postgres::NoTls)?;
    c.execute(
        "INSERT INTO records (log_index, id, device, seq, station, kind, captured_at, received_at, body, sig)
         SELECT i, sha256(int8send(i)), 'bench', i + 1, 'S-1', 'checklist', 0, 0, '', ''
         FROM generate_series(0, $1::bigint - 1) AS i",
        &[&(leaves as i64)],
    )?;
    c.batch_execute("ANALYZE records")?;
    let frontier = frontier_of(|push| {
        use postgres::fallible_iterator::FallibleIterator as _;
        let mut tx = c.transaction()?;
        let mut rows = tx.query_raw(
            "SELECT id FROM records ORDER BY log_index",
            std::iter::empty::<i32>(),
        )?;
        while let Some(r) = rows.next()? {
            push(r.get::<_, &[u8]>(0));
        }
        Ok(())
    })?;
    c.execute(
        "UPDATE log_head SET frontier = $1 WHERE id = 1",
        &[&serde_json::to_vec(&frontier)?],
    )?;
    let fill = t.elapsed();
    let t = Instant::now();
    let storage = PostgresStorage::open(&DatabaseUrl::parse(&url)?)?;
    let nodes_at_open = t.elapsed();
    let read = c.prepare("SELECT id FROM records WHERE log_index = $1")?;
    let made = Made {
        fill,
        nodes_at_open,
    };
    let figures = measure(made, &storage, leaves, rounds, |i| {
        c.query_one(&read, &[&(i as i64)])?;
        Ok(())
    })?;
    drop(storage);
    cluster.stop();
    Ok(figures)
}

pub fn run(scratch: &Path, leaves: u64, rounds: usize, command: &str) -> Result<String> {
    std::fs::create_dir_all(scratch)?;
    let lite = sqlite(scratch, leaves, rounds)?;
    let pg = postgres(leaves, rounds)?;
    let mut rows = String::new();
    for (name, f) in [("SQLite", &lite), ("PostgreSQL", &pg)] {
        rows.push_str(&format!(
            "| {name} | {} / {} | {} / {} | {} | {} | {} |\n",
            us(f.inclusion.p50()),
            us(f.inclusion.p99()),
            us(f.consistency.p50()),
            us(f.consistency.p99()),
            us(f.point_read.p50()),
            us(f.assemble.p50()),
            f.most_hashes,
        ));
    }
    let mut verdict = String::from("The target is under 1 ms a proof. ");
    for (name, f) in [("SQLite", &lite), ("PostgreSQL", &pg)] {
        let under = |d: Duration| {
            if d < Duration::from_millis(1) {
                "under"
            } else {
                "over"
            }
        };
        verdict.push_str(&format!(
            "{name}: {} at p50, {} at p99 (the slower kind). ",
            under(f.inclusion.p50().max(f.consistency.p50())),
            under(f.inclusion.p99().max(f.consistency.p99())),
        ));
    }
    let mut fills = String::new();
    for (name, f) in [("SQLite", &lite), ("PostgreSQL", &pg)] {
        fills.push_str(&format!(
            "{name}: the log filled in {}, its nodes written at first open in {}. ",
            ms(f.fill),
            ms(f.nodes_at_open)
        ));
    }
    Ok(format!(
        "## Log proofs at {leaves} leaves (issue 18)

Machine: {machine}. Command: `{command}`.

Each proof is `server/src/proofs.rs` on the real storage: the log's size
and the stored hashes the proof needs read in one call (two statements on
one connection), then hashed into the RFC 6962 proof; {rounds} proofs of each kind, at random
indexes (inclusion) and random first sizes (consistency), against a log of
{leaves} leaves. The floor is one indexed read of one leaf's id by its log
index on a connection of its own (no proof from a database can take fewer
than one read), and the hashing the proof needs once its stored hashes are
in memory. Every proof is two reads whatever the log's size; \"hashes\" is
the most stored hashes one proof read.

| Backend | inclusion p50 / p99 | consistency p50 / p99 | floor: one indexed read p50 | hashing alone p50 | hashes read (most) |
| --- | --- | --- | --- | --- | --- |
{rows}
{verdict}

{fills}A database written by an earlier version gets its nodes this way once,
when this version first opens it.
",
        machine = machine(scratch),
        verdict = verdict.trim_end(),
    ))
}

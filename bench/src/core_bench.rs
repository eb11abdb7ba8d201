//! Issue 2's figures: durable save, open of a large store, paged listing.

use std::path::Path;
use std::time::{Duration, Instant};

use observer_core::identity::{FileKeyStore, SigningKey};
use observer_core::record::{ChainPosition, sign_record};
use observer_core::store::{Query, StateFilter, Store};
use rusqlite::Connection;

use crate::report::{Samples, machine, ms, rss_kib, us};
use crate::sample::observation;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The physical limit of one durable save on this machine: sign the same
/// bytes with ring, and insert the same bytes into SQLite at the same
/// durability (WAL, synchronous=FULL, one row per commit).
fn raw_limit(dir: &Path, body: &[u8], n: usize) -> Result<(Samples, Samples, Samples)> {
    let key = SigningKey::generate()?;
    let conn = Connection::open(dir.join("raw.db"))?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE t (seq INTEGER PRIMARY KEY, body BLOB NOT NULL, sig BLOB NOT NULL)",
    )?;
    let mut sign = Vec::with_capacity(n);
    let mut insert = Vec::with_capacity(n);
    let mut both = Vec::with_capacity(n);
    let mut stmt = conn.prepare("INSERT INTO t (body, sig) VALUES (?1, ?2)")?;
    for _ in 0..n {
        let t0 = Instant::now();
        let sig = key.sign(body);
        let t1 = Instant::now();
        stmt.execute(rusqlite::params![body, sig.as_slice()])?;
        let t2 = Instant::now();
        sign.push(t1 - t0);
        insert.push(t2 - t1);
        both.push(t2 - t0);
    }
    Ok((Samples::new(sign), Samples::new(insert), Samples::new(both)))
}

pub fn run(scratch: &Path, saves: usize, records: u64, command: &str) -> Result<String> {
    let dir = tempfile::tempdir_in(scratch)?;
    let keys = FileKeyStore::open_or_create(dir.path().join("device.kek"))?;

    // Durable saves, one by one, through the real store.
    let small = dir.path().join("small");
    let store = Store::open(&small, &keys)?;
    for i in 0..50 {
        store.save(observation("KZ-ALA-0042", i))?; // warm-up
    }
    let mut lat = Vec::with_capacity(saves);
    for i in 0..saves as u64 {
        let r = observation("KZ-ALA-0042", i);
        let t0 = Instant::now();
        store.save(r)?;
        lat.push(t0.elapsed());
    }
    let save = Samples::new(lat);
    let body = {
        let k = SigningKey::generate()?;
        sign_record(
            &observation("KZ-ALA-0042", 0),
            &ChainPosition::first(&k),
            &k,
        )?
        .body
    };
    drop(store);
    let (sign, insert, limit) = raw_limit(dir.path(), &body, saves)?;

    // A large store: bulk-built, then opened and paged.
    let big = dir.path().join("big");
    let t0 = Instant::now();
    {
        let store = Store::open(&big, &keys)?;
        let mut made = 0;
        while made < records {
            let n = (records - made).min(10_000);
            let batch: Vec<_> = (made..made + n)
                .map(|i| observation("KZ-ALA-0042", i))
                .collect();
            store.save_all(&batch)?;
            made += n;
        }
    }
    let build = t0.elapsed();
    let mut opens = Vec::new();
    for _ in 0..7 {
        let t0 = Instant::now();
        let s = Store::open(&big, &keys)?;
        opens.push(t0.elapsed());
        drop(s);
    }
    let open = Samples::new(opens);
    let store = Store::open(&big, &keys)?;
    let rss_before = rss_kib();
    let mut peak = rss_before;
    let t0 = Instant::now();
    let mut q = Query::new().state(StateFilter::Pending).limit(500);
    let mut seen = 0u64;
    let mut pages = 0u64;
    loop {
        let page = store.list(&q)?;
        let Some(last) = page.last() else { break };
        q = q.after_seq(last.seq);
        seen += page.len() as u64;
        pages += 1;
        if pages.is_multiple_of(50) {
            peak = peak.max(rss_kib());
        }
    }
    let paging = t0.elapsed();
    assert_eq!(seen, records, "paging must visit every record once");
    let t0 = Instant::now();
    let report = store.verify()?;
    let verify = t0.elapsed();
    assert!(report.is_intact());
    let db_bytes = std::fs::metadata(big.join("observer.db"))?.len();

    let ratio = save.p50().as_secs_f64() / limit.p50().as_secs_f64();
    Ok(format!(
        "## Core: durable save, open, paging (issue 2)

Machine: {machine}.
Command: `{command}`.
Sample record body: {body_len} bytes. Durability: WAL, `synchronous = FULL`,
one record per transaction, as the store runs in the field.

| Operation | p50 | p99 | per second |
| --- | --- | --- | --- |
| `Store::save` (validate, sign, chain, seal at rest, insert, fsync) | {sp50} | {sp99} | {sps:.0} |
| limit: raw Ed25519 sign + raw SQLite insert, same bytes, same durability | {lp50} | {lp99} | {lps:.0} |
| of which raw Ed25519 sign (ring) | {gp50} | {gp99} | {gps:.0} |
| of which raw SQLite insert + commit | {ip50} | {ip99} | {ips:.0} |

**p50 save / p50 limit = {ratio:.2}** (target: at most 1.5).

| Large store ({records} records, {db_mb:.0} MB file) | Figure |
| --- | --- |
| build with `save_all`, 10,000 per transaction | {build} ({bps:.0} records/s) |
| `Store::open` (migrations, key unwrap, quick integrity check, requeue), median of 7 | {op50} (max {opmax}; target < 200 ms) |
| page through all pending records, 500 per page | {paging} ({pages} pages) |
| resident memory before paging / highest seen while paging | {rb} MiB / {rp} MiB |
| `Store::verify` (every id, signature and link) | {verify} ({vps:.0} records/s) |
",
        machine = machine(dir.path()),
        body_len = body.len(),
        sp50 = us(save.p50()),
        sp99 = us(save.p99()),
        sps = save.per_second(),
        lp50 = us(limit.p50()),
        lp99 = us(limit.p99()),
        lps = limit.per_second(),
        gp50 = us(sign.p50()),
        gp99 = us(sign.p99()),
        gps = sign.per_second(),
        ip50 = us(insert.p50()),
        ip99 = us(insert.p99()),
        ips = insert.per_second(),
        db_mb = db_bytes as f64 / 1e6,
        build = secs(build),
        bps = records as f64 / build.as_secs_f64(),
        op50 = ms(open.p50()),
        opmax = ms(open.quantile(1.0)),
        paging = secs(paging),
        rb = rss_before / 1024,
        rp = peak / 1024,
        verify = secs(verify),
        vps = records as f64 / verify.as_secs_f64(),
    ))
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

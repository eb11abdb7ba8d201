//! Issue 6's figure: a panic wipe of a store holding 100,000 records,
//! against the floor the file system sets (removing files of the same size
//! and syncing the directory), measured in the same run.

use std::path::Path;
use std::time::Instant;

use observer_core::identity::FileKeyStore;
use observer_core::store::{DB_FILE, Store};

use crate::report::{Samples, machine, ms};
use crate::sample::observation;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        n += e?.metadata()?.len();
    }
    Ok(n)
}

/// Fills a fresh store with `records` (1,000 per transaction), closes it.
fn fill(dir: &Path, records: u64) -> Result<()> {
    let keys = FileKeyStore::open_or_create(dir.join("device.kek"))?;
    let store = Store::open(dir, &keys)?;
    let mut n = 0;
    while n < records {
        let batch: Vec<_> = (n..(n + 1000).min(records))
            .map(|i| observation("KZ-ALA-0042", i))
            .collect();
        store.save_all(&batch)?;
        n += batch.len() as u64;
    }
    Ok(())
}

pub fn run(scratch: &Path, records: u64, rounds: usize, command: &str) -> Result<String> {
    let mut wipe = Vec::new();
    let mut open = Vec::new();
    let mut floor = Vec::new();
    let mut size = 0;
    for round in 0..rounds {
        let dir = scratch.join(format!("wipe-{round}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        fill(&dir, records)?;
        size = dir_bytes(&dir)?;
        // The floor: copy the files aside, then time removing the copies.
        let copy = scratch.join(format!("floor-{round}"));
        let _ = std::fs::remove_dir_all(&copy);
        std::fs::create_dir_all(&copy)?;
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            std::fs::copy(e.path(), copy.join(e.file_name()))?;
        }
        std::fs::File::open(&copy)?.sync_all()?;
        let t0 = Instant::now();
        for e in std::fs::read_dir(&copy)? {
            std::fs::remove_file(e?.path())?;
        }
        std::fs::File::open(&copy)?.sync_all()?;
        floor.push(t0.elapsed());

        let keys = FileKeyStore::open_or_create(dir.join("device.kek"))?;
        let t0 = Instant::now();
        let store = Store::open(&dir, &keys)?;
        open.push(t0.elapsed());
        let t0 = Instant::now();
        store.wipe(&keys, true)?;
        wipe.push(t0.elapsed());
        if dir.join(DB_FILE).exists() {
            return Err("the database survived the wipe".into());
        }
        std::fs::remove_dir_all(&dir)?;
        std::fs::remove_dir_all(&copy)?;
    }
    let (wipe, open, floor) = (Samples::new(wipe), Samples::new(open), Samples::new(floor));
    let max = |s: &Samples| s.quantile(1.0);
    Ok(format!(
        "## Panic wipe (issue 6)

Machine: {machine}.
Command: `{command}`.
A store of {records} records ({mib:.1} MiB on disk), {rounds} rounds, each on a freshly
filled store, keeping the sealed outbox (the slower variant: it reads the sealed rows first).

| Operation | median | max |
| --- | --- | --- |
| **`Store::wipe`** (mark written and synced, key destroyed, files truncated and removed) | **{wp50}** (target: under 1 s) | {wmax} |
| floor: removing copies of the same files and syncing the directory | {fp50} | {fmax} |
| for scale: opening the same store | {op50} | {omax} |
",
        machine = machine(scratch),
        mib = size as f64 / (1024.0 * 1024.0),
        wp50 = ms(wipe.p50()),
        wmax = ms(max(&wipe)),
        fp50 = ms(floor.p50()),
        fmax = ms(max(&floor)),
        op50 = ms(open.p50()),
        omax = ms(max(&open)),
    ))
}

//! The durable store's own cost in a burst, measured alone: the records a
//! burst stores, replayed through the storage trait on one thread into a
//! fresh database of the same backend, in groups as large as the burst's
//! group commits were. Any server that keeps the records must spend this
//! on top of what the ceiling (`burst_ceiling`) spends, so the two
//! together bound what a server can reach on this machine.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use observer_core::identity::{PublicKey, SigningKey};
use observer_core::protocol::Heartbeat;
use observer_core::record::{Sha256Digest, verify_envelope};
use observer_server::storage::{FormCheck, Incoming, IngestBatch, NewToken, Storage};

use crate::scale_bench::cpu_seconds;
use crate::server_bench::chain;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Every device's batch, verified, as the server hands it to storage.
pub(crate) struct Batches {
    keys: Vec<PublicKey>,
    batches: Vec<IngestBatch>,
}

/// Signs and verifies `devices` batches of `records` records each (the
/// first records of a device's chain, at a station of its own, as in the
/// burst), on every core. Not timed: the phones signed them, and the
/// ceiling already counts the server's checks.
pub(crate) fn batches(devices: usize, records: usize) -> Batches {
    let now = chrono::Utc::now().timestamp_millis();
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Vec::with_capacity(devices));
    std::thread::scope(|s| {
        for _ in 0..std::thread::available_parallelism().map_or(2, |n| n.get()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= devices {
                        break;
                    }
                    let key = SigningKey::generate().expect("rng");
                    let public = key.public_key();
                    let envs = chain(&key, &format!("E-{i:05}"), records);
                    let head = envs.last().map(|e| e.id());
                    let batch = IngestBatch {
                        device: public.device_id(),
                        heartbeat: Some(Heartbeat {
                            device: public.device_id(),
                            seq: records as u64,
                            head,
                            at_ms: now,
                        }),
                        records: envs
                            .iter()
                            .map(|e| Incoming {
                                record: verify_envelope(e, &public).expect("valid"),
                                check: FormCheck {
                                    clean: true,
                                    json: "{}".into(),
                                },
                                sealed: None,
                            })
                            .collect(),
                    };
                    out.lock().expect("lock").push((i, public, batch));
                }
            });
        }
    });
    let mut all = out.into_inner().expect("lock");
    all.sort_by_key(|(i, _, _)| *i);
    let (keys, batches) = all.into_iter().map(|(_, k, b)| (k, b)).unzip();
    Batches { keys, batches }
}

/// CPU seconds per batch that storing `b` costs: every device enrolled
/// first (not timed), then the batches committed `per_commit` at a time
/// through [`Storage::ingest_group`] on this thread. The CPU counted is
/// this process's and every `postgres` process's (idle when the store is
/// SQLite; on PostgreSQL, its statements, WAL, checkpoints and fsyncs'
/// system time).
pub(crate) fn cost(storage: &dyn Storage, b: &Batches, per_commit: usize) -> Result<f64> {
    for (i, key) in b.keys.iter().enumerate() {
        let hash = Sha256Digest::of(format!("store-{i}").as_bytes());
        storage.add_token(
            &NewToken {
                hash,
                stations: vec![format!("E-{i:05}")],
                name: None,
                expires_at_ms: i64::MAX,
            },
            0,
        )?;
        storage
            .enroll(&hash, key, None, 0)?
            .map_err(|e| format!("{e:?}"))?;
    }
    let cpu = || cpu_seconds("observer-bench") + cpu_seconds("postgres");
    let before = cpu();
    let now = chrono::Utc::now().timestamp_millis();
    for group in b.batches.chunks(per_commit.max(1)) {
        let refs: Vec<&IngestBatch> = group.iter().collect();
        storage.ingest_group(&refs, now)?;
    }
    Ok((cpu() - before) / b.batches.len() as f64)
}

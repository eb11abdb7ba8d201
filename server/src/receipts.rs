//! The receipts the coordinator signs, kept byte for byte so that an
//! evidence package can show, for each record, the receipt its
//! `clock.after` names (the record was made after it) and the receipt that
//! acknowledged it (it was received no later).
//!
//! A receipt is signed after its group's commit is durable, so keeping it
//! in that commit is impossible, and a second durable commit per sync
//! would halve what the server takes on election night. So receipts queue
//! here and one thread writes whatever has queued, in one transaction,
//! every [`FLUSH_EVERY`] at most: a handful of commits a second whatever
//! the load. A crash can lose the receipts of the last moments from the
//! archive (never a record): the phones that received them keep their own
//! copies, and a package then names the receipt as not held. A graceful
//! stop writes everything queued ([`ReceiptArchive::flush`]).

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use observer_core::identity::DeviceId;
use observer_core::protocol::Signed;
use observer_core::record::Sha256Digest;

use crate::metrics::Metrics;
use crate::storage::Storage;

/// A receipt as signed and sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReceipt {
    /// The device it was sent to.
    pub device: DeviceId,
    /// Its `server_time_ms`.
    pub server_time_ms: i64,
    /// The body and signature exactly as sent.
    pub signed: Signed,
}

impl StoredReceipt {
    /// SHA-256 of its body: what a record's `clock.after` names.
    pub fn hash(&self) -> Sha256Digest {
        Sha256Digest::of(&self.signed.body)
    }
}

/// The receipts of some devices, gathered from the archive as a backend
/// reads it through in order (it has no index to ask).
pub struct Gather<'a> {
    wanted: std::collections::HashMap<&'a str, &'a DeviceId>,
    found: Vec<StoredReceipt>,
}

impl<'a> Gather<'a> {
    pub fn new(devices: &'a std::collections::BTreeSet<DeviceId>) -> Self {
        Self {
            wanted: devices.iter().map(|d| (d.as_str(), d)).collect(),
            found: Vec::new(),
        }
    }

    /// The device of a row, if its receipt is wanted (read the rest of the
    /// row only then).
    pub fn wants(&self, device: &str) -> Option<DeviceId> {
        self.wanted.get(device).map(|d| (*d).clone())
    }

    /// Keeps a wanted row.
    pub fn keep(&mut self, device: DeviceId, server_time_ms: i64, body: Vec<u8>, sig: Vec<u8>) {
        self.found.push(StoredReceipt {
            device,
            server_time_ms,
            signed: Signed { body, sig },
        });
    }

    /// What was kept, in the order read.
    pub fn found(self) -> Vec<StoredReceipt> {
        self.found
    }
}

/// How long a receipt waits for company before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// Most receipts queued: beyond it one is not archived (its phone holds
/// it), and the loss is logged. At thousands of syncs a second this is
/// many seconds of a database that does not answer.
const QUEUE: usize = 65_536;

/// Most receipts written in one transaction.
const MAX_WRITE: usize = 4_096;

/// Tries to write one group, with the waits between tries: a database
/// that fails over comes back within them.
const RETRIES: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(2),
];

enum Job {
    Keep(StoredReceipt),
    /// Answered once everything queued before it is written.
    Flush(mpsc::Sender<()>),
}

/// The queue in front of the archiving thread. Cloning shares it.
#[derive(Clone)]
pub struct ReceiptArchive {
    jobs: SyncSender<Job>,
    metrics: Option<Arc<Metrics>>,
}

impl ReceiptArchive {
    /// Starts the archiving thread for `storage`; it stops when every
    /// clone of the handle is dropped, after writing what is queued.
    pub fn start(
        storage: Arc<dyn Storage>,
        metrics: Option<Arc<Metrics>>,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::sync_channel(QUEUE);
        let m = metrics.clone();
        std::thread::Builder::new()
            .name("receipt-archive".into())
            .spawn(move || run(storage.as_ref(), &queue, m.as_deref()))?;
        Ok(Self { jobs, metrics })
    }

    /// Queues `receipt` to be written; never waits.
    pub fn keep(&self, receipt: StoredReceipt) {
        let lost = match self.jobs.try_send(Job::Keep(receipt)) {
            Ok(()) => return,
            Err(TrySendError::Full(_)) => "the receipt archive is full",
            Err(TrySendError::Disconnected(_)) => "the receipt archive has stopped",
        };
        tracing::warn!(
            cause = lost,
            "a receipt is not archived (its phone keeps it)"
        );
        if let Some(m) = &self.metrics {
            m.receipts_unarchived(1);
        }
    }

    /// Waits until every receipt queued before the call is written (or
    /// given up on). Blocks: call it off the async threads.
    pub fn flush(&self) {
        let (done, wait) = mpsc::channel();
        if self.jobs.send(Job::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

fn run(storage: &dyn Storage, queue: &mpsc::Receiver<Job>, metrics: Option<&Metrics>) {
    let mut group: Vec<StoredReceipt> = Vec::new();
    let mut waiting: Vec<mpsc::Sender<()>> = Vec::new();
    loop {
        // Block for the first, then gather until the group is old enough
        // or large enough, or a flush is asked for.
        let first = match queue.recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let deadline = Instant::now() + FLUSH_EVERY;
        let mut next = Some(first);
        let mut closed = false;
        while let Some(job) = next.take() {
            match job {
                Job::Keep(r) => group.push(r),
                Job::Flush(done) => {
                    waiting.push(done);
                    break;
                }
            }
            if group.len() >= MAX_WRITE {
                break;
            }
            match queue.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(job) => next = Some(job),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => closed = true,
            }
        }
        write(storage, &mut group, metrics);
        for done in waiting.drain(..) {
            let _ = done.send(());
        }
        if closed {
            return;
        }
    }
}

/// Writes `group` (emptying it), retrying a failing database a few times.
fn write(storage: &dyn Storage, group: &mut Vec<StoredReceipt>, metrics: Option<&Metrics>) {
    if group.is_empty() {
        return;
    }
    let mut tries = RETRIES.iter();
    loop {
        match storage.put_receipts(group) {
            Ok(()) => break,
            Err(e) => match tries.next() {
                Some(wait) => {
                    tracing::warn!(
                        kind = e.kind(),
                        receipts = group.len(),
                        "archiving receipts failed; trying again"
                    );
                    std::thread::sleep(*wait);
                }
                None => {
                    tracing::error!(
                        kind = e.kind(),
                        receipts = group.len(),
                        "receipts not archived (their phones keep them)"
                    );
                    if let Some(m) = metrics {
                        m.receipts_unarchived(group.len());
                    }
                    break;
                }
            },
        }
    }
    group.clear();
}

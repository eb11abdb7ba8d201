//! Group commit: batches from different phones that are verified at the
//! same moment share one durable commit.
//!
//! On election night thousands of phones each send one or two records at
//! once. A commit per batch would make the disk's flush (SQLite) or the
//! log head's row lock and WAL flush (PostgreSQL) the limit, not the
//! signatures. So verified batches queue here, and one thread commits
//! whatever has queued while the previous commit was being made: a lone
//! phone waits for nothing but its own commit, and under load the group
//! grows by itself to what arrived during one flush. Each phone's receipt
//! is signed only after [`GroupCommit::commit`] returns, so only after its
//! group is durable; a failed commit fails every batch of the group (the
//! transaction stored none of them), and each phone retries.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use super::Prepared;
use crate::metrics::Metrics;
use crate::storage::{IngestResult, Storage, StorageError};

/// How large a group may grow. Its first batch never waits for company:
/// a group is what queued while the previous commit was flushing.
#[derive(Clone, Copy, Debug)]
pub struct GroupLimits {
    /// Most batches in one commit.
    pub max_batches: usize,
    /// Most records in one commit (a group stops growing once over it).
    pub max_records: usize,
}

impl Default for GroupLimits {
    fn default() -> Self {
        Self {
            max_batches: 256,
            max_records: 4_000,
        }
    }
}

/// A batch's place in a group, and where its result goes.
struct Job {
    prepared: Prepared,
    answer: tokio::sync::oneshot::Sender<Result<Committed, StorageError>>,
}

/// A batch's result once its group is durable.
#[derive(Debug)]
pub struct Committed {
    /// The batch, as it was verified.
    pub prepared: Prepared,
    /// What storage decided for it.
    pub result: IngestResult,
    /// The time the group was committed under, ms since the epoch.
    pub now_ms: i64,
}

/// The queue in front of the committing thread. Cloning shares it.
#[derive(Clone)]
pub struct GroupCommit {
    jobs: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the committing thread for `storage`. It stops when every
    /// clone of the returned handle is dropped, after the queue is empty.
    pub fn start(
        storage: Arc<dyn Storage>,
        limits: GroupLimits,
        metrics: Option<Arc<Metrics>>,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("group-commit".into())
            .spawn(move || run(storage.as_ref(), &queue, limits, metrics.as_deref()))?;
        Ok(Self { jobs })
    }

    /// Commits `prepared` with whatever else is queued; answers once the
    /// group is durable (or has failed: then nothing of it was stored).
    pub async fn commit(&self, prepared: Prepared) -> Result<Committed, StorageError> {
        let (answer, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job { prepared, answer })
            .map_err(|_| StorageError::Unavailable("the committing thread has stopped".into()))?;
        result
            .await
            .map_err(|_| StorageError::Unavailable("the committing thread has stopped".into()))?
    }
}

fn run(
    storage: &dyn Storage,
    queue: &mpsc::Receiver<Job>,
    limits: GroupLimits,
    metrics: Option<&Metrics>,
) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        let mut records = group[0].prepared.batch.records.len();
        while group.len() < limits.max_batches && records < limits.max_records {
            let Ok(next) = queue.try_recv() else {
                break;
            };
            records += next.prepared.batch.records.len();
            group.push(next);
        }
        commit_group(storage, group, metrics);
    }
}

/// Commits one group and answers each of its batches. A constraint failure
/// in a group of several is retried batch by batch, so that one batch the
/// database refuses does not take the others down with it.
fn commit_group(storage: &dyn Storage, group: Vec<Job>, metrics: Option<&Metrics>) {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let started = Instant::now();
    let outcome = {
        let batches: Vec<_> = group.iter().map(|j| &j.prepared.batch).collect();
        storage.ingest_group(&batches, now_ms)
    };
    if let Some(m) = metrics {
        m.group_commit(group.len(), started.elapsed(), outcome.is_ok());
    }
    match outcome {
        Ok(results) if results.len() == group.len() => {
            for (job, result) in group.into_iter().zip(results) {
                let _ = job.answer.send(Ok(Committed {
                    prepared: job.prepared,
                    result,
                    now_ms,
                }));
            }
        }
        Ok(results) => {
            let e = StorageError::Database(format!(
                "a group commit of {} batches answered {}",
                group.len(),
                results.len()
            ));
            tracing::error!(cause = %e, "group commit");
            for job in group {
                let _ = job.answer.send(Err(e.duplicate()));
            }
        }
        Err(StorageError::Constraint(_)) if group.len() > 1 => {
            tracing::warn!(
                batches = group.len(),
                "a group commit was refused by a constraint; committing its batches one by one"
            );
            for job in group {
                commit_group(storage, vec![job], metrics);
            }
        }
        Err(e) => {
            tracing::warn!(
                batches = group.len(),
                kind = e.kind(),
                "a group commit failed; nothing of it was stored"
            );
            for job in group {
                let _ = job.answer.send(Err(e.duplicate()));
            }
        }
    }
}

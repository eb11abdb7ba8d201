//! Reading request bodies under the server's limits: a size cap, a pace
//! (a body that trickles is cut), and a budget of bytes held in memory by
//! all requests at once. A body over its cap is read to its end and thrown
//! away (up to [`MAX_DRAIN_BYTES`]) so that a client still sending receives
//! the 413 instead of a connection reset.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use futures_util::StreamExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::limits::{MAX_DRAIN_BYTES, ServeLimits};

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Over the endpoint's cap.
    #[error("the request body is over the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// It arrived slower than the server allows, or stalled.
    #[error("the request body arrived too slowly ({received} bytes in {secs} s)")]
    TooSlow { received: u64, secs: u64 },
    /// The connection failed while it arrived.
    #[error("the request body was interrupted after {received} bytes: {cause}")]
    Interrupted { received: u64, cause: String },
    /// The server holds as many request bytes as it allows; retry shortly.
    #[error("the server is receiving as much as it can hold; retry shortly")]
    Busy,
}

/// The pace a body must keep, and the memory budget all bodies share.
#[derive(Clone)]
pub struct BodyPolicy {
    grace: Duration,
    min_rate: u64,
    idle: Duration,
    budget: Arc<Semaphore>,
}

/// Budget units are KiB, so a semaphore's `u32` permits cover terabytes.
const UNIT: usize = 1024;

impl BodyPolicy {
    /// The policy of `limits`.
    pub fn new(limits: &ServeLimits) -> Self {
        Self {
            grace: limits.body_grace,
            min_rate: limits.body_min_rate.max(1),
            idle: limits.body_idle_timeout,
            budget: Arc::new(Semaphore::new(
                (limits.bodies_in_flight_bytes / UNIT).min(Semaphore::MAX_PERMITS),
            )),
        }
    }

    /// Request bytes that could still be held before requests get 503.
    pub fn budget_left(&self) -> usize {
        self.budget.available_permits() * UNIT
    }

    /// When the next piece must have arrived, `received` bytes in, for a
    /// body that started at `started`.
    pub fn deadline(&self, started: Instant, received: u64) -> Instant {
        let by_rate = started + self.grace + Duration::from_secs(received / self.min_rate);
        by_rate.min(Instant::now() + self.idle)
    }

    fn too_slow(&self, started: Instant, received: u64) -> BodyError {
        BodyError::TooSlow {
            received,
            secs: started.elapsed().as_secs(),
        }
    }

    /// The next piece of `stream`, within the pace.
    pub async fn next_piece<S, E>(
        &self,
        stream: &mut S,
        started: Instant,
        received: u64,
    ) -> Result<Option<Bytes>, BodyError>
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        match tokio::time::timeout_at(self.deadline(started, received), stream.next()).await {
            Err(_) => Err(self.too_slow(started, received)),
            Ok(None) => Ok(None),
            Ok(Some(Ok(piece))) => Ok(Some(piece)),
            Ok(Some(Err(e))) => Err(BodyError::Interrupted {
                received,
                cause: e.to_string(),
            }),
        }
    }

    /// Holds `len` bytes of the shared budget until the permit is dropped
    /// (for a request that keeps what it read in memory); `Busy` when the
    /// budget is spent.
    pub fn reserve(&self, len: usize) -> Result<OwnedSemaphorePermit, BodyError> {
        self.budget
            .clone()
            .try_acquire_many_owned(len.div_ceil(UNIT) as u32)
            .map_err(|_| BodyError::Busy)
    }

    /// Reads all of `body`, at most `limit` bytes, holding its size in the
    /// shared budget until the returned [`Held`] is dropped.
    pub async fn read(&self, body: Body, limit: usize) -> Result<Held, BodyError> {
        let started = Instant::now();
        let mut stream = body.into_data_stream();
        let mut pieces: Vec<Bytes> = Vec::new();
        let mut received = 0u64;
        let mut permits: Option<OwnedSemaphorePermit> = None;
        while let Some(piece) = self.next_piece(&mut stream, started, received).await? {
            received += piece.len() as u64;
            if received > limit as u64 {
                drop(pieces);
                drop(permits);
                self.drain(&mut stream, started, received).await;
                return Err(BodyError::TooLarge { limit });
            }
            let more = self.reserve(piece.len())?;
            match &mut permits {
                Some(p) => p.merge(more),
                None => permits = Some(more),
            }
            pieces.push(piece);
        }
        let bytes = match pieces.len() {
            0 => Bytes::new(),
            1 => pieces.pop().expect("one piece"),
            _ => {
                let mut all = Vec::with_capacity(received as usize);
                for p in &pieces {
                    all.extend_from_slice(p);
                }
                Bytes::from(all)
            }
        };
        Ok(Held {
            bytes,
            _permits: permits,
        })
    }

    /// Reads and discards the rest of an oversized body, within the pace,
    /// up to [`MAX_DRAIN_BYTES`].
    pub async fn drain<S, E>(&self, stream: &mut S, started: Instant, mut received: u64)
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        while received <= MAX_DRAIN_BYTES {
            match self.next_piece(stream, started, received).await {
                Ok(Some(p)) => received += p.len() as u64,
                _ => return,
            }
        }
    }
}

/// A body read into memory, counted in the budget while it lives.
#[derive(Debug)]
pub struct Held {
    /// The bytes.
    pub bytes: Bytes,
    _permits: Option<OwnedSemaphorePermit>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(budget: usize) -> BodyPolicy {
        BodyPolicy::new(&ServeLimits {
            body_grace: Duration::from_millis(200),
            body_min_rate: 1000,
            body_idle_timeout: Duration::from_millis(300),
            bodies_in_flight_bytes: budget,
            ..ServeLimits::default()
        })
    }

    fn trickle(pieces: usize, every: Duration) -> Body {
        let s = futures_util::stream::unfold(0, move |i| async move {
            if i == pieces {
                return None;
            }
            tokio::time::sleep(every).await;
            Some((Ok::<_, std::io::Error>(Bytes::from_static(b"x")), i + 1))
        });
        Body::from_stream(s)
    }

    #[tokio::test]
    async fn a_body_read_whole_is_held_in_the_budget_until_dropped() {
        let p = policy(1 << 20);
        let held = p.read(Body::from(vec![7u8; 5000]), 10_000).await.unwrap();
        assert_eq!(held.bytes.len(), 5000);
        assert_eq!(p.budget_left(), (1 << 20) - 5 * 1024);
        drop(held);
        assert_eq!(p.budget_left(), 1 << 20);
    }

    #[tokio::test]
    async fn over_the_limit_is_too_large_and_over_the_budget_is_busy() {
        let p = policy(4096);
        assert!(matches!(
            p.read(Body::from(vec![0u8; 2000]), 1000).await,
            Err(BodyError::TooLarge { limit: 1000 })
        ));
        let _held = p.read(Body::from(vec![0u8; 3000]), 10_000).await.unwrap();
        assert!(matches!(
            p.read(Body::from(vec![0u8; 2000]), 10_000).await,
            Err(BodyError::Busy)
        ));
    }

    #[tokio::test]
    async fn a_trickling_body_is_cut_once_its_grace_is_spent() {
        let p = policy(1 << 20);
        // A byte every 50 ms: 20 B/s, far under 1000 B/s.
        let r = p
            .read(trickle(1000, Duration::from_millis(50)), 10_000)
            .await;
        assert!(matches!(r, Err(BodyError::TooSlow { .. })), "{r:?}");
        // A stall longer than the idle timeout is cut too.
        let r = p.read(trickle(2, Duration::from_millis(400)), 10_000).await;
        assert!(matches!(r, Err(BodyError::TooSlow { .. })), "{r:?}");
        // A few quick pieces pass.
        let ok = p.read(trickle(3, Duration::from_millis(10)), 10_000).await;
        assert_eq!(ok.unwrap().bytes.as_ref(), b"xxx");
    }
}

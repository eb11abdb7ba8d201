//! The bound on batches in flight: admitted, not yet answered.
//!
//! When every phone of a country reconnects at once, a queue without a
//! bound only moves the failure later: batches wait behind each other until
//! the phones time out and send them again, and the server verifies work
//! nobody waits for. So a batch beyond the bound is answered 503 with
//! `Retry-After` at once, before its body is read or anything verified;
//! the phone waits (with jitter) and comes back, and the burst drains at
//! the server's own pace.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How many batches are in flight, and how many may be.
#[derive(Debug)]
pub struct Backlog {
    admitted: AtomicUsize,
    max: usize,
}

/// One admitted batch; dropping it frees its place.
#[derive(Debug)]
pub struct Admitted(Arc<Backlog>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Backlog {
    /// At most `max` batches in flight.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            admitted: AtomicUsize::new(0),
            max: max.max(1),
        })
    }

    /// A place for one more batch, or `None` when all are taken.
    pub fn admit(self: &Arc<Self>) -> Option<Admitted> {
        self.admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Admitted(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_backlog_refuses_until_a_place_is_freed() {
        let b = Backlog::new(2);
        let one = b.admit().expect("room");
        let _two = b.admit().expect("room");
        assert!(b.admit().is_none(), "a third batch is refused");
        drop(one);
        assert!(b.admit().is_some(), "a freed place is taken again");
    }
}

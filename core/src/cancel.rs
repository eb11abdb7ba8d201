//! Stopping a long call from another thread: a sync (an Android worker's
//! `onStopped`, an iOS background task's expiry) or a media import. The
//! call stops at its next check, between requests or chunks, never midway
//! through a write: what it leaves is always a state the store already
//! knows (a record pending or delivered, a file imported or not at all).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A shared "stop" flag; clones share it.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

/// What a cancelled call returns before converting it to its own error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancelled;

impl Cancel {
    /// Asks the call to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// `Err(Cancelled)` once cancelled.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }

    /// Sleeps `d`, waking early (with [`Cancelled`]) if cancelled.
    pub fn sleep(&self, d: Duration) -> Result<(), Cancelled> {
        let until = Instant::now() + d;
        loop {
            self.check()?;
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_wakes_a_sleep_early_and_is_seen_by_every_clone() {
        let c = Cancel::default();
        assert_eq!(c.check(), Ok(()));
        let other = c.clone();
        let t = std::thread::spawn(move || {
            let started = Instant::now();
            let r = other.sleep(Duration::from_secs(30));
            (r, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(100));
        c.cancel();
        let (r, took) = t.join().unwrap();
        assert_eq!(r, Err(Cancelled));
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert!(c.is_cancelled());
    }
}

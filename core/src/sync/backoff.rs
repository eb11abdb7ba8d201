//! Retry timing: exponential backoff with full jitter.
//!
//! After a blackout every phone in a country sees the link return at once;
//! full jitter (a uniformly random wait between zero and the exponential
//! bound) spreads their retries instead of synchronising them.

use std::time::Duration;

use ring::rand::{SecureRandom as _, SystemRandom};

/// Exponential backoff with full jitter.
///
/// ```
/// use std::time::Duration;
/// use observer_core::sync::Backoff;
/// let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
/// assert!(b.delay(3) <= Duration::from_secs(8));
/// assert!(b.delay(30) <= Duration::from_secs(60));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Backoff {
    /// Waits start below `base` and never exceed `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self { base, cap }
    }

    /// The wait before retry number `attempt` (0 for the first retry): a
    /// uniformly random duration in `[0, min(cap, base * 2^attempt)]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let bound = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.cap);
        let mut r = [0u8; 8];
        // If the system generator fails, waiting the full bound is safe.
        let fraction = match SystemRandom::new().fill(&mut r) {
            Ok(()) => (u64::from_le_bytes(r) >> 11) as f64 / (1u64 << 53) as f64,
            Err(_) => 1.0,
        };
        bound.mul_f64(fraction)
    }
}

impl Default for Backoff {
    /// 1 s to 5 min: fine for a foreground sync; the platforms' schedulers
    /// (WorkManager, BGTaskScheduler) add their own longer backoff.
    fn default() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(300))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_spread_within_the_exponential_bound() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        let d: Vec<_> = (0..200).map(|_| b.delay(4)).collect();
        assert!(d.iter().all(|d| *d <= Duration::from_millis(1600)));
        let distinct: std::collections::HashSet<_> = d.iter().collect();
        assert!(distinct.len() > 150, "jitter must spread retries");
        assert!(d.iter().any(|d| *d < Duration::from_millis(400)));
        assert!(b.delay(40) <= Duration::from_secs(10));
    }
}

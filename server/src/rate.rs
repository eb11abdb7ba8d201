//! Request rates: per address on every request (before anything else runs),
//! per device once a request has proved which device sent it. A device is
//! never limited on the strength of a claim: anyone can name a victim's
//! device id, only the device can sign its heartbeat.
//!
//! The token buckets are `governor`'s (GCRA); stale keys are dropped every
//! minute so that a spray of addresses does not grow the maps for good.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use observer_core::identity::DeviceId;

use crate::guard::AddressKey;

/// The limiters the server applies.
#[derive(Clone)]
pub struct RateLimits {
    by_address: Arc<DefaultKeyedRateLimiter<AddressKey>>,
    by_device: Arc<DefaultKeyedRateLimiter<DeviceId>>,
    /// Login attempts per address, far below any other rate: each costs
    /// an Argon2 hash, and each is a guess.
    logins: Arc<DefaultKeyedRateLimiter<AddressKey>>,
}

/// Login attempts per address per minute (and the burst).
pub const LOGINS_PER_MINUTE: u32 = 10;

/// A request over its rate: when to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    /// Seconds until a request would pass (at least 1).
    pub retry_after_secs: u64,
}

fn quota(per_second: u32) -> Quota {
    let rate = NonZeroU32::new(per_second.max(1)).expect("at least 1");
    let burst = NonZeroU32::new(per_second.max(1).saturating_mul(10)).expect("at least 10");
    Quota::per_second(rate).allow_burst(burst)
}

fn verdict<K: std::hash::Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
) -> Result<(), Limited> {
    limiter.check_key(key).map_err(|not_until| Limited {
        retry_after_secs: not_until
            .wait_time_from(DefaultClock::default().now())
            .as_secs()
            .max(1),
    })
}

impl RateLimits {
    /// `per_address` and `per_device` requests per second, bursts of ten
    /// times that.
    pub fn new(per_address: u32, per_device: u32) -> Self {
        Self {
            by_address: Arc::new(DefaultKeyedRateLimiter::keyed(quota(per_address))),
            by_device: Arc::new(DefaultKeyedRateLimiter::keyed(quota(per_device))),
            logins: Arc::new(DefaultKeyedRateLimiter::keyed(Quota::per_minute(
                NonZeroU32::new(LOGINS_PER_MINUTE).expect("positive"),
            ))),
        }
    }

    /// Counts a request from `address`.
    pub fn address(&self, address: AddressKey) -> Result<(), Limited> {
        verdict(&self.by_address, &address)
    }

    /// Counts a request that `device` signed.
    pub fn device(&self, device: &DeviceId) -> Result<(), Limited> {
        verdict(&self.by_device, device)
    }

    /// Counts a login attempt from `address`.
    pub fn login(&self, address: AddressKey) -> Result<(), Limited> {
        verdict(&self.logins, &address)
    }

    /// Forgets keys whose buckets are full again (run periodically).
    pub fn forget_idle(&self) {
        self.logins.retain_recent();
        self.logins.shrink_to_fit();
        self.by_address.retain_recent();
        self.by_address.shrink_to_fit();
        self.by_device.retain_recent();
        self.by_device.shrink_to_fit();
    }

    /// Runs [`RateLimits::forget_idle`] every `every` on the current runtime.
    pub fn spawn_sweeper(&self, every: Duration) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                me.forget_idle();
            }
        });
    }

    /// Address keys being tracked (for tests and metrics).
    pub fn tracked_addresses(&self) -> usize {
        self.by_address.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds_and_keys_are_separate() {
        let r = RateLimits::new(2, 1);
        let a = AddressKey::V4(1);
        for _ in 0..20 {
            r.address(a).unwrap();
        }
        let limited = r.address(a).unwrap_err();
        assert!(limited.retry_after_secs >= 1);
        r.address(AddressKey::V4(2)).unwrap();
        assert_eq!(r.tracked_addresses(), 2);
        for _ in 0..LOGINS_PER_MINUTE {
            r.login(a).unwrap();
        }
        assert!(r.login(a).unwrap_err().retry_after_secs >= 1);
        r.login(AddressKey::V4(2)).unwrap();
    }
}

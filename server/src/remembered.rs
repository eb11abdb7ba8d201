//! A value read from the storage and believed for a while. Every sync's
//! updates name the quick count's sample, the SMS gateway's number and the
//! published forms; reading them at each of thousands of syncs a second
//! would cost more than the sync, and each changes a few times an election.

use std::sync::RwLock;
use std::time::{Duration, Instant};

/// The value last read, and when; believed for `for_` after reading.
#[derive(Debug)]
pub struct Remembered<T> {
    known: RwLock<Option<(Instant, T)>>,
    for_: Duration,
}

impl<T: Clone> Remembered<T> {
    /// Nothing read yet; a value is believed for `for_` once read.
    pub const fn new(for_: Duration) -> Self {
        Self {
            known: RwLock::new(None),
            for_,
        }
    }

    /// The value read less than `for_` ago, or `load`'s (remembered when
    /// it succeeds).
    pub fn get<E>(&self, load: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        if let Some((at, known)) = &*self.known.read().unwrap_or_else(|p| p.into_inner())
            && at.elapsed() < self.for_
        {
            return Ok(known.clone());
        }
        let value = load()?;
        *self.known.write().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), value.clone()));
        Ok(value)
    }

    /// Reads afresh at the next [`Remembered::get`] (this node changed it).
    pub fn forget(&self) {
        *self.known.write().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_believed_for_its_time_then_read_again_and_a_failure_is_not_kept() {
        let r = Remembered::new(Duration::from_millis(200));
        assert_eq!(r.get(|| Ok::<_, ()>(1)), Ok(1));
        assert_eq!(r.get(|| Ok::<_, ()>(2)), Ok(1), "believed");
        r.forget();
        assert_eq!(r.get(|| Err(())), Err(()), "read afresh once forgotten");
        assert_eq!(r.get(|| Ok::<_, ()>(3)), Ok(3), "a failure is not kept");
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(r.get(|| Ok::<_, ()>(4)), Ok(4), "read again after its time");
    }
}

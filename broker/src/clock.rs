//! The coordinators' time source: the system clock in the broker, a manual clock in unit
//! tests, so that session, rebalance and transaction timeouts run without waiting.

use std::time::Instant;

/// Where a coordinator reads the time.
pub(crate) trait Clock: Send + Sync {
    /// Monotonic time, for deadlines.
    fn now(&self) -> Instant;
    /// Wall-clock milliseconds since the Unix epoch, for stored timestamps.
    fn now_ms(&self) -> i64;
}

/// The real clock.
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn now_ms(&self) -> i64 {
        sluice_storage::now_ms()
    }
}

/// A clock that moves only when a test advances it; both readings move together.
#[cfg(test)]
pub(crate) struct ManualClock {
    start: Instant,
    start_ms: i64,
    elapsed: std::sync::Mutex<std::time::Duration>,
}

#[cfg(test)]
impl ManualClock {
    /// A clock standing at the current time.
    pub(crate) fn new() -> std::sync::Arc<Self> {
        std::sync::Arc::new(ManualClock {
            start: Instant::now(),
            start_ms: sluice_storage::now_ms(),
            elapsed: std::sync::Mutex::new(std::time::Duration::ZERO),
        })
    }

    /// Moves the clock forward by `ms` milliseconds.
    pub(crate) fn advance_ms(&self, ms: u64) {
        *self.elapsed.lock().unwrap() += std::time::Duration::from_millis(ms);
    }

    /// The monotonic reading, without naming the trait.
    pub(crate) fn now_instant(&self) -> Instant {
        Clock::now(self)
    }

    /// The wall-clock reading, without naming the trait.
    pub(crate) fn now_ms_reading(&self) -> i64 {
        Clock::now_ms(self)
    }

    fn elapsed(&self) -> std::time::Duration {
        *self.elapsed.lock().unwrap()
    }
}

#[cfg(test)]
impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + self.elapsed()
    }

    fn now_ms(&self) -> i64 {
        self.start_ms + self.elapsed().as_millis() as i64
    }
}

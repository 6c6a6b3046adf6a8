//! The clock the store reads: every time it writes (a record's creation,
//! expiry and revocation, an event's timestamp, a pruning checkpoint) and
//! every "now" it compares against (expired reviews, active grants) comes
//! from a [`Clock`] given to the store, never from the system inside a
//! store method, so tests can fix time and replicas can share one notion
//! of it.
//!
//! [`now_unix`] and [`now_micros`] read the system clock for callers outside
//! the store.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Time since the Unix epoch.
pub trait Clock: Send + Sync {
    /// Microseconds since the Unix epoch.
    fn now_micros(&self) -> i64;

    /// Whole seconds since the Unix epoch.
    fn now_unix(&self) -> i64 {
        self.now_micros().div_euclid(1_000_000)
    }
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_micros(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|duration| i64::try_from(duration.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    fn now_unix(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|duration| i64::try_from(duration.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that moves only when told to: for tests.
#[derive(Debug, Default)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `micros` microseconds since the epoch.
    pub fn at_micros(micros: i64) -> Self {
        Self {
            micros: AtomicI64::new(micros),
        }
    }

    /// A clock standing at `seconds` since the epoch.
    pub fn at_unix(seconds: i64) -> Self {
        Self::at_micros(seconds.saturating_mul(1_000_000))
    }

    /// Sets the time, in microseconds since the epoch.
    pub fn set_micros(&self, micros: i64) {
        self.micros.store(micros, Ordering::SeqCst);
    }

    /// Moves the clock on by `micros` microseconds.
    pub fn advance_micros(&self, micros: i64) {
        self.micros.fetch_add(micros, Ordering::SeqCst);
    }

    /// Moves the clock on by `seconds`.
    pub fn advance_secs(&self, seconds: i64) {
        self.advance_micros(seconds.saturating_mul(1_000_000));
    }
}

impl Clock for ManualClock {
    fn now_micros(&self) -> i64 {
        self.micros.load(Ordering::SeqCst)
    }
}

/// Seconds since the Unix epoch, from the system clock.
pub fn now_unix() -> i64 {
    SystemClock.now_unix()
}

/// Microseconds since the Unix epoch, from the system clock.
pub fn now_micros() -> i64 {
    SystemClock.now_micros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_agrees_with_itself_in_both_units() {
        let before = now_micros();
        let seconds = now_unix();
        let after = now_micros();
        assert!(before.div_euclid(1_000_000) <= seconds);
        assert!(seconds <= after.div_euclid(1_000_000));
        // Some time after 2020-01-01.
        assert!(seconds > 1_577_836_800);
    }

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::at_unix(1_000);
        assert_eq!(
            (clock.now_unix(), clock.now_micros()),
            (1_000, 1_000_000_000)
        );
        clock.advance_micros(1_500_000);
        assert_eq!(
            (clock.now_unix(), clock.now_micros()),
            (1_001, 1_001_500_000)
        );
        clock.advance_secs(10);
        assert_eq!(clock.now_unix(), 1_011);
        clock.set_micros(-1);
        assert_eq!(clock.now_unix(), -1, "seconds round down");
    }
}

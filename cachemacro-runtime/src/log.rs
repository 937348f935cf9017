//! Warnings that cannot storm: during an outage the same fault repeats thousands of times a
//! second, and one line per fault would bury everything else in the log. Each call site logs at
//! most once per [`INTERVAL`], with the number of repeats it suppressed since its last line.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The shortest time between two lines of one call site.
pub(crate) const INTERVAL: Duration = Duration::from_secs(10);

/// One call site's budget of log lines.
pub(crate) struct Throttle {
    /// When the next line may go, in ms since the first throttled line of the process.
    next_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl Throttle {
    pub(crate) const fn new() -> Self {
        Self {
            next_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(repeats suppressed since the last line)` when a line may go now.
    pub(crate) fn admit(&self) -> Option<u64> {
        static START: OnceLock<Instant> = OnceLock::new();
        let now = START.get_or_init(Instant::now).elapsed().as_millis() as u64;
        let next = self.next_ms.load(Relaxed);
        let interval = INTERVAL.as_millis() as u64;
        if now >= next
            && self
                .next_ms
                .compare_exchange(next, now + interval, Relaxed, Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Relaxed));
        }
        self.suppressed.fetch_add(1, Relaxed);
        None
    }
}

/// `tracing::warn!`, at most once per [`INTERVAL`] from this call site, with a `suppressed`
/// field counting the lines left out since the last one.
macro_rules! warn_throttled {
    ($($field:tt)+) => {{
        static THROTTLE: $crate::log::Throttle = $crate::log::Throttle::new();
        if let Some(suppressed) = THROTTLE.admit() {
            ::tracing::warn!(suppressed, $($field)+);
        }
    }};
}

/// `tracing::error!`, throttled like [`warn_throttled!`].
macro_rules! error_throttled {
    ($($field:tt)+) => {{
        static THROTTLE: $crate::log::Throttle = $crate::log::Throttle::new();
        if let Some(suppressed) = THROTTLE.admit() {
            ::tracing::error!(suppressed, $($field)+);
        }
    }};
}

pub(crate) use {error_throttled, warn_throttled};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_then_the_count_of_those_left_out() {
        let throttle = Throttle::new();
        assert_eq!(throttle.admit(), Some(0));
        for _ in 0..1000 {
            assert_eq!(throttle.admit(), None);
        }
        throttle.next_ms.store(0, Relaxed);
        assert_eq!(throttle.admit(), Some(1000));
    }
}

//! The circuit breaker in front of Redis: after `threshold` consecutive failures (timeouts or
//! lost connections), commands are not sent for `cool_down`, so callers stop paying the operation
//! timeout; then one probe command goes through, and its success closes the circuit.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The gauge that is 1 while a breaker is open (exported as `metric_names::BREAKER_OPEN`).
pub(crate) const BREAKER_OPEN_METRIC: &str = "cachemacro_breaker_open";

/// The breaker's counters, part of [`Stats`](crate::Stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BreakerStats {
    pub(crate) open: bool,
    pub(crate) trips: u64,
    pub(crate) skips: u64,
}

/// Whether a command may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The circuit is closed.
    Send,
    /// The circuit is open and the cool-down is over: this command is the probe.
    Probe,
    /// The circuit is open: fail at once.
    Skip,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    cool_down: Duration,
    epoch: Instant,
    consecutive_failures: AtomicU32,
    /// While open, when the next probe may go, in µs since `epoch`; 0 while closed.
    open_until_micros: AtomicU64,
    probing: AtomicBool,
    trips: AtomicU64,
    skips: AtomicU64,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cool_down: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cool_down,
            epoch: Instant::now(),
            consecutive_failures: AtomicU32::new(0),
            open_until_micros: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            trips: AtomicU64::new(0),
            skips: AtomicU64::new(0),
        }
    }

    /// Admits a command, or `None` while the circuit is open. The pass must be given back with
    /// [`Pass::record`]; a probe whose command is dropped before it answers hands the probe on.
    pub(crate) fn pass(&self) -> Option<Pass<'_>> {
        match self.admit() {
            Admission::Skip => None,
            admission => Some(Pass {
                breaker: self,
                admission,
                recorded: false,
            }),
        }
    }

    fn admit(&self) -> Admission {
        let open_until = self.open_until_micros.load(Relaxed);
        if open_until == 0 {
            return Admission::Send;
        }
        // Stored one past the deadline (see `open_until`).
        if self.now_micros() + 1 >= open_until && !self.probing.swap(true, Relaxed) {
            return Admission::Probe;
        }
        self.skips.fetch_add(1, Relaxed);
        Admission::Skip
    }

    /// Records the outcome of an admitted command; `failed` only for timeouts and lost
    /// connections (a server error reply proves the server is up).
    fn record(&self, admission: Admission, failed: bool) {
        if failed {
            let failures = self.consecutive_failures.fetch_add(1, Relaxed) + 1;
            if admission == Admission::Probe {
                self.open_until(self.now_micros() + self.cool_down_micros());
                self.probing.store(false, Relaxed);
                tracing::debug!("cache circuit probe failed; staying open");
            } else if failures >= self.threshold && self.open_until_micros.load(Relaxed) == 0 {
                self.open_until(self.now_micros() + self.cool_down_micros());
                self.trips.fetch_add(1, Relaxed);
                metrics::gauge!(BREAKER_OPEN_METRIC).set(1.0);
                tracing::warn!(
                    failures,
                    cool_down = ?self.cool_down,
                    "cache circuit opened: Redis is failing; calls go straight to their functions"
                );
            }
        } else if self.consecutive_failures.load(Relaxed) != 0 || admission == Admission::Probe {
            self.consecutive_failures.store(0, Relaxed);
            if self.open_until_micros.swap(0, Relaxed) != 0 {
                metrics::gauge!(BREAKER_OPEN_METRIC).set(0.0);
                tracing::info!("cache circuit closed: Redis answers again");
            }
            self.probing.store(false, Relaxed);
        }
    }

    /// A probe that never answered (its caller was dropped) proves nothing either way: the next
    /// command after the cool-down probes again. Without this the breaker would stay open for good.
    fn abandon(&self, admission: Admission) {
        if admission == Admission::Probe {
            self.probing.store(false, Relaxed);
        }
    }

    pub(crate) fn stats(&self) -> BreakerStats {
        BreakerStats {
            open: self.open_until_micros.load(Relaxed) != 0,
            trips: self.trips.load(Relaxed),
            skips: self.skips.load(Relaxed),
        }
    }

    fn open_until(&self, micros: u64) {
        // 0 means closed, so the deadline is stored one past itself: an opening at the epoch
        // with no cool-down admits a probe at once.
        self.open_until_micros.store(micros + 1, Relaxed);
    }

    fn now_micros(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn cool_down_micros(&self) -> u64 {
        self.cool_down.as_micros() as u64
    }
}

/// An admitted command's right to report its outcome.
pub(crate) struct Pass<'a> {
    breaker: &'a Breaker,
    admission: Admission,
    recorded: bool,
}

impl Pass<'_> {
    /// Records the command's outcome: `failed` only for timeouts and lost connections.
    pub(crate) fn record(mut self, failed: bool) {
        self.recorded = true;
        self.breaker.record(self.admission, failed);
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            self.breaker.abandon(self.admission);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_closes_after_a_good_probe() {
        let breaker = Breaker::new(3, Duration::ZERO);
        for _ in 0..2 {
            breaker.record(breaker.admit(), true);
        }
        assert!(!breaker.stats().open);
        breaker.record(breaker.admit(), true);
        assert_eq!(
            breaker.stats(),
            BreakerStats {
                open: true,
                trips: 1,
                skips: 0
            }
        );

        let probe = breaker.admit();
        assert_eq!(probe, Admission::Probe);
        assert_eq!(breaker.admit(), Admission::Skip, "one probe at a time");
        breaker.record(probe, false);
        assert!(!breaker.stats().open);
        assert_eq!(breaker.admit(), Admission::Send);
    }

    #[test]
    fn a_dropped_probe_does_not_wedge_the_breaker() {
        let breaker = Breaker::new(1, Duration::ZERO);
        breaker.pass().expect("closed").record(true);
        assert!(breaker.stats().open);
        let probe = breaker.pass().expect("cool-down over: a probe");
        assert!(breaker.pass().is_none(), "one probe at a time");
        drop(probe);
        let probe = breaker
            .pass()
            .expect("the dropped probe handed the probe on");
        probe.record(false);
        assert!(!breaker.stats().open);
    }

    #[test]
    fn a_failed_probe_keeps_it_open_and_a_success_resets_the_count() {
        let breaker = Breaker::new(2, Duration::from_secs(3600));
        breaker.record(Admission::Send, true);
        breaker.record(Admission::Send, false);
        breaker.record(Admission::Send, true);
        assert!(!breaker.stats().open, "failures were not consecutive");
        breaker.record(Admission::Send, true);
        assert!(breaker.stats().open);
        assert_eq!(breaker.admit(), Admission::Skip, "cooling down");
        assert_eq!(breaker.stats().skips, 1);
    }
}

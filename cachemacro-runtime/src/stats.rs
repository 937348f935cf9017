//! Hit-rate and stampede-protection monitoring.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::breaker::BreakerStats;

/// Declares the counters once: the snapshot's fields, the atomic counters and their increments.
macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident => $increment:ident,)*) => {
        /// A snapshot of a cache's counters, from [`Cache::stats`](crate::Cache::stats).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Stats {
            $($(#[doc = $doc])* pub $name: u64,)*
            /// Whether the circuit breaker in front of Redis is open now: commands are skipped
            /// and calls go straight to their functions. Always `false` for the memory backend.
            pub breaker_open: bool,
            /// How many times the breaker opened.
            pub breaker_trips: u64,
            /// Commands not sent because the breaker was open (each would have waited for the
            /// operation timeout).
            pub breaker_skips: u64,
        }

        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $($name: AtomicU64,)*
        }

        impl Counters {
            $(pub(crate) fn $increment(&self) {
                self.$name.fetch_add(1, Relaxed);
            })*

            pub(crate) fn snapshot(&self, breaker: BreakerStats) -> Stats {
                Stats {
                    $($name: self.$name.load(Relaxed),)*
                    breaker_open: breaker.open,
                    breaker_trips: breaker.trips,
                    breaker_skips: breaker.skips,
                }
            }
        }
    };
}

counters! {
    /// Reads answered from the cache, stale ones included.
    hits => hit,
    /// Reads that found no usable entry.
    misses => miss,
    /// Loader runs started by callers on a miss (background refreshes are counted apart).
    loads => load,
    /// Loader runs (on a miss or a refresh) that never finished because their caller dropped
    /// the call's future: a timeout, a `select!`, a client that went away.
    loads_cancelled => load_cancelled,
    /// Loader runs (on a miss or a refresh) that panicked.
    loads_panicked => load_panicked,
    /// Backend operations that failed or timed out (not those the open breaker skipped); the
    /// caller was served anyway.
    errors => error,
    /// Entries that did not decode (foreign bytes, older schema, wrong type) and were treated as
    /// misses; each is also counted in `misses`.
    decode_errors => decode_error,
    /// Hits on an entry past its ttl but inside its `stale` window.
    stale_hits => stale_hit,
    /// Refreshes started by a hit before the entry expired (XFetch).
    early_refreshes => early_refresh,
    /// Refreshes started by a stale hit.
    stale_refreshes => stale_refresh,
    /// Callers that waited for a load already running in this process instead of loading.
    coalesced => coalesce,
    /// Misses that found another process's fill lock and waited for its value.
    lock_waits => lock_wait,
    /// Waits for another's fill that ran out of `lock_timeout`; the caller then loaded itself.
    lock_timeouts => lock_timeout,
    /// Refreshes whose loader failed; the entry was left as it was.
    refresh_failures => refresh_failure,
    /// Loaded values not stored because their key or one of their tags was invalidated while
    /// they loaded, or their version was evicted (the fill guard); the caller still got the
    /// value.
    fills_discarded => fill_discarded,
    /// Values larger than the cache's `max_value_size`: returned to the caller, not stored.
    oversized => oversize,
    /// Invalidations that failed (Redis unavailable, out of memory, ...) and were queued for
    /// retry.
    invalidations_queued => invalidation_queued,
    /// Queued invalidations carried out once Redis answered again.
    invalidations_replayed => invalidation_replayed,
    /// Queued invalidations dropped because the queue was full (oldest first); each is logged.
    invalidations_lost => invalidation_lost,
}

impl Stats {
    /// Hits divided by reads, or 0.0 before the first read.
    pub fn hit_rate(&self) -> f64 {
        let reads = self.hits + self.misses;
        if reads == 0 {
            0.0
        } else {
            self.hits as f64 / reads as f64
        }
    }
}

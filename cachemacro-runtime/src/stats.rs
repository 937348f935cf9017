//! Hit-rate and stampede-protection monitoring.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::breaker::BreakerStats;

/// Declares the counters once: the snapshot's fields, the atomic counters and their increments.
macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident: $kind:ty => $increment:ident,)*) => {
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
            /// Calls answered by the near cache ([`CacheBuilder::local`](crate::CacheBuilder::local)),
            /// with no I/O and no decode; each is also counted in `hits`.
            pub l1_hits: u64,
            /// Calls the near cache could not answer, which went on to Redis.
            pub l1_misses: u64,
            /// Near-cache entries dropped by invalidations (another process's write reported by
            /// Redis, or this process's own), tags invalidated, and flushes (the tracking
            /// connection lost, or Redis flushed).
            pub l1_invalidations: u64,
        }

        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $($name: $kind,)*
            /// The cache's name, the `cache` label of the metrics counted here.
            cache_name: std::sync::Arc<str>,
        }

        impl Counters {
            /// The counters of the cache named `cache_name`.
            pub(crate) fn named(cache_name: &str) -> Self {
                Self {
                    cache_name: std::sync::Arc::from(cache_name),
                    ..Self::default()
                }
            }

            /// Counts a cache-wide event also in the metric `name`, labelled by cache.
            pub(crate) fn export(&self, name: &'static str) {
                metrics::counter!(name, "cache" => self.cache_name.to_string()).increment(1);
            }

            $(pub(crate) fn $increment(&self) {
                self.$name.add_one();
            })*

            pub(crate) fn snapshot(&self, breaker: BreakerStats, near: NearStats) -> Stats {
                Stats {
                    $($name: self.$name.total(),)*
                    breaker_open: breaker.open,
                    breaker_trips: breaker.trips,
                    breaker_skips: breaker.skips,
                    l1_hits: near.hits,
                    l1_misses: near.misses,
                    l1_invalidations: near.invalidations,
                }
            }
        }
    };
}

counters! {
    /// Reads answered from the cache, stale ones included.
    hits: Striped => hit,
    /// Reads that found no usable entry.
    misses: Striped => miss,
    /// Loader runs started by callers on a miss (background refreshes are counted apart).
    loads: AtomicU64 => load,
    /// Loader runs (on a miss or a refresh) that never finished because their caller dropped
    /// the call's future: a timeout, a `select!`, a client that went away.
    loads_cancelled: AtomicU64 => load_cancelled,
    /// Loader runs (on a miss or a refresh) that panicked.
    loads_panicked: AtomicU64 => load_panicked,
    /// Backend operations that failed or timed out (not those the open breaker skipped); the
    /// caller was served anyway.
    errors: AtomicU64 => error,
    /// Entries that did not decode (foreign bytes, older schema, wrong type) and were treated as
    /// misses; each is also counted in `misses`.
    decode_errors: AtomicU64 => decode_error,
    /// Hits on an entry past its ttl but inside its `stale` window.
    stale_hits: AtomicU64 => stale_hit,
    /// Refreshes started by a hit before the entry expired (XFetch).
    early_refreshes: AtomicU64 => early_refresh,
    /// Refreshes started by a stale hit.
    stale_refreshes: AtomicU64 => stale_refresh,
    /// Callers that waited for a load already running in this process instead of loading.
    coalesced: AtomicU64 => coalesce,
    /// Misses that found another process's fill lock and waited for its value.
    lock_waits: AtomicU64 => lock_wait,
    /// Waits for another's fill that ran out of `lock_timeout`; the caller then loaded itself.
    lock_timeouts: AtomicU64 => lock_timeout,
    /// Refreshes whose loader failed; the entry was left as it was.
    refresh_failures: AtomicU64 => refresh_failure,
    /// Loaded values not stored because their key or one of their tags was invalidated while
    /// they loaded, or their version was evicted (the fill guard); the caller still got the
    /// value.
    fills_discarded: AtomicU64 => fill_discarded,
    /// Values larger than the cache's `max_value_size`: returned to the caller, not stored.
    oversized: AtomicU64 => oversize,
    /// Invalidations that failed (Redis unavailable, out of memory, ...) and were queued for
    /// retry.
    invalidations_queued: AtomicU64 => invalidation_queued,
    /// Queued invalidations carried out once Redis answered again.
    invalidations_replayed: AtomicU64 => invalidation_replayed,
    /// Queued invalidations dropped because the queue was full (oldest first); each is logged.
    invalidations_lost: AtomicU64 => invalidation_lost,
}

/// The near cache's counters, kept by the near cache.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NearStats {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) invalidations: u64,
}

/// A counter that callers on every thread increment.
/// A counter: added to by many threads, read as a total.
pub(crate) trait Count {
    fn add_one(&self);
    fn total(&self) -> u64;
}

impl Count for AtomicU64 {
    fn add_one(&self) {
        self.fetch_add(1, Relaxed);
    }

    fn total(&self) -> u64 {
        self.load(Relaxed)
    }
}

/// How many cache lines a [`Striped`] counter spreads over.
const STRIPES: usize = 8;

/// A counter split over cache lines, each thread adding to its own: a counter incremented by
/// every hit would otherwise bounce one cache line between the cores of a multi-thread runtime
/// on every call. Reading sums the stripes, which only [`Cache::stats`](crate::Cache::stats)
/// does.
#[derive(Debug, Default)]
pub(crate) struct Striped([Padded; STRIPES]);

/// One stripe, alone on its cache line (two 64-byte lines: adjacent-line prefetch pairs them).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

impl Striped {
    fn stripe() -> usize {
        use std::sync::atomic::AtomicUsize;
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        thread_local! {
            static STRIPE: usize = NEXT.fetch_add(1, Relaxed) % STRIPES;
        }
        STRIPE.with(|stripe| *stripe)
    }
}

impl Count for Striped {
    fn add_one(&self) {
        self.0[Self::stripe()].0.fetch_add(1, Relaxed);
    }

    fn total(&self) -> u64 {
        self.0.iter().map(|stripe| stripe.0.load(Relaxed)).sum()
    }
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

#[cfg(test)]
mod tests {
    use super::{Counters, STRIPES};

    #[test]
    fn striped_counters_sum_every_thread() {
        let counters = Counters::default();
        let threads = 2 * STRIPES + 1;
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| (0..1000).for_each(|_| counters.hit()));
            }
        });
        counters.miss();
        let stats = counters.snapshot(Default::default(), Default::default());
        assert_eq!(stats.hits, 1000 * threads as u64);
        assert_eq!(stats.misses, 1);
        assert_eq!(stats.loads, 0);
    }
}

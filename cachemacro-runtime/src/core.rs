//! The core of a cache, under every handle: the backend, the counters, the loads in flight, the
//! invalidations waiting for replay, and the options calls read. The engine's steps (`aside`,
//! `fill`, `write`, `invalidate`) take it; it never names them, nor the handle over it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{FillKeys, MemoryBackend, RedisBackend};
use crate::codec::Encoding;
use crate::error::{Error, ErrorKind};
use crate::flight::Flights;
use crate::function::Functions;
use crate::key::companion;
use crate::near::Near;
use crate::on_cache_error::OnCacheError;
use crate::pending::PendingInvalidations;
use crate::policy::Policy;
use crate::stats::{Counters, Stats};

/// A step of the engine: a future boxed behind a plain function, so that it is compiled in this
/// crate only, not in every crate that awaits it (see `fill.rs`).
pub(crate) type Step<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What separates the cache's prefix from the tag in the key of a tag's epoch.
pub(crate) const EPOCH_MARK: &str = "tag#";

/// What every handle of one cache shares. Engine steps take it as `&Core`, or as `&Arc<Core>`
/// when they spawn a task that outlives the call.
pub(crate) struct Core {
    pub(crate) store: Store,
    pub(crate) key_prefix: String,
    pub(crate) default_ttl: Duration,
    pub(crate) counters: Counters,
    /// Each cached function's counters, by name.
    pub(crate) functions: Functions,
    pub(crate) flights: Arc<Flights>,
    pub(crate) ttl_profiles: HashMap<String, Duration>,
    pub(crate) max_value_size: usize,
    pub(crate) on_cache_error: OnCacheError,
    /// How functions that name no codec or compression write their entries.
    pub(crate) encoding: Encoding,
    pub(crate) pending: PendingInvalidations,
    /// The near cache (L1), when the builder asked for one.
    pub(crate) near: Option<Near>,
}

/// The backend behind a cache, dispatched statically so the hit path has no virtual call.
pub(crate) enum Store {
    Memory(MemoryBackend),
    Redis(RedisBackend),
}

/// Calls `$body` with `$backend` bound to whichever backend `$store` holds.
macro_rules! with_backend {
    ($store:expr, $backend:ident => $body:expr) => {
        match $store {
            Store::Memory($backend) => $body,
            Store::Redis($backend) => $body,
        }
    };
}
pub(crate) use with_backend;

impl Core {
    /// How long a function's entries are fresh: its profile's ttl, else its own, else the
    /// cache's default.
    pub(crate) fn fresh_ttl(&self, policy: &Policy) -> Duration {
        policy
            .ttl_profile
            .and_then(|name| self.ttl_profiles.get(name).copied())
            .or(policy.ttl_value())
            .unwrap_or(self.default_ttl)
    }

    /// How a function writes and reads its entries: its own codec and compression, else the
    /// cache's.
    #[inline]
    pub(crate) fn encoding(&self, policy: &Policy) -> Encoding {
        Encoding {
            codec: policy.codec.unwrap_or(self.encoding.codec),
            compression: policy.compression.unwrap_or(self.encoding.compression),
        }
    }

    /// The key of the epoch of `tag`, inside this cache's prefix.
    pub(crate) fn epoch_key(&self, tag: &str) -> String {
        [self.key_prefix.as_str(), EPOCH_MARK, tag].concat()
    }

    /// The tag whose epoch is under `epoch_key`, a key made by [`epoch_key`](Self::epoch_key)
    /// or [`epoch_key_builder`](crate::__private::epoch_key_builder) for this cache.
    pub(crate) fn tag_name<'k>(&self, epoch_key: &'k str) -> &'k str {
        let start = self.key_prefix.len() + EPOCH_MARK.len();
        epoch_key.get(start..).unwrap_or(epoch_key)
    }

    /// The full key `key` and its companions: version and fill lock.
    pub(crate) fn fill_keys(&self, key: &str) -> FillKeys {
        let prefix = &self.key_prefix;
        FillKeys {
            entry: key.to_owned(),
            version: companion(prefix, key, "#v"),
            lock: companion(prefix, key, "#lock"),
        }
    }

    /// The backend key for a user key: the cache-wide prefix followed by `key`.
    pub(crate) fn full_key(&self, key: &str) -> String {
        let mut full = String::with_capacity(self.key_prefix.len() + key.len());
        full.push_str(&self.key_prefix);
        full.push_str(key);
        full
    }

    /// Counts a backend fault (commands skipped by the open breaker are counted by the breaker)
    /// and records it for the current call.
    pub(crate) fn record_fault(&self, error: &Error) {
        if error.kind() != ErrorKind::CircuitOpen {
            self.counters.error();
        }
        crate::faults::note_fault(error);
    }

    /// Counters since the cache was built.
    pub(crate) fn stats(&self) -> Stats {
        let breaker = match &self.store {
            Store::Memory(_) => Default::default(),
            Store::Redis(backend) => backend.breaker_stats(),
        };
        let near = self.near.as_ref().map(Near::stats).unwrap_or_default();
        self.counters.snapshot(breaker, near)
    }
}

#[cfg(test)]
impl Core {
    /// An embedded core with the prefix `t:`, for the engine's unit tests.
    pub(crate) fn for_tests() -> Arc<Core> {
        Arc::new(Core {
            store: Store::Memory(MemoryBackend::new(1 << 20)),
            key_prefix: "t:".to_owned(),
            default_ttl: Duration::from_secs(60),
            counters: Counters::default(),
            functions: Functions::new("test"),
            flights: Arc::default(),
            ttl_profiles: HashMap::new(),
            max_value_size: 1 << 20,
            on_cache_error: OnCacheError::Ignore,
            encoding: Encoding::default(),
            pending: PendingInvalidations::default(),
            near: None,
        })
    }

    /// The bytes stored under the full key `key`.
    pub(crate) async fn raw(&self, key: &str) -> Option<Vec<u8>> {
        use crate::backend::Backend;
        with_backend!(&self.store, backend => backend.get(key).await.ok().flatten().map(|bytes| AsRef::<[u8]>::as_ref(&bytes).to_vec()))
    }

    /// The key of the epoch of `tag`, as a cached function hands it over.
    pub(crate) fn tag_key(&self, tag: &str) -> crate::key::Key {
        let mut builder = crate::key::KeyBuilder::with_capacity(32);
        builder.literal(&self.epoch_key(tag));
        builder.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_derive_from_the_prefix() {
        let core = Core::for_tests();
        assert_eq!(core.full_key("user:1"), "t:user:1");
        assert_eq!(core.epoch_key("org:7"), "t:tag#org:7");
        assert_eq!(core.tag_name(&core.epoch_key("org:7")), "org:7");
        let keys = core.fill_keys("t:user:1");
        assert_eq!(keys.entry, "t:user:1");
        assert_ne!(keys.version, keys.lock);
        assert!(keys.version.starts_with("t:") && keys.lock.starts_with("t:"));
    }

    #[test]
    fn a_profile_wins_over_the_functions_ttl_which_wins_over_the_default() {
        let mut core = Arc::try_unwrap(Core::for_tests()).ok().expect("one handle");
        core.ttl_profiles
            .insert("short".to_owned(), Duration::from_secs(5));
        let own = Policy::new().ttl(Duration::from_secs(30));
        assert_eq!(core.fresh_ttl(&Policy::new()), Duration::from_secs(60));
        assert_eq!(core.fresh_ttl(&own), Duration::from_secs(30));
        assert_eq!(
            core.fresh_ttl(&own.ttl_profile("short")),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn faults_are_counted_unless_the_breaker_skipped_the_command() {
        let core = Core::for_tests();
        core.record_fault(&Error::new(ErrorKind::Timeout, ""));
        core.record_fault(&Error::new(ErrorKind::CircuitOpen, ""));
        assert_eq!(core.stats().errors, 1);
    }
}

//! Per-function caching options, built at compile time by the `#[cached]` expansion.

use std::time::Duration;

use crate::codec::{Codec, Compression};
use crate::function::Function;
use crate::on_cache_error::OnCacheError;

const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// How one cached function stores, protects and refreshes its results.
///
/// Built by the generated code in a `static`, so every field is set by a `const fn`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    ttl: Option<Duration>,
    negative_ttl: Option<Duration>,
    pub(crate) lock: bool,
    pub(crate) lock_timeout: Duration,
    pub(crate) early_refresh: bool,
    pub(crate) beta: f64,
    pub(crate) stale: Option<Duration>,
    pub(crate) sliding: bool,
    pub(crate) ttl_profile: Option<&'static str>,
    pub(crate) on_cache_error: Option<OnCacheError>,
    pub(crate) function: Option<&'static Function>,
    pub(crate) codec: Option<Codec>,
    pub(crate) compression: Option<Compression>,
}

impl Policy {
    /// The defaults: the cache's ttl, `None` not cached, fill lock on with a 5 s timeout, early
    /// refresh on with `beta = 1.0`, no stale window.
    pub const fn new() -> Self {
        Self {
            ttl: None,
            negative_ttl: None,
            lock: true,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            early_refresh: true,
            beta: 1.0,
            stale: None,
            sliding: false,
            ttl_profile: None,
            on_cache_error: None,
            function: None,
            codec: None,
            compression: None,
        }
    }

    /// Entries are fresh for `ttl` instead of the cache's default.
    pub const fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// How long a `None` result stays cached; `None` here means it is not cached at all.
    pub const fn negative_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// Whether a miss takes the distributed fill lock, so one caller across all processes loads.
    pub const fn lock(mut self, lock: bool) -> Self {
        self.lock = lock;
        self
    }

    /// The longest a caller waits for another's fill before loading itself; also the lock's ttl,
    /// so the lock of a holder that died frees itself after this long.
    pub const fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Whether hits may refresh an entry before it expires (XFetch).
    pub const fn early_refresh(mut self, early_refresh: bool) -> Self {
        self.early_refresh = early_refresh;
        self
    }

    /// XFetch's `beta`: above 1.0 refreshes earlier, below later.
    pub const fn beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }

    /// How long after its ttl an entry is still served while it is refreshed in the background,
    /// and while the loader fails (stale-while-revalidate and fail-safe).
    pub const fn stale(mut self, window: Duration) -> Self {
        self.stale = Some(window);
        self
    }

    /// Each hit restarts the ttl (`GETEX`), for sessions; no early refresh or stale window.
    pub const fn sliding(mut self, sliding: bool) -> Self {
        self.sliding = sliding;
        self
    }

    /// Looks the ttl up at run time under this name in the cache's table of profiles (set by
    /// [`CacheBuilder::ttl_profile`](crate::CacheBuilder::ttl_profile) or the environment);
    /// falls back to [`ttl`](Self::ttl), then the cache's default.
    pub const fn ttl_profile(mut self, name: &'static str) -> Self {
        self.ttl_profile = Some(name);
        self
    }

    /// What to do when a cache operation fails, instead of the cache's setting.
    pub const fn on_cache_error(mut self, mode: OnCacheError) -> Self {
        self.on_cache_error = Some(mode);
        self
    }

    /// Counts the calls under `function`'s name (statistics and metrics).
    pub const fn function(mut self, function: &'static Function) -> Self {
        self.function = Some(function);
        self
    }

    /// Serializes values with `codec` instead of the cache's default codec.
    pub const fn codec(mut self, codec: Codec) -> Self {
        self.codec = Some(codec);
        self
    }

    /// Compresses values as `compression` says instead of the cache's default.
    pub const fn compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// Compresses from `min_size` bytes on, with the compression set by
    /// [`compression`](Self::compression).
    pub const fn compress_above(mut self, min_size: usize) -> Self {
        if let Some(compression) = self.compression {
            self.compression = Some(compression.above(min_size));
        }
        self
    }

    pub(crate) fn ttl_value(&self) -> Option<Duration> {
        self.ttl
    }

    pub(crate) fn negative_ttl_value(&self) -> Option<Duration> {
        self.negative_ttl
    }

    /// How long the backend keeps an entry that is fresh for `ttl`: the stale window longer.
    pub(crate) fn retention(&self, ttl: Duration) -> Duration {
        ttl + self.stale.unwrap_or(Duration::ZERO)
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::new()
    }
}

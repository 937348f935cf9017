//! Where entries live: the storage interface and its two implementations.
//!
//! Both backends store opaque envelopes (see [`crate::envelope`]) under full keys (prefix
//! included) and are held to the same behaviour by one conformance suite.
//!
//! Next to each entry key `k` a backend keeps, in the same Redis Cluster hash slot
//! (companion keys):
//! - `{k}#v`, the key's version: bumped by every invalidation and write-through, read when a
//!   fill starts and compared when it ends, so a load that began before an invalidation can never
//!   store what it read (the fill guard, after memcache's leases);
//! - `{k}#lock`, the fill lock.
//!
//! Each tag `t` has an index of the keys filled or written with it, scored by when they expire;
//! expired members are trimmed whenever the index is written, and the index itself expires with
//! its last member.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;

mod memory;
pub(crate) mod redis;

pub use self::memory::MemoryBackend;
pub use self::redis::RedisBackend;

/// How long a version outlives the last invalidation that bumped it. It must outlive every fill
/// that read it: a fill that read "no version", then saw it created and expire again before
/// storing, would store data older than the invalidation.
pub const VERSION_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// A key's version; `None` when it has never been invalidated (or its version expired), which is
/// distinct from every bumped version.
pub type Version = Option<u64>;

/// What a fill found when it started.
#[derive(Debug)]
pub struct FillStart<B> {
    /// Whether the fill lock was requested and taken.
    pub locked: bool,
    /// The key's version, to be checked when the fill stores its value.
    pub version: Version,
    /// The entry under the key, read after taking the lock (another process may have stored it
    /// between the caller's miss and its lock); `None` when not locked.
    pub current: Option<B>,
}

/// The storage operations the cache needs from a backend.
pub trait Backend: Send + Sync + 'static {
    /// The bytes a read returns, borrowed or owned as the backend finds cheapest.
    type Bytes: AsRef<[u8]> + Send;

    /// Reads the entry under `key`, `None` when there is none.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Self::Bytes>>> + Send;

    /// Reads the entry under `key` and restarts its ttl at `ttl` (sliding expiry, one round trip).
    fn get_and_touch(
        &self,
        key: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<Option<Self::Bytes>>> + Send;

    /// Stores `value` under `key` as is; the backend drops it after `ttl`. Leaves the version
    /// alone: this is the raw write, not an invalidation.
    fn set(
        &self,
        key: &str,
        value: Arc<[u8]>,
        ttl: Duration,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Removes the entry under `key` as is; whether there was one.
    fn delete(&self, key: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Starts a fill of `key`: takes its fill lock for `lock = (token, ttl)` when given (unless
    /// someone holds it; it frees itself after `ttl`, so a holder that dies blocks nobody for
    /// longer), reads its version, and when locked reads the entry again, all at once.
    fn begin_fill(
        &self,
        key: &str,
        lock: Option<(&str, Duration)>,
    ) -> impl Future<Output = Result<FillStart<Self::Bytes>>> + Send;

    /// Ends a fill: stores `value` (when given) only if the key's version is still `version`,
    /// and frees the fill lock if `token` (when given) still holds it: it may have expired and
    /// been taken by another, whose lock must survive. Whether the value was stored.
    fn finish_fill(
        &self,
        key: &str,
        value: Option<(Arc<[u8]>, Duration)>,
        version: Version,
        token: Option<&str>,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Bumps the version of `key` (voiding fills in flight) and removes its entry.
    fn invalidate(&self, key: &str) -> impl Future<Output = Result<()>> + Send;

    /// Bumps the version of `key` (voiding fills in flight) and stores `value`: write-through.
    fn put(
        &self,
        key: &str,
        value: Arc<[u8]>,
        ttl: Duration,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Records that `member` carries `tag` until `expires_at_ms` (ms since the Unix epoch), and
    /// trims members that have expired.
    fn tag(
        &self,
        tag: &str,
        member: &str,
        expires_at_ms: u64,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Invalidates every member of `tag` as [`invalidate`](Self::invalidate) does, and removes
    /// them from its index. How many there were.
    fn invalidate_tag(&self, tag: &str) -> impl Future<Output = Result<u64>> + Send;

    /// How many members the index of `tag` holds, expired ones not yet trimmed included.
    fn tag_len(&self, tag: &str) -> impl Future<Output = Result<u64>> + Send;
}

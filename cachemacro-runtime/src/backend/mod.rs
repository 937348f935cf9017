//! Where entries live: the storage interface and its two implementations.
//!
//! Both backends store opaque envelopes (see [`crate::envelope`]) under full keys (prefix
//! included) and are held to the same behaviour by one conformance suite.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;

mod memory;
mod redis;

pub use self::memory::MemoryBackend;
pub use self::redis::RedisBackend;

/// The storage operations the cache needs from a backend.
pub trait Backend: Send + Sync + 'static {
    /// The bytes a read returns, borrowed or owned as the backend finds cheapest.
    type Bytes: AsRef<[u8]> + Send;

    /// Reads the entry under `key`, `None` when there is none.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Self::Bytes>>> + Send;

    /// Stores `value` under `key`; the backend drops it after `ttl`.
    fn set(
        &self,
        key: &str,
        value: Arc<[u8]>,
        ttl: Duration,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Removes the entry under `key`; whether there was one.
    fn delete(&self, key: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Takes the lock `key` for `token` unless someone holds it; it frees itself after `ttl`, so
    /// a holder that dies blocks nobody for longer. Whether this call took it.
    fn try_lock(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Frees the lock `key` if `token` still holds it (it may have expired and been taken by
    /// someone else, whose lock must survive). Whether it was freed.
    fn unlock(&self, key: &str, token: &str) -> impl Future<Output = Result<bool>> + Send;
}

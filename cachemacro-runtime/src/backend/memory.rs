//! The embedded backend: an in-process, size-bounded, TTL-aware store on moka.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::future::Cache as Moka;
use moka::Expiry;

use super::Backend;
use crate::error::Result;

/// An in-process store bounded by the total size of its entries in bytes.
#[derive(Clone)]
pub struct MemoryBackend {
    entries: Moka<String, Entry>,
    locks: Arc<Mutex<HashMap<String, Lock>>>,
}

struct Lock {
    token: String,
    expires: Instant,
}

/// Past this many locks, expired ones are swept on the next `try_lock`.
const LOCK_SWEEP_THRESHOLD: usize = 1024;

#[derive(Clone)]
struct Entry {
    bytes: Arc<[u8]>,
    ttl: Duration,
}

struct EntryTtl;

impl Expiry<String, Entry> for EntryTtl {
    fn expire_after_create(&self, _key: &String, entry: &Entry, _now: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        entry: &Entry,
        _now: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

impl MemoryBackend {
    /// A store holding at most `capacity_bytes` of keys and values.
    pub fn new(capacity_bytes: u64) -> Self {
        let entries = Moka::builder()
            .max_capacity(capacity_bytes)
            .weigher(|key: &String, entry: &Entry| {
                u32::try_from(key.len() + entry.bytes.len()).unwrap_or(u32::MAX)
            })
            .expire_after(EntryTtl)
            .build();
        Self {
            entries,
            locks: Arc::default(),
        }
    }
}

impl std::fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl Backend for MemoryBackend {
    type Bytes = Arc<[u8]>;

    async fn get(&self, key: &str) -> Result<Option<Arc<[u8]>>> {
        Ok(self.entries.get(key).await.map(|entry| entry.bytes))
    }

    async fn set(&self, key: &str, value: Arc<[u8]>, ttl: Duration) -> Result<()> {
        let entry = Entry { bytes: value, ttl };
        self.entries.insert(key.to_owned(), entry).await;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        Ok(self.entries.remove(key).await.is_some())
    }

    async fn try_lock(&self, key: &str, token: &str, ttl: Duration) -> Result<bool> {
        let now = Instant::now();
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if locks.len() > LOCK_SWEEP_THRESHOLD {
            locks.retain(|_, lock| lock.expires > now);
        }
        if locks.get(key).is_some_and(|lock| lock.expires > now) {
            return Ok(false);
        }
        let lock = Lock {
            token: token.to_owned(),
            expires: now + ttl,
        };
        locks.insert(key.to_owned(), lock);
        Ok(true)
    }

    async fn unlock(&self, key: &str, token: &str) -> Result<bool> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let held = locks.get(key).is_some_and(|lock| lock.token == token);
        if held {
            locks.remove(key);
        }
        Ok(held)
    }
}

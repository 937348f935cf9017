//! The embedded backend: an in-process, size-bounded, TTL-aware store on moka, with versions,
//! fill locks and tag epochs kept beside it under one mutex so each operation is atomic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use moka::sync::Cache as Moka;
use moka::Expiry;

use super::{
    new_token, Backend, Begin, Epochs, FillKeys, FillStart, Found, Stored, Token, VERSION_TTL,
};
use crate::error::Result;

/// An in-process store bounded by the total size of its entries in bytes.
#[derive(Clone)]
pub struct MemoryBackend {
    entries: Moka<String, Entry>,
    meta: Arc<Mutex<Meta>>,
}

#[derive(Clone)]
struct Entry {
    bytes: Arc<[u8]>,
    ttl: Duration,
    /// Whether reads restart the ttl.
    sliding: bool,
}

struct EntryTtl;

impl Expiry<String, Entry> for EntryTtl {
    fn expire_after_create(&self, _: &String, entry: &Entry, _: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_read(
        &self,
        _: &String,
        entry: &Entry,
        _: Instant,
        remaining: Option<Duration>,
        _: Instant,
    ) -> Option<Duration> {
        if entry.sliding {
            Some(entry.ttl)
        } else {
            remaining
        }
    }
}

/// Everything beside the entries: versions, locks and tag epochs, swept as they grow.
#[derive(Default)]
struct Meta {
    versions: Expiring<Token>,
    locks: Expiring<String>,
    epochs: Expiring<Token>,
}

impl Meta {
    /// The live epoch of the tag whose epoch key is `tag`.
    fn epoch(&self, tag: &str, now: Instant) -> Option<Token> {
        self.epochs.get(tag, now).copied()
    }
}

/// A map whose values lapse at a deadline; lapsed ones are swept each time the map doubles.
struct Expiring<V> {
    values: HashMap<String, (V, Instant)>,
    sweep_at: usize,
}

impl<V> Default for Expiring<V> {
    fn default() -> Self {
        Self {
            values: HashMap::new(),
            sweep_at: 64,
        }
    }
}

impl<V> Expiring<V> {
    fn get(&self, key: &str, now: Instant) -> Option<&V> {
        self.values
            .get(key)
            .filter(|(_, until)| *until > now)
            .map(|(value, _)| value)
    }

    fn insert(&mut self, key: &str, value: V, until: Instant) {
        if self.values.len() >= self.sweep_at {
            let now = Instant::now();
            self.values.retain(|_, (_, until)| *until > now);
            self.sweep_at = (self.values.len() * 2).max(64);
        }
        self.values.insert(key.to_owned(), (value, until));
    }

    /// Pushes the deadline of `key` to `until` when that is later.
    fn extend(&mut self, key: &str, until: Instant) {
        if let Some((_, deadline)) = self.values.get_mut(key) {
            *deadline = (*deadline).max(until);
        }
    }

    /// Removes every value whose key `removes` picks.
    fn remove_where(&mut self, mut removes: impl FnMut(&str) -> bool) {
        self.values.retain(|key, _| !removes(key));
    }

    fn remove(&mut self, key: &str) {
        self.values.remove(key);
    }
}

impl<V: Copy> Expiring<V> {
    /// The live value under `key`, or `create()` stored until `until`.
    fn get_or_create(
        &mut self,
        key: &str,
        now: Instant,
        until: Instant,
        create: impl FnOnce() -> V,
    ) -> V {
        if let Some(value) = self.get(key, now) {
            let value = *value;
            self.extend(key, until);
            return value;
        }
        let value = create();
        self.insert(key, value, until);
        value
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
            meta: Arc::default(),
        }
    }

    /// Every change to entries and their metadata happens under this lock, so a fill's check and
    /// store, an invalidation, and a write-through are atomic with respect to each other. Sliding
    /// reads never write (moka restarts the ttl itself), so they need no lock.
    /// Removes every entry that `clear` selects (see [`Clear`](super::Clear)), with its version
    /// and fill lock, so that no fill in flight for one of them can store. The number of
    /// entries removed.
    pub(crate) fn clear(&self, clear: &super::Clear<'_>) -> u64 {
        let mut meta = self.meta();
        let selected = |key: &str| clear.entry(key).is_some();
        meta.versions.remove_where(selected);
        meta.locks.remove_where(selected);
        let mut removed = 0;
        for (key, _) in self.entries.iter() {
            if clear.is_entry(&key) {
                self.entries.invalidate(key.as_str());
                removed += 1;
            }
        }
        removed
    }

    fn meta(&self) -> MutexGuard<'_, Meta> {
        self.meta
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The bytes under `key`. A plain function, like [`Meta::epoch`], so that the cache's code
    /// is compiled here, not again in each crate whose cached functions read through `read`.
    fn entry(&self, key: &str) -> Option<Arc<[u8]>> {
        self.entries.get(key).map(|entry| entry.bytes)
    }

    fn store(&self, key: &str, stored: Stored) {
        let entry = Entry {
            bytes: stored.bytes,
            ttl: stored.ttl,
            sliding: stored.sliding,
        };
        self.entries.insert(key.to_owned(), entry);
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
        Ok(self.entry(key))
    }

    async fn read<K: AsRef<str> + Sync>(
        &self,
        key: &str,
        tags: &[K],
        _touch: Option<Duration>,
    ) -> Result<Found<Arc<[u8]>>> {
        // Entries stored as sliding restart their own ttl on every read (see `EntryTtl`), so a
        // sliding read is a plain read: nothing is written back that could revive an entry an
        // invalidation just removed.
        if tags.is_empty() {
            return Ok(Found {
                entry: self.entry(key),
                epochs: Epochs::new(),
            });
        }
        // Under the lock, so the entry and the epochs are read at one instant.
        let meta = self.meta();
        let now = Instant::now();
        let entry = self.entry(key);
        let epochs = tags
            .iter()
            .map(|tag| meta.epoch(tag.as_ref(), now))
            .collect();
        Ok(Found { entry, epochs })
    }

    async fn shorten(&self, key: &str, ttl: Duration) -> Result<()> {
        let _meta = self.meta();
        if let Some(entry) = self.entries.get(key) {
            if entry.ttl > ttl {
                self.store(
                    key,
                    Stored {
                        bytes: entry.bytes,
                        ttl,
                        sliding: entry.sliding,
                    },
                );
            }
        }
        Ok(())
    }

    async fn set(&self, key: &str, value: Arc<[u8]>, ttl: Duration) -> Result<()> {
        let _meta = self.meta();
        self.store(
            key,
            Stored {
                bytes: value,
                ttl,
                sliding: false,
            },
        );
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let _meta = self.meta();
        Ok(self.entries.remove(key).is_some())
    }

    async fn begin_fill(&self, keys: &FillKeys, begin: Begin<'_>) -> Result<FillStart<Arc<[u8]>>> {
        let now = Instant::now();
        let mut meta = self.meta();
        let version = meta
            .versions
            .get_or_create(&keys.version, now, now + VERSION_TTL, new_token);
        let epochs = begin
            .tags
            .iter()
            .map(|tag| {
                meta.epochs
                    .get_or_create(tag, now, now + begin.epoch_ttl, new_token)
            })
            .collect();
        let locked = match begin.lock {
            Some((token, ttl)) if meta.locks.get(&keys.lock, now).is_none() => {
                meta.locks.insert(&keys.lock, token.to_owned(), now + ttl);
                true
            }
            _ => false,
        };
        let current = if locked {
            self.entries.get(&keys.entry).map(|entry| entry.bytes)
        } else {
            None
        };
        Ok(FillStart {
            locked,
            version,
            epochs,
            current,
        })
    }

    async fn finish_fill(
        &self,
        keys: &FillKeys,
        version: Token,
        epochs: &[(String, Token)],
        value: Option<Stored>,
        token: Option<&str>,
    ) -> Result<bool> {
        let now = Instant::now();
        let mut meta = self.meta();
        if let Some(token) = token {
            if meta
                .locks
                .get(&keys.lock, now)
                .is_some_and(|holder| holder == token)
            {
                meta.locks.remove(&keys.lock);
            }
        }
        let valid = meta.versions.get(&keys.version, now) == Some(&version)
            && epochs
                .iter()
                .all(|(tag, epoch)| meta.epochs.get(tag, now) == Some(epoch));
        if valid {
            if let Some(value) = value {
                self.store(&keys.entry, value);
            }
        }
        Ok(valid)
    }

    async fn unlock(&self, lock: &str, token: &str) -> Result<()> {
        let mut meta = self.meta();
        if meta
            .locks
            .get(lock, Instant::now())
            .is_some_and(|holder| holder == token)
        {
            meta.locks.remove(lock);
        }
        Ok(())
    }

    async fn invalidate(&self, entry: &str, version: &str) -> Result<()> {
        let mut meta = self.meta();
        meta.versions.remove(version);
        self.entries.invalidate(entry);
        Ok(())
    }

    async fn put(
        &self,
        entry: &str,
        version: &str,
        expected: Option<Token>,
        value: Stored,
    ) -> Result<bool> {
        let mut meta = self.meta();
        let now = Instant::now();
        let in_order =
            expected.is_none_or(|expected| meta.versions.get(version, now) == Some(&expected));
        meta.versions.remove(version);
        if in_order {
            self.store(entry, value);
        } else {
            self.entries.invalidate(entry);
        }
        Ok(in_order)
    }

    async fn epochs(&self, tags: &[String], ttl: Duration) -> Result<Vec<Token>> {
        let now = Instant::now();
        let mut meta = self.meta();
        Ok(tags
            .iter()
            .map(|tag| meta.epochs.get_or_create(tag, now, now + ttl, new_token))
            .collect())
    }

    async fn invalidate_tag(&self, tag: &str) -> Result<()> {
        self.meta().epochs.remove(tag);
        Ok(())
    }
}

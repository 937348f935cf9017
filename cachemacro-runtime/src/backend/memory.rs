//! The embedded backend: an in-process, size-bounded, TTL-aware store on moka, with versions,
//! fill locks and tag indexes kept beside it under one mutex so each operation is atomic.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use moka::sync::Cache as Moka;
use moka::Expiry;

use super::{Backend, FillStart, Version, VERSION_TTL};
use crate::envelope::now_ms;
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

/// Everything beside the entries: small maps swept as they grow.
struct Meta {
    versions: Expiring<u64>,
    locks: Expiring<String>,
    tags: HashMap<String, TagIndex>,
    /// Past this many tags, tags whose members have all expired are dropped.
    sweep_tags_at: usize,
}

impl Default for Meta {
    fn default() -> Self {
        Self {
            versions: Expiring::default(),
            locks: Expiring::default(),
            tags: HashMap::new(),
            sweep_tags_at: 64,
        }
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

    fn remove(&mut self, key: &str) {
        self.values.remove(key);
    }
}

/// The members of one tag with their expiry (ms since the epoch), also ordered by expiry so the
/// expired ones come off the front.
#[derive(Default)]
struct TagIndex {
    members: HashMap<String, u64>,
    by_expiry: BTreeSet<(u64, String)>,
}

impl TagIndex {
    fn add(&mut self, member: &str, expires_at_ms: u64) {
        let expiry = self.members.entry(member.to_owned()).or_insert(0);
        if expires_at_ms > *expiry {
            self.by_expiry.remove(&(*expiry, member.to_owned()));
            *expiry = expires_at_ms;
            self.by_expiry.insert((expires_at_ms, member.to_owned()));
        }
    }

    fn trim(&mut self, now_ms: u64) {
        while let Some((expiry, _)) = self.by_expiry.first() {
            if *expiry > now_ms {
                break;
            }
            if let Some((_, member)) = self.by_expiry.pop_first() {
                self.members.remove(&member);
            }
        }
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

    fn meta(&self) -> MutexGuard<'_, Meta> {
        self.meta
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn store(&self, key: &str, bytes: Arc<[u8]>, ttl: Duration, sliding: bool) {
        let entry = Entry {
            bytes,
            ttl,
            sliding,
        };
        self.entries.insert(key.to_owned(), entry);
    }

    fn bump_version(meta: &mut Meta, key: &str) {
        let now = Instant::now();
        let next = meta.versions.get(key, now).map_or(1, |version| version + 1);
        meta.versions.insert(key, next, now + VERSION_TTL);
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
        Ok(self.entries.get(key).map(|entry| entry.bytes))
    }

    async fn get_and_touch(&self, key: &str, ttl: Duration) -> Result<Option<Arc<[u8]>>> {
        // Entries stored with a sliding ttl restart it on every read (see `EntryTtl`); one read
        // with another ttl is stored again with it.
        let Some(entry) = self.entries.get(key) else {
            return Ok(None);
        };
        if !entry.sliding || entry.ttl != ttl {
            self.store(key, Arc::clone(&entry.bytes), ttl, true);
        }
        Ok(Some(entry.bytes))
    }

    async fn set(&self, key: &str, value: Arc<[u8]>, ttl: Duration) -> Result<()> {
        self.store(key, value, ttl, false);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        Ok(self.entries.remove(key).is_some())
    }

    async fn begin_fill(
        &self,
        key: &str,
        lock: Option<(&str, Duration)>,
    ) -> Result<FillStart<Arc<[u8]>>> {
        let now = Instant::now();
        let mut meta = self.meta();
        let locked = match lock {
            Some((token, ttl)) if meta.locks.get(key, now).is_none() => {
                meta.locks.insert(key, token.to_owned(), now + ttl);
                true
            }
            _ => false,
        };
        let version = meta.versions.get(key, now).copied();
        let current = if locked {
            self.entries.get(key).map(|entry| entry.bytes)
        } else {
            None
        };
        Ok(FillStart {
            locked,
            version,
            current,
        })
    }

    async fn finish_fill(
        &self,
        key: &str,
        value: Option<(Arc<[u8]>, Duration)>,
        version: Version,
        token: Option<&str>,
    ) -> Result<bool> {
        let now = Instant::now();
        let mut meta = self.meta();
        let mut stored = false;
        if let Some((bytes, ttl)) = value {
            if meta.versions.get(key, now).copied() == version {
                self.store(key, bytes, ttl, false);
                stored = true;
            }
        }
        if let Some(token) = token {
            if meta
                .locks
                .get(key, now)
                .is_some_and(|holder| holder == token)
            {
                meta.locks.remove(key);
            }
        }
        Ok(stored)
    }

    async fn invalidate(&self, key: &str) -> Result<()> {
        let mut meta = self.meta();
        Self::bump_version(&mut meta, key);
        self.entries.invalidate(key);
        Ok(())
    }

    async fn put(&self, key: &str, value: Arc<[u8]>, ttl: Duration) -> Result<()> {
        let mut meta = self.meta();
        Self::bump_version(&mut meta, key);
        self.store(key, value, ttl, false);
        Ok(())
    }

    async fn tag(&self, tag: &str, member: &str, expires_at_ms: u64) -> Result<()> {
        let mut meta = self.meta();
        let now = now_ms();
        if meta.tags.len() >= meta.sweep_tags_at {
            meta.tags.retain(|_, index| {
                index.trim(now);
                !index.members.is_empty()
            });
            meta.sweep_tags_at = (meta.tags.len() * 2).max(64);
        }
        let index = meta.tags.entry(tag.to_owned()).or_default();
        index.add(member, expires_at_ms);
        index.trim(now);
        Ok(())
    }

    async fn invalidate_tag(&self, tag: &str) -> Result<u64> {
        let mut meta = self.meta();
        let Some(index) = meta.tags.remove(tag) else {
            return Ok(0);
        };
        for member in index.members.keys() {
            Self::bump_version(&mut meta, member);
            self.entries.invalidate(member);
        }
        Ok(index.members.len() as u64)
    }

    async fn tag_len(&self, tag: &str) -> Result<u64> {
        Ok(self
            .meta()
            .tags
            .get(tag)
            .map_or(0, |index| index.members.len() as u64))
    }
}

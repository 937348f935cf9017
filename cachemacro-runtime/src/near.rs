//! The near cache (L1): decoded values kept in this process in front of Redis, so that a hit
//! does no I/O and no decode, kept coherent with Redis by client tracking ([`tracking`]).
//!
//! What may be served, and why it is never older than the guarantees allow:
//! - **Sessions.** Entries are served only while the tracking connection is up and its
//!   `CLIENT TRACKING` was acknowledged: each such period is a session with its own number, and
//!   an entry carries the session it was read in. When the connection is lost the session ends
//!   (number 0: nothing is served, nothing is inserted) and the store is flushed, since
//!   invalidations may have been missed; a new session starts only once tracking is on again.
//! - **Invalidations.** Every push from Redis naming a key, and every invalidation or write this
//!   process makes (once its command returned), drops that key's entry; a push naming a tag's
//!   epoch voids every entry stamped with the tag.
//! - **Fills that race an invalidation.** A value read from Redis is inserted only if nothing
//!   happened to its key in this process between the start of the read and the insert: the key's
//!   stripe carries a sequence number, read before the Redis read ([`Near::before_read`]) and
//!   compared, under the stripe's lock, at the insert ([`Near::after_read`]). Every invalidation
//!   of the key (push or own) bumps it under the same lock, so an invalidation that arrives while
//!   the read is in flight makes the insert fail, and one that arrives after the insert finds the
//!   entry and drops it. Redis sends a key's push (in BCAST mode, at the end of the event-loop
//!   iteration that modified it) before it writes the reply to the command that modified it; a read that started after that command returned (in any
//!   process) reads the new value, so only reads that started earlier can hold the old one,
//!   and their inserts lose to the push as just said.
//! - **Newer versions seen here.** Every read from Redis and every load of the key in this
//!   process bumps the stripe too. A read whose sequence moved meanwhile inserts nothing, and
//!   drops the entry unless the entry holds the very bytes it read: so once this process has
//!   served a version it read from Redis (or loaded), an older read finishing later cannot put
//!   its older value in front of it.
//!
//! Tags: an entry keeps, per tag, the sequence of the tag's stripe when its read started; a
//! hit compares them with the current ones (a load each). Pushes for a tag's epoch key (and this
//! process's `invalidate_tag`) bump the tag's stripe.

pub(crate) mod tracking;

use std::any::Any;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::stats::{Count, NearStats, Striped};

/// A decoded value, type-erased: the return value of the function that cached it.
pub(crate) type Kept = Arc<dyn Any + Send + Sync>;

/// How many sequence stripes keys spread over: invalidations of keys in one stripe make each
/// other's racing inserts fail (a miss, never a stale hit).
const KEY_STRIPES: usize = 1024;
/// How many sequence stripes tags spread over: an invalidated tag voids the entries of the tags
/// that share its stripe.
const TAG_STRIPES: usize = 1024;

/// The near cache of one [`Cache`](crate::Cache). Cheap to clone.
#[derive(Clone)]
pub(crate) struct Near {
    shared: Arc<Shared>,
}

struct Shared {
    entries: moka::sync::Cache<String, Arc<Slot>>,
    /// The current tracking session, 0 while there is none.
    session: AtomicU64,
    /// The last session number handed out.
    sessions: AtomicU64,
    keys: Box<[KeyStripe]>,
    tags: Box<[AtomicU64]>,
    hasher: std::collections::hash_map::RandomState,
    /// What an epoch key starts with: `<prefix>tag#`.
    epoch_mark: String,
    hits: Striped,
    misses: Striped,
    invalidations: AtomicU64,
}

#[derive(Default)]
struct KeyStripe {
    lock: Mutex<()>,
    sequence: AtomicU64,
}

struct Slot {
    value: Kept,
    session: u64,
    /// How long the entry is fresh from its insert: no longer than in Redis.
    lifetime: Duration,
    /// Each tag's stripe and its sequence when the read began.
    tags: Box<[(usize, u64)]>,
    /// A fingerprint of the Redis entry's bytes the value was decoded from.
    fingerprint: u64,
}

/// What [`Near::before_read`] noted, for [`Near::after_read`].
pub(crate) struct Noted {
    session: u64,
    stripe: usize,
    sequence: u64,
    tags: Box<[(usize, u64)]>,
}

/// What a Redis read found, offered to the near cache.
pub(crate) struct Offer<'a> {
    /// The value, when it may be served from the near cache: fresh, not sliding.
    pub(crate) value: Option<Kept>,
    /// How long it is still fresh.
    pub(crate) fresh_for: Duration,
    /// The Redis entry's bytes.
    pub(crate) bytes: &'a [u8],
}

struct Lifetime;

impl moka::Expiry<String, Arc<Slot>> for Lifetime {
    fn expire_after_create(&self, _: &String, slot: &Arc<Slot>, _: Instant) -> Option<Duration> {
        Some(slot.lifetime)
    }

    fn expire_after_update(
        &self,
        _: &String,
        slot: &Arc<Slot>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(slot.lifetime)
    }
}

impl Near {
    /// A near cache of at most `capacity` entries, whose tags' epoch keys start with
    /// `epoch_mark`; it serves nothing until a tracking session starts.
    pub(crate) fn new(capacity: u64, epoch_mark: String) -> Self {
        let entries = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .expire_after(Lifetime)
            .build();
        Self {
            shared: Arc::new(Shared {
                entries,
                session: AtomicU64::new(0),
                sessions: AtomicU64::new(0),
                keys: (0..KEY_STRIPES).map(|_| KeyStripe::default()).collect(),
                tags: (0..TAG_STRIPES).map(|_| AtomicU64::new(0)).collect(),
                hasher: Default::default(),
                epoch_mark,
                hits: Striped::default(),
                misses: Striped::default(),
                invalidations: AtomicU64::new(0),
            }),
        }
    }

    /// The value kept under `key`, if it may be served now. Counts an L1 hit or miss.
    pub(crate) fn get(&self, key: &str) -> Option<Kept> {
        let shared = &*self.shared;
        let found = shared.entries.get(key).filter(|slot| {
            slot.session == shared.session.load(Ordering::Acquire)
                && slot
                    .tags
                    .iter()
                    .all(|&(stripe, seen)| shared.tags[stripe].load(Ordering::Acquire) == seen)
        });
        match found {
            Some(slot) => {
                shared.hits.add_one();
                Some(Arc::clone(&slot.value))
            }
            None => {
                shared.misses.add_one();
                None
            }
        }
    }

    /// Notes the session and sequences before a Redis read of `key` with `tags` (epoch keys).
    pub(crate) fn before_read<'t>(&self, key: &str, tags: impl Iterator<Item = &'t str>) -> Noted {
        let shared = &*self.shared;
        let stripe = shared.key_stripe(key);
        // The session first: a session that ends after this load leaves a different number.
        let session = shared.session.load(Ordering::Acquire);
        let sequence = shared.keys[stripe].sequence.load(Ordering::Acquire);
        let tags = tags
            .map(|tag| {
                let stripe = shared.tag_stripe(tag);
                (stripe, shared.tags[stripe].load(Ordering::Acquire))
            })
            .collect();
        Noted {
            session,
            stripe,
            sequence,
            tags,
        }
    }

    /// Inserts what a Redis read of `key` found, if nothing happened to the key here since
    /// [`before_read`](Self::before_read); otherwise drops the entry unless it holds these very
    /// bytes. Either way later inserts of reads that started earlier fail.
    pub(crate) fn after_read(&self, key: &str, noted: Noted, offer: Offer<'_>) {
        let shared = &*self.shared;
        let fingerprint = shared.fingerprint(offer.bytes);
        let stripe = &shared.keys[noted.stripe];
        let _locked = stripe.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let unchanged = stripe.sequence.load(Ordering::Acquire) == noted.sequence
            && noted.session != 0
            && shared.session.load(Ordering::Acquire) == noted.session;
        match offer.value {
            Some(value) if unchanged && !offer.fresh_for.is_zero() => {
                let slot = Slot {
                    value,
                    session: noted.session,
                    lifetime: offer.fresh_for,
                    tags: noted.tags,
                    fingerprint,
                };
                shared.entries.insert(key.to_owned(), Arc::new(slot));
            }
            _ => {
                let same = shared
                    .entries
                    .get(key)
                    .is_some_and(|slot| slot.fingerprint == fingerprint);
                if !same {
                    shared.entries.invalidate(key);
                }
            }
        }
        stripe.sequence.fetch_add(1, Ordering::AcqRel);
    }

    /// A load (or a value another caller's load left) was handed to a caller here: drops the
    /// key's entry, and makes reads that started earlier insert nothing.
    pub(crate) fn loaded(&self, key: &str) {
        self.shared.drop_key(key);
    }

    /// This process invalidated or wrote `key` (its command returned): drops the entry now,
    /// without waiting for the push.
    pub(crate) fn invalidated_key(&self, key: &str) {
        if self.shared.drop_key(key) {
            self.shared.invalidations.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// This process invalidated the tag whose epoch is under `epoch_key`.
    pub(crate) fn invalidated_tag(&self, epoch_key: &str) {
        self.shared.drop_tag(epoch_key);
    }

    /// The counters.
    pub(crate) fn stats(&self) -> NearStats {
        let shared = &*self.shared;
        NearStats {
            hits: shared.hits.total(),
            misses: shared.misses.total(),
            invalidations: shared.invalidations.load(Ordering::Relaxed),
        }
    }
}

impl Shared {
    fn hash(&self, text: &str) -> usize {
        self.hasher.hash_one(text) as usize
    }

    fn key_stripe(&self, key: &str) -> usize {
        self.hash(key) % KEY_STRIPES
    }

    fn tag_stripe(&self, epoch_key: &str) -> usize {
        self.hash(epoch_key) % TAG_STRIPES
    }

    fn fingerprint(&self, bytes: &[u8]) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        hasher.write(bytes);
        hasher.finish()
    }

    /// Drops `key`'s entry and bumps its stripe; whether an entry was there.
    fn drop_key(&self, key: &str) -> bool {
        let stripe = &self.keys[self.key_stripe(key)];
        let _locked = stripe.lock.lock().unwrap_or_else(PoisonError::into_inner);
        stripe.sequence.fetch_add(1, Ordering::AcqRel);
        self.entries.remove(key).is_some()
    }

    fn drop_tag(&self, epoch_key: &str) {
        self.tags[self.tag_stripe(epoch_key)].fetch_add(1, Ordering::AcqRel);
        self.invalidations.fetch_add(1, Ordering::Relaxed);
    }

    /// A push named `key`: an entry's key, a tag's epoch, or a key the cache does not keep
    /// here (a version, a lock), which costs a stripe bump.
    fn pushed(&self, key: &str) {
        if key.starts_with(&self.epoch_mark) {
            self.drop_tag(key);
        } else if self.drop_key(key) {
            self.invalidations.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Tracking is on: a new session, whose entries are the only ones served.
    fn start_session(&self) {
        let session = self.sessions.fetch_add(1, Ordering::AcqRel) + 1;
        self.session.store(session, Ordering::Release);
    }

    /// Tracking was lost, or Redis flushed: nothing is served or inserted until the next session.
    fn end_session(&self) {
        self.session.store(0, Ordering::Release);
        self.entries.invalidate_all();
        self.invalidations.fetch_add(1, Ordering::Relaxed);
    }

    /// Redis flushed its keys: every entry goes, and reads in flight insert nothing.
    fn flushed(&self) {
        let session = self.sessions.fetch_add(1, Ordering::AcqRel) + 1;
        let live = self.session.load(Ordering::Acquire) != 0;
        self.end_session();
        if live {
            self.session.store(session, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(value: u64, bytes: &[u8]) -> Offer<'_> {
        Offer {
            value: Some(Arc::new(value)),
            fresh_for: Duration::from_secs(60),
            bytes,
        }
    }

    fn value(near: &Near, key: &str) -> Option<u64> {
        near.get(key)
            .and_then(|kept| kept.downcast_ref::<u64>().copied())
    }

    fn live() -> Near {
        let near = Near::new(100, "p:tag#".to_owned());
        near.shared.start_session();
        near
    }

    #[test]
    fn nothing_is_served_outside_a_session() {
        let near = Near::new(100, "p:tag#".to_owned());
        let noted = near.before_read("p:k", [].into_iter());
        near.after_read("p:k", noted, offer(1, b"a"));
        assert_eq!(value(&near, "p:k"), None);
        near.shared.start_session();
        let noted = near.before_read("p:k", [].into_iter());
        near.after_read("p:k", noted, offer(1, b"a"));
        assert_eq!(value(&near, "p:k"), Some(1));
        near.shared.end_session();
        assert_eq!(value(&near, "p:k"), None);
        near.shared.start_session();
        assert_eq!(value(&near, "p:k"), None, "flushed with its session");
    }

    #[test]
    fn a_read_that_an_invalidation_overtook_inserts_nothing() {
        let near = live();
        let noted = near.before_read("p:k", [].into_iter());
        near.shared.pushed("p:k");
        near.after_read("p:k", noted, offer(1, b"old"));
        assert_eq!(value(&near, "p:k"), None);
    }

    #[test]
    fn an_older_read_finishing_last_does_not_hide_a_newer_one() {
        let near = live();
        let older = near.before_read("p:k", [].into_iter());
        let newer = near.before_read("p:k", [].into_iter());
        near.after_read("p:k", newer, offer(2, b"new"));
        assert_eq!(value(&near, "p:k"), Some(2));
        near.after_read("p:k", older, offer(1, b"old"));
        assert_eq!(value(&near, "p:k"), None, "dropped, not replaced");
        let again = near.before_read("p:k", [].into_iter());
        near.after_read("p:k", again, offer(2, b"new"));
        let same = near.before_read("p:k", [].into_iter());
        let racing = near.before_read("p:k", [].into_iter());
        near.after_read("p:k", same, offer(2, b"new"));
        near.after_read("p:k", racing, offer(2, b"new"));
        assert_eq!(value(&near, "p:k"), Some(2), "the same bytes keep it");
    }

    #[test]
    fn a_pushed_epoch_voids_the_entries_of_its_tag() {
        let near = live();
        let noted = near.before_read("p:k", ["p:tag#org:1"].into_iter());
        near.after_read("p:k", noted, offer(1, b"a"));
        assert_eq!(value(&near, "p:k"), Some(1));
        near.shared.pushed("p:tag#org:1");
        assert_eq!(value(&near, "p:k"), None);
        assert_eq!(near.stats().invalidations, 1);
    }
}

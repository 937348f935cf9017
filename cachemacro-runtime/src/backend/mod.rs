//! Where entries live: the storage interface and its two implementations.
//!
//! Both backends store opaque envelopes (see [`crate::envelope`]) under full keys (prefix
//! included) and are held to the same behaviour by one conformance suite. The cache names every
//! key it hands a backend (see [`FillKeys`]); backends only store. [`Backend`] is not for other
//! crates to implement: the cache dispatches over these two statically, so that a hit pays no
//! virtual call.
//!
//! Beside each entry key live, in the same Redis Cluster hash slot:
//! - its *version*: a random token created by the first fill that finds none, read when a fill
//!   starts and compared when it ends. Every invalidation and write-through deletes it, so a load
//!   that began before either can never store what it read (the fill guard, after memcache's
//!   leases). A version that is missing when a fill ends (deleted, evicted, expired) refuses the
//!   store: missing metadata fails safe.
//! - its fill lock, a token with a ttl.
//!
//! Each tag has an *epoch*, also a random token: a fill reads (or creates) the epochs of its tags
//! when it starts and stamps them into the entry; a tag invalidation deletes the epoch. A read
//! compares the stamps with the current epochs in the same round trip, so an entry stamped before
//! an invalidation, or whose epoch was evicted, is a miss.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;

mod connection;
mod memory;
pub(crate) mod redis;

pub(crate) use self::connection::{MAX_DELAY, MIN_DELAY};
pub use self::memory::MemoryBackend;
pub use self::redis::{RedisBackend, DEFAULT_TCP_NODELAY};

/// How long a version lives after the fill that created it, or last read it, began. A load that
/// takes longer finds its version gone and does not store: its value is returned, not cached.
pub const VERSION_TTL: Duration = Duration::from_secs(10 * 60);

/// A key's version (or a tag's epoch): a random non-zero token.
pub type Token = u64;

/// The keys one fill touches: the entry and its companions, all in one hash slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FillKeys {
    /// The entry.
    pub entry: String,
    /// Its version.
    pub version: String,
    /// Its fill lock.
    pub lock: String,
}

/// What `Cache::clear_prefix` removes: the entries under a prefix, found among every key under
/// the cache's own prefix (`scope`), each key mapped to the entry it belongs to (itself, or the
/// entry whose version or lock it is).
pub(crate) struct Clear<'a> {
    /// The cache's prefix: what every key of the cache starts with.
    pub(crate) scope: &'a str,
    /// What the entries to remove start with (any of them), the cache's prefix included.
    pub(crate) entries: &'a [String],
    /// What the keys of tags' epochs start with: keys to remove when selected, not entries.
    pub(crate) epochs: &'a str,
}

impl Clear<'_> {
    /// The entry `key` belongs to, if it is one to remove.
    pub(crate) fn entry(&self, key: &str) -> Option<String> {
        let entry = crate::key::entry_of(self.scope, key);
        self.entries
            .iter()
            .any(|prefix| entry.starts_with(prefix.as_str()))
            .then_some(entry)
    }

    /// Whether `key` is itself an entry to remove (not a version, a lock or an epoch).
    pub(crate) fn is_entry(&self, key: &str) -> bool {
        !key.starts_with(self.epochs) && self.entry(key).is_some_and(|entry| entry == key)
    }
}

/// An entry as read, with the current epochs of the tags asked for.
#[derive(Debug)]
pub struct Found<B> {
    /// The stored bytes, `None` when there is no entry.
    pub entry: Option<B>,
    /// The epoch of each tag asked for, in order; `None` for a tag without one.
    pub epochs: Epochs,
}

/// How many epochs [`Epochs`] holds without allocating: more tags on one function are rare.
const INLINE_EPOCHS: usize = 4;

/// The epochs a read found, one per tag asked for, in order: a list that holds the first few
/// inline, so that a tagged hit allocates nothing for them. Derefs to a slice.
#[derive(Debug, Clone, Default)]
pub struct Epochs {
    inline: [Option<Token>; INLINE_EPOCHS],
    /// How many of `inline` are taken, while they all fit there.
    len: usize,
    /// All of them, once there are more than fit inline.
    spilled: Vec<Option<Token>>,
}

impl Epochs {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the epoch of the next tag.
    pub fn push(&mut self, epoch: Option<Token>) {
        if !self.spilled.is_empty() {
            self.spilled.push(epoch);
        } else if let Some(slot) = self.inline.get_mut(self.len) {
            *slot = epoch;
            self.len += 1;
        } else {
            self.spilled = self.inline.to_vec();
            self.spilled.push(epoch);
        }
    }
}

impl std::ops::Deref for Epochs {
    type Target = [Option<Token>];

    fn deref(&self) -> &[Option<Token>] {
        if self.spilled.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spilled
        }
    }
}

impl PartialEq for Epochs {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Epochs {}

impl FromIterator<Option<Token>> for Epochs {
    fn from_iter<I: IntoIterator<Item = Option<Token>>>(epochs: I) -> Self {
        let mut all = Epochs::new();
        for epoch in epochs {
            all.push(epoch);
        }
        all
    }
}

/// A value to store.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The envelope.
    pub bytes: Arc<[u8]>,
    /// How long the backend keeps it.
    pub ttl: Duration,
    /// Whether each read restarts `ttl`.
    pub sliding: bool,
}

/// What a fill found when it started.
#[derive(Debug)]
pub struct FillStart<B> {
    /// Whether the fill lock was requested and taken.
    pub locked: bool,
    /// The key's version, to be checked when the fill stores its value.
    pub version: Token,
    /// The epoch of each of the fill's tags, to be stamped into its entry.
    pub epochs: Vec<Token>,
    /// The entry under the key, read after taking the lock (another process may have stored it
    /// between the caller's miss and its lock); `None` when not locked.
    pub current: Option<B>,
}

/// How a fill starts: what it locks, and the tokens to create where none exist.
#[derive(Debug, Clone, Copy)]
pub struct Begin<'a> {
    /// The lock's token and ttl, when the fill takes the lock.
    pub lock: Option<(&'a str, Duration)>,
    /// The epoch keys of the fill's tags.
    pub tags: &'a [String],
    /// How long a tag's epoch lives at least: past every entry stamped with it.
    pub epoch_ttl: Duration,
}

/// The storage operations the cache needs from a backend.
pub trait Backend: Send + Sync + 'static {
    /// The bytes a read returns, borrowed or owned as the backend finds cheapest.
    type Bytes: AsRef<[u8]> + Send;

    /// Reads the entry under `key`, `None` when there is none.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Self::Bytes>>> + Send;

    /// Reads the entry under `key` and the epochs of `tags` (epoch keys) in one round trip;
    /// with `touch`, also restarts the entry's ttl at that (sliding expiry).
    fn read<K: AsRef<str> + Sync>(
        &self,
        key: &str,
        tags: &[K],
        touch: Option<Duration>,
    ) -> impl Future<Output = Result<Found<Self::Bytes>>> + Send;

    /// Shortens the ttl of the entry under `key` to `ttl` if it is longer.
    fn shorten(&self, key: &str, ttl: Duration) -> impl Future<Output = Result<()>> + Send;

    /// Stores `value` under `key` as is. Leaves the version alone: this is the raw write, not a
    /// write-through.
    fn set(
        &self,
        key: &str,
        value: Arc<[u8]>,
        ttl: Duration,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Removes the entry under `key` as is; whether there was one.
    fn delete(&self, key: &str) -> impl Future<Output = Result<bool>> + Send;

    /// Starts a fill: reads or creates the version and the tag epochs, takes the fill lock when
    /// asked (unless someone holds it; it frees itself after its ttl, so a holder that dies
    /// blocks nobody for longer), and when locked reads the entry again, all at once.
    fn begin_fill(
        &self,
        keys: &FillKeys,
        begin: Begin<'_>,
    ) -> impl Future<Output = Result<FillStart<Self::Bytes>>> + Send;

    /// Ends a fill: frees the fill lock if `token` (when given) still holds it (it may have
    /// expired and been taken by another, whose lock must survive), then, if the version is still
    /// `version`, stores `value` (when given). Whether the fill was still valid: the version and
    /// every tag's epoch unchanged, so no invalidation of the key or its tags came since
    /// [`begin_fill`](Self::begin_fill). (A value stored under a tag invalidated meanwhile carries
    /// the old epoch, so reads treat it as a miss.)
    fn finish_fill(
        &self,
        keys: &FillKeys,
        version: Token,
        epochs: &[(String, Token)],
        value: Option<Stored>,
        token: Option<&str>,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Frees the fill lock `lock` if `token` still holds it.
    fn unlock(&self, lock: &str, token: &str) -> impl Future<Output = Result<()>> + Send;

    /// Removes the entry and its version, voiding the fills in flight.
    fn invalidate(&self, entry: &str, version: &str) -> impl Future<Output = Result<()>> + Send;

    /// Write-through: removes the version (voiding fills in flight) and stores `value`, if the
    /// version is still `expected` (when given: the version read before the write began).
    /// Otherwise another write or an invalidation came in between, whose order against this one
    /// the cache cannot know: the entry is removed instead. Whether `value` was stored.
    fn put(
        &self,
        entry: &str,
        version: &str,
        expected: Option<Token>,
        value: Stored,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// The epochs of `tags` (epoch keys), created where missing, living at least `ttl`.
    fn epochs(
        &self,
        tags: &[String],
        ttl: Duration,
    ) -> impl Future<Output = Result<Vec<Token>>> + Send;

    /// Removes the epoch of a tag: every entry stamped with it becomes a miss, and fills in
    /// flight that read it do not store.
    fn invalidate_tag(&self, tag: &str) -> impl Future<Output = Result<()>> + Send;
}

/// A fresh random token: never 0, so a missing token is never taken for one.
pub(crate) fn new_token() -> Token {
    rand::random::<u64>().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_keep_their_order_past_the_inline_ones() {
        for count in [0, 1, INLINE_EPOCHS, INLINE_EPOCHS + 1, 3 * INLINE_EPOCHS] {
            let expected: Vec<Option<Token>> = (0..count as u64)
                .map(|epoch| (epoch % 3 != 0).then_some(epoch))
                .collect();
            let epochs: Epochs = expected.iter().copied().collect();
            assert_eq!(&*epochs, &expected[..]);
            assert_eq!(epochs.len(), count);
            assert_eq!(epochs.clone(), epochs);
        }
    }
}

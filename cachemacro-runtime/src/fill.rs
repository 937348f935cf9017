//! The miss path: one load per key in this process (single flight), one across processes (the
//! fill lock), and no value stored after an invalidation (the fill guard); and the refresh job
//! that early and stale hits start.
//!
//! A fill, in order:
//! 1. `begin_fill`: reads (or creates) the key's version and its tags' epochs, takes the fill
//!    lock, and when locked reads the entry once more (another process may have stored it);
//! 2. runs the body;
//! 3. `finish_fill`: frees the lock, then stores the value stamped with the epochs only if the
//!    version is unchanged, and reports the fill valid only if the epochs are unchanged too.
//!
//! An invalidation deletes the version (or the tag's epoch). If it happens after step 1, the
//! store in step 3 is refused (or, for a tag, the entry's stamps no longer match, so it is a
//! miss) and the value is not handed to waiters: it may predate the change the invalidation
//! announced. If it happens before step 1, the body starts after it and reads the new data.
//!
//! Every `.await` here may be the last: a caller's future can be dropped at any of them, and a
//! body can panic. What a fill holds across them is held by guards: the fill lock by [`Ticket`]
//! (freed in the background when dropped), the single-flight slot by `Leader`, the refresh claim
//! by `RefreshClaim`, the load's accounting by [`LoadWatch`].

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::backend::{Backend, Begin, FillKeys, Stored, Token};
use crate::cache::{with_backend, Cache, Store};
use crate::call::Call;
use crate::envelope::{self, Meta};
use crate::flight::{Join, Landing, Leader, RefreshClaim, Waited};
use crate::key::Key;
use crate::loader::Loader;
use crate::outcome::{Mode, Sharing};
use crate::policy::Policy;
use crate::stats::Counters;

/// A miss: one load per key in this process, and with the fill lock one across processes.
/// `offline`: the read found the backend unavailable, so the load spends no more cache
/// operations and stores nothing; the single flight still spares the database.
///
/// `Err(loader)` hands the loader back when the caller must read the cache again: the load it
/// waited for was voided by an invalidation, or went away.
pub(crate) async fn fill<R, M, L>(
    call: &Call<'_>,
    loader: L,
    sharing: &Sharing<R>,
    offline: bool,
) -> Result<R, L>
where
    M: Mode<R> + 'static,
    L: Loader<R>,
{
    let follower = match call.cache.inner.flights.join(call.key, call.tag_names()) {
        Join::Lead(leader) => {
            let (outcome, landing) =
                lead::<R, M>(call, loader.start(), sharing, offline, &leader).await;
            leader.land(landing);
            return Ok(outcome);
        }
        Join::Follow(follower) => follower,
    };
    let counters = &call.cache.inner.counters;
    counters.coalesce();
    match follower.wait(call.patience()).await {
        Waited::Landed(Landing::Value(bytes)) => {
            if let Some(value) = decode_value::<M::Value>(&bytes) {
                return Ok(M::from_value(value));
            }
        }
        Waited::Landed(Landing::Failed(Some(shared))) => {
            if let Some(outcome) = sharing.unshare(&*shared) {
                return Ok(outcome);
            }
        }
        Waited::Landed(Landing::Failed(None)) => {}
        Waited::Landed(Landing::Reread) | Waited::Reread => return Err(loader),
        Waited::TimedOut => {
            counters.lock_timeout();
            tracing::debug!(
                key = call.key,
                "waited lock_timeout for this process's load; loading"
            );
        }
    }
    let guard = if offline {
        Guard::Unavailable
    } else {
        Guard::Start
    };
    let (outcome, _) = guarded_load::<R, M>(call, guard, loader.start(), sharing, None).await;
    Ok(outcome)
}

/// The leader's fill: under the fill lock when the policy asks for it.
async fn lead<R, M>(
    call: &Call<'_>,
    load: impl Future<Output = R>,
    sharing: &Sharing<R>,
    offline: bool,
    leader: &Leader<'_>,
) -> (R, Landing)
where
    M: Mode<R>,
{
    let guard = if offline {
        Guard::Unavailable
    } else if call.policy.lock {
        match acquire::<M::Value>(call, leader).await {
            Acquired::Filled(value, bytes) => return (M::from_value(value), Landing::Value(bytes)),
            Acquired::Lock(ticket) => Guard::Held(ticket),
            Acquired::TimedOut => Guard::Start,
            Acquired::BackendDown => Guard::Unavailable,
        }
    } else {
        Guard::Start
    };
    guarded_load::<R, M>(call, guard, load, sharing, Some(leader)).await
}

/// A started fill: the version and epochs it read, and the lock while it holds it. Dropped
/// before [`finish`] completes (its caller cancelled, its body panicked), it frees the lock in
/// the background, so waiters take over at once instead of after the lock's ttl.
pub(crate) struct Ticket {
    cache: Cache,
    keys: FillKeys,
    version: Token,
    /// Each tag's epoch key and epoch.
    epochs: Vec<(String, Token)>,
    /// Each tag's name and epoch, as stamped into the entry.
    stamps: Vec<(String, Token)>,
    lock: Option<String>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(token) = self.lock.take() {
            release_later(&self.cache, &self.keys.lock, token);
        }
    }
}

/// Frees the lock `lock` if `token` still holds it, in a background task that retries while the
/// backend is unavailable, for as long as the lock could live. Never blocks the caller: this runs
/// from `Drop`.
pub(crate) fn release_later(cache: &Cache, lock: &str, token: String) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let cache = cache.clone();
    let lock = lock.to_owned();
    runtime.spawn(async move {
        const PAUSE: Duration = Duration::from_millis(50);
        let started = Instant::now();
        loop {
            let freed =
                with_backend!(&cache.inner.store, backend => backend.unlock(&lock, &token).await);
            match freed {
                Ok(()) => return,
                Err(error) if error.is_unavailable() && started.elapsed() < RELEASE_FOR => {
                    tokio::time::sleep(PAUSE).await;
                }
                Err(error) => {
                    tracing::debug!(%error, "fill lock not freed; it expires by itself");
                    return;
                }
            }
        }
    });
}

/// How long a background release keeps trying: the longest lock anyone asks for by default.
const RELEASE_FOR: Duration = Duration::from_secs(30);

enum Acquired<V> {
    /// This caller holds the lock and loads.
    Lock(Ticket),
    /// Another caller's value landed while this one waited.
    Filled(V, Arc<[u8]>),
    /// The wait ran out: load without the lock.
    TimedOut,
    /// The backend failed: load, and store nothing.
    BackendDown,
}

/// What protects a load's store from invalidations that come during the load.
enum Guard {
    /// A fill already started: its version (and lock).
    Held(Ticket),
    /// Start one now, without the lock.
    Start,
    /// The backend cannot tell the version: store nothing.
    Unavailable,
}

/// Takes the fill lock, or waits for its holder's value with bounded polling (5 ms doubling to
/// 100 ms) for at most `lock_timeout`. A holder that died frees the lock when it expires, and a
/// waiter then takes it over.
///
/// Each read here may find another process's value, landed for this process's followers, so
/// each is marked on `leader` first: it may predate an invalidation that completed before a
/// follower who joins after it started.
async fn acquire<V: DeserializeOwned>(call: &Call<'_>, leader: &Leader<'_>) -> Acquired<V> {
    const FIRST_PAUSE: Duration = Duration::from_millis(5);
    const LONGEST_PAUSE: Duration = Duration::from_millis(100);
    let token = format!("{:016x}", rand::random::<u64>());
    let deadline = call.deadline();
    let mut pause = FIRST_PAUSE;
    let mut waited = false;
    loop {
        leader.mark();
        match begin(call, Some(&token)).await {
            Some((ticket, locked, current)) if locked => {
                let found =
                    current.and_then(|bytes| usable::<V>(call, bytes, &ticket.stamps_epochs()));
                return match found {
                    Some((value, bytes)) => {
                        finish(ticket, None).await;
                        Acquired::Filled(value, bytes)
                    }
                    None => Acquired::Lock(ticket),
                };
            }
            Some(_) => {}
            None => return Acquired::BackendDown,
        }
        if !waited {
            waited = true;
            call.cache.inner.counters.lock_wait();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            call.cache.inner.counters.lock_timeout();
            tracing::debug!(
                key = call.key,
                "waited lock_timeout for another fill; loading"
            );
            return Acquired::TimedOut;
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
        leader.mark();
        if let Some((value, bytes)) = usable_entry::<V>(call).await {
            return Acquired::Filled(value, bytes);
        }
    }
}

impl Ticket {
    fn stamps_epochs(&self) -> Vec<Option<Token>> {
        self.epochs.iter().map(|(_, epoch)| Some(*epoch)).collect()
    }

    /// The version the fill read when it began.
    pub(crate) fn version(&self) -> Token {
        self.version
    }

    /// Each tag's name and the epoch it had when the fill began.
    pub(crate) fn stamps(&self) -> &[(String, Token)] {
        &self.stamps
    }
}

/// Runs the body under `guard`, then stores the value if no invalidation came in between.
/// Returns the outcome and what the load's followers get.
async fn guarded_load<R, M>(
    call: &Call<'_>,
    guard: Guard,
    load: impl Future<Output = R>,
    sharing: &Sharing<R>,
    leader: Option<&Leader<'_>>,
) -> (R, Landing)
where
    M: Mode<R>,
{
    let ticket = match guard {
        Guard::Held(ticket) => Some(ticket),
        Guard::Start => begin(call, None).await.map(|(ticket, _, _)| ticket),
        Guard::Unavailable => None,
    };
    call.cache.inner.counters.load();
    let (outcome, load_time) = watched_load(&call.cache.inner.counters, load).await;
    let stamps = ticket.as_ref().map_or(&[][..], |ticket| &ticket.stamps[..]);
    let encoded = encode::<R, M>(call, &outcome, load_time, stamps);
    // Without a ticket the backend failed to say which version the load started from: storing
    // could install a value older than an invalidation, so nothing is stored.
    let Some(ticket) = ticket else {
        // Unguarded, this value is shared with every caller that joined during the load, as the
        // price of sparing the database while the cache cannot be reached: a caller sent back
        // would find the cache unreachable again, and wait one more operation timeout.
        if let Some(leader) = leader {
            leader.mark();
        }
        let landing = match encoded {
            Some((bytes, _)) => Landing::Value(bytes),
            None => Landing::Failed(sharing.share(&outcome)),
        };
        return (outcome, landing);
    };
    if let Some(leader) = leader {
        leader.mark();
    }
    let value = encoded.as_ref().and_then(|(bytes, ttl)| {
        ttl.map(|ttl| Stored {
            bytes: Arc::clone(bytes),
            ttl: call.policy.retention(ttl),
            sliding: call.policy.sliding,
        })
    });
    let valid = finish(ticket, value).await;
    let landing = match encoded {
        None => Landing::Failed(sharing.share(&outcome)),
        Some((bytes, _)) if valid => Landing::Value(bytes),
        Some(_) => Landing::Reread,
    };
    (outcome, landing)
}

/// Runs a body, counting it as cancelled or panicked if it does not finish.
pub(crate) async fn watched_load<F: Future>(counters: &Counters, load: F) -> (F::Output, Duration) {
    let watch = LoadWatch {
        counters,
        finished: false,
    };
    let started = Instant::now();
    let output = load.await;
    let mut watch = watch;
    watch.finished = true;
    (output, started.elapsed())
}

/// Counts a load that never finished: its caller was dropped, or its body panicked.
struct LoadWatch<'a> {
    counters: &'a Counters,
    finished: bool,
}

impl Drop for LoadWatch<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if std::thread::panicking() {
            self.counters.load_panicked();
        } else {
            self.counters.load_cancelled();
        }
    }
}

/// Refreshes an entry while callers keep being served the current one. One process refreshes
/// (the fill lock, when on); a failed load leaves the entry as it is.
pub(crate) async fn refresh<R, M: Mode<R>>(
    cache: Cache,
    key: String,
    tags: Vec<Key>,
    policy: Policy,
    load: impl Future<Output = R>,
    _claim: RefreshClaim,
) {
    let call = Call::new(&cache, &key, &tags, &policy);
    let token = format!("{:016x}", rand::random::<u64>());
    let ticket = match begin(&call, policy.lock.then_some(token.as_str())).await {
        // Another process is filling or refreshing it.
        Some((_, locked, _)) if policy.lock && !locked => return,
        Some((ticket, _, _)) => ticket,
        None => return,
    };
    let (outcome, load_time) = watched_load(&cache.inner.counters, load).await;
    // Encoded before any await, so the job holds no borrow of the outcome and stays `Send`.
    let encoded = encode::<R, M>(&call, &outcome, load_time, &ticket.stamps);
    drop(outcome);
    let value = match encoded {
        Some((bytes, Some(ttl))) => Some(Stored {
            bytes,
            ttl: policy.retention(ttl),
            sliding: policy.sliding,
        }),
        // The value is now one that is not cached (`None` without negative caching): the old
        // entry must not outlive what it described.
        Some((_, None)) => {
            finish(ticket, None).await;
            crate::write::invalidate_key(&cache, &key).await.ok();
            return;
        }
        None => {
            cache.inner.counters.refresh_failure();
            crate::log::warn_throttled!(key = %key, "refresh failed; serving the current entry");
            None
        }
    };
    finish(ticket, value).await;
}

/// `begin_fill`, counting a failure: the ticket, whether it holds the lock, and the entry read
/// under the lock. `None` when the backend failed.
pub(crate) async fn begin(
    call: &Call<'_>,
    lock: Option<&str>,
) -> Option<(Ticket, bool, Option<Arc<[u8]>>)> {
    let cache = call.cache;
    let keys = call.fill_keys();
    // Owned here, on the miss path only: the ticket keeps them for the fill's end.
    let tag_keys: Vec<String> = call
        .tags
        .iter()
        .map(|key| key.as_str().to_owned())
        .collect();
    let begin = Begin {
        lock: lock.map(|token| (token, call.policy.lock_timeout)),
        tags: &tag_keys,
        epoch_ttl: call.epoch_ttl(),
    };
    let started = with_backend!(&cache.inner.store, backend => match backend.begin_fill(&keys, begin).await {
        Ok(start) => Ok((
            start.locked,
            start.version,
            start.epochs,
            start.current.map(|bytes| Arc::<[u8]>::from(bytes.as_ref())),
        )),
        Err(error) => Err(error),
    });
    match started {
        Ok((locked, version, epochs, current)) => {
            let ticket = Ticket {
                cache: cache.clone(),
                version,
                stamps: call
                    .tag_names()
                    .map(str::to_owned)
                    .zip(epochs.iter().copied())
                    .collect(),
                epochs: tag_keys.into_iter().zip(epochs).collect(),
                lock: (locked).then(|| lock.map(str::to_owned)).flatten(),
                keys,
            };
            Some((ticket, locked, current))
        }
        Err(error) => {
            cache.record_fault(&error);
            tracing::debug!(%error, "fill could not start on the backend; loading without it");
            // A lock request that timed out may still run on the server later (a paused or slow
            // Redis): free it behind itself, so it cannot hold up the next caller for its ttl.
            if let (Some(token), true) = (lock, error.is_timeout()) {
                release_later(cache, &keys.lock, token.to_owned());
            }
            None
        }
    }
}

/// `finish_fill`, counting a failure and a refused store. Whether the fill was still valid.
async fn finish(mut ticket: Ticket, value: Option<Stored>) -> bool {
    let cache = ticket.cache.clone();
    let storing = value.is_some();
    let finished = with_backend!(&cache.inner.store, backend =>
        backend.finish_fill(&ticket.keys, ticket.version, &ticket.epochs, value, ticket.lock.as_deref()).await);
    if finished.is_ok() {
        // The script freed the lock; a finish that failed may not have, so the ticket's drop
        // still frees it.
        ticket.lock = None;
    }
    match finished {
        Ok(true) => true,
        Ok(false) => {
            if storing {
                cache.inner.counters.fill_discarded();
                tracing::debug!(
                    key = %ticket.keys.entry,
                    "value not stored: the key or a tag was invalidated during the load"
                );
            }
            false
        }
        Err(error) => {
            cache.record_fault(&error);
            tracing::debug!(%error, "cache write failed");
            // Out of memory the fill was valid, only not stored; any other failure leaves it
            // unknown, so followers read again.
            error.is_out_of_memory()
        }
    }
}

/// The envelope of `outcome`'s value and how long it is fresh (`None`: not to be stored, for a
/// value that is not cached or is too large); `None` for a failure.
pub(crate) fn encode<R, M: Mode<R>>(
    call: &Call<'_>,
    outcome: &R,
    load_time: Duration,
    stamps: &[(String, Token)],
) -> Option<(Arc<[u8]>, Option<Duration>)> {
    let cache = call.cache;
    let value = M::value(outcome)?;
    let ttl = M::ttl(outcome, call.policy, call.ttl());
    let stamps: Vec<(&str, Token)> = stamps
        .iter()
        .map(|(tag, epoch)| (tag.as_str(), *epoch))
        .collect();
    let meta = Meta {
        ttl: ttl.unwrap_or(Duration::ZERO),
        load_time,
        sliding: call.policy.sliding,
        stamps: &stamps,
    };
    match envelope::encode_with(value, &meta) {
        Ok(bytes) if ttl.is_some() && bytes.len() > cache.inner.max_value_size => {
            cache.inner.counters.oversize();
            crate::log::warn_throttled!(
                size = bytes.len(),
                max = cache.inner.max_value_size,
                "value not cached: larger than max_value_size"
            );
            // Still handed to the callers waiting on this load, just not stored.
            Some((bytes.into(), None))
        }
        Ok(bytes) => Some((bytes.into(), ttl)),
        Err(error) => {
            cache.inner.counters.error();
            crate::log::warn_throttled!(%error, "value not cached: it does not serialize");
            None
        }
    }
}

/// A fresh entry under the call's key whose stamps match its tags' current epochs, without
/// touching the counters.
async fn usable_entry<V: DeserializeOwned>(call: &Call<'_>) -> Option<(V, Arc<[u8]>)> {
    let (bytes, epochs) = with_backend!(&call.cache.inner.store, backend => match backend.read(call.key, call.tags, None).await {
        Ok(found) => (Arc::<[u8]>::from(found.entry?.as_ref()), found.epochs),
        Err(_) => return None,
    });
    usable(call, bytes, &epochs)
}

fn usable<V: DeserializeOwned>(
    call: &Call<'_>,
    bytes: Arc<[u8]>,
    epochs: &[Option<Token>],
) -> Option<(V, Arc<[u8]>)> {
    let envelope = envelope::decode(&bytes).ok()?;
    if envelope.is_expired_at(envelope::now_ms())
        || !envelope.stamps.match_epochs(call.tag_names(), epochs)
    {
        return None;
    }
    let value = envelope.value().ok()?;
    Some((value, bytes))
}

fn decode_value<V: DeserializeOwned>(bytes: &[u8]) -> Option<V> {
    envelope::decode(bytes)
        .and_then(|envelope| envelope.value())
        .ok()
}

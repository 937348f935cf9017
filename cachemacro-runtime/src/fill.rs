//! The miss path: one load per key in this process (single flight), one across processes (the
//! fill lock), and no stale value stored after an invalidation (the fill guard); and the
//! refresh job that early and stale hits start.
//!
//! A fill, in order:
//! 1. registers the key in the index of each of its tags, so an invalidation of a tag that runs
//!    from now on finds it;
//! 2. `begin_fill`: takes the fill lock and reads the key's version (and, when locked, the entry
//!    once more, since another process may have stored it meanwhile);
//! 3. runs the body;
//! 4. `finish_fill`: stores the value only if the version is unchanged, and frees the lock.
//!
//! An invalidation bumps the version. If it happens after step 2, the store in step 4 is refused:
//! the value may predate the change the invalidation announced. If it happens before step 2, the
//! body starts after it and reads the new data.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::backend::{Backend, FillStart, Version};
use crate::cache::{timed, with_backend, Cache, Store};
use crate::envelope;
use crate::flight::{follow, Join, Landing, RefreshClaim};
use crate::loader::Loader;
use crate::outcome::{Mode, Sharing};
use crate::policy::Policy;

/// A miss: one load per key in this process, and with the fill lock one across processes.
/// `offline`: the read found the backend unavailable, so the load spends no more cache
/// operations and stores nothing; the single flight still spares the database.
pub(crate) async fn fill<R, M, L>(
    cache: &Cache,
    key: &str,
    tags: &[String],
    policy: &Policy,
    loader: L,
    sharing: &Sharing<R>,
    offline: bool,
) -> R
where
    M: Mode<R> + 'static,
    L: Loader<R>,
{
    loop {
        match cache.inner.flights.join(key) {
            Join::Lead(leader) => {
                let (outcome, landing) =
                    lead::<R, M>(cache, key, tags, policy, loader.start(), sharing, offline).await;
                leader.land(landing);
                return outcome;
            }
            Join::Follow(slot) => {
                cache.inner.counters.coalesce();
                match follow(slot).await {
                    Some(Landing::Value(bytes)) => {
                        if let Some(value) = decode_value::<M::Value>(&bytes) {
                            return M::from_value(value);
                        }
                    }
                    Some(Landing::Failed(Some(shared))) => {
                        if let Some(outcome) = sharing.unshare(&*shared) {
                            return outcome;
                        }
                    }
                    Some(Landing::Failed(None)) => {}
                    // The leader was cancelled before it landed: start over.
                    None => continue,
                }
                let (outcome, _) = guarded_load::<R, M>(
                    cache,
                    key,
                    tags,
                    policy,
                    Guard::after(offline),
                    loader.start(),
                )
                .await;
                return outcome;
            }
        }
    }
}

/// The leader's fill: under the fill lock when the policy asks for it.
async fn lead<R, M>(
    cache: &Cache,
    key: &str,
    tags: &[String],
    policy: &Policy,
    load: impl Future<Output = R>,
    sharing: &Sharing<R>,
    offline: bool,
) -> (R, Landing)
where
    M: Mode<R>,
{
    let guard = if offline {
        Guard::Unavailable
    } else if policy.lock {
        match acquire::<M::Value>(cache, key, tags, policy).await {
            Acquired::Filled(value, bytes) => return (M::from_value(value), Landing::Value(bytes)),
            Acquired::Lock(ticket) => Guard::Held(ticket),
            Acquired::TimedOut => Guard::Start,
            Acquired::BackendDown => Guard::Unavailable,
        }
    } else {
        Guard::Start
    };
    let (outcome, stored) = guarded_load::<R, M>(cache, key, tags, policy, guard, load).await;
    let landing = match stored {
        Some(bytes) => Landing::Value(bytes),
        None => Landing::Failed(sharing.share(&outcome)),
    };
    (outcome, landing)
}

/// A started fill: the version it read, and the lock token when it holds the lock.
struct Ticket {
    version: Version,
    token: Option<String>,
}

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

impl Guard {
    fn after(offline: bool) -> Self {
        if offline {
            Guard::Unavailable
        } else {
            Guard::Start
        }
    }
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
async fn acquire<V: DeserializeOwned>(
    cache: &Cache,
    key: &str,
    tags: &[String],
    policy: &Policy,
) -> Acquired<V> {
    const FIRST_PAUSE: Duration = Duration::from_millis(5);
    const LONGEST_PAUSE: Duration = Duration::from_millis(100);
    register_tags(cache, key, tags, policy).await;
    let token = format!("{:016x}", rand::random::<u64>());
    let deadline = Instant::now() + policy.lock_timeout;
    let mut pause = FIRST_PAUSE;
    let mut waited = false;
    loop {
        match begin(cache, key, Some((&token, policy.lock_timeout))).await {
            Some(start) if start.locked => {
                let ticket = Ticket {
                    version: start.version,
                    token: Some(token),
                };
                return match start.current.and_then(|bytes| fresh::<V>(bytes)) {
                    Some((value, bytes)) => {
                        finish(cache, key, None, &ticket).await;
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
            cache.inner.counters.lock_wait();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            cache.inner.counters.lock_timeout();
            tracing::debug!(key, "waited lock_timeout for another fill; loading");
            return Acquired::TimedOut;
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
        if let Some((value, bytes)) = fresh_entry::<V>(cache, key).await {
            return Acquired::Filled(value, bytes);
        }
    }
}

/// Runs the body under `guard`, then stores the value if no invalidation came in between.
/// Returns the envelope for waiters, `None` for a failure.
async fn guarded_load<R, M>(
    cache: &Cache,
    key: &str,
    tags: &[String],
    policy: &Policy,
    guard: Guard,
    load: impl Future<Output = R>,
) -> (R, Option<Arc<[u8]>>)
where
    M: Mode<R>,
{
    let ticket = match guard {
        Guard::Held(ticket) => Some(ticket),
        Guard::Start => {
            register_tags(cache, key, tags, policy).await;
            begin(cache, key, None).await.map(|start| Ticket {
                version: start.version,
                token: None,
            })
        }
        Guard::Unavailable => None,
    };
    let (outcome, load_time) = timed(load).await;
    cache.inner.counters.load();
    let encoded = encode::<R, M>(cache, policy, &outcome, load_time);
    // Without a ticket the backend failed to say which version the load started from: storing
    // could install a value older than an invalidation, so nothing is stored.
    if let Some(ticket) = &ticket {
        let value = encoded
            .as_ref()
            .and_then(|(bytes, ttl)| ttl.map(|ttl| (Arc::clone(bytes), policy.retention(ttl))));
        finish(cache, key, value, ticket).await;
    }
    (outcome, encoded.map(|(bytes, _)| bytes))
}

/// Refreshes an entry while callers keep being served the current one. One process refreshes
/// (the fill lock, when on); a failed load leaves the entry as it is.
pub(crate) async fn refresh<R, M: Mode<R>>(
    cache: Cache,
    key: String,
    tags: Vec<String>,
    policy: Policy,
    load: impl Future<Output = R>,
    _claim: RefreshClaim,
) {
    register_tags(&cache, &key, &tags, &policy).await;
    let token = format!("{:016x}", rand::random::<u64>());
    let lock = policy.lock.then_some((token.as_str(), policy.lock_timeout));
    let ticket = match begin(&cache, &key, lock).await {
        // Another process is filling or refreshing it.
        Some(start) if policy.lock && !start.locked => return,
        Some(start) => Ticket {
            version: start.version,
            token: policy.lock.then(|| token.clone()),
        },
        None => return,
    };
    let (outcome, load_time) = timed(load).await;
    // Encoded before any await, so the job holds no borrow of the outcome and stays `Send`.
    let encoded = encode::<R, M>(&cache, &policy, &outcome, load_time);
    drop(outcome);
    let value = match encoded {
        Some((bytes, Some(ttl))) => Some((bytes, policy.retention(ttl))),
        // The value is now one that is not cached (`None` without negative caching): the old
        // entry must not outlive what it described.
        Some((_, None)) => {
            crate::write::invalidate_key(&cache, &key).await.ok();
            None
        }
        None => {
            cache.inner.counters.refresh_failure();
            tracing::warn!(key = %key, "refresh failed; serving the current entry");
            None
        }
    };
    finish(&cache, &key, value, &ticket).await;
}

/// Records in each tag's index that `key` may hold an entry until its retention ends.
pub(crate) async fn register_tags(cache: &Cache, key: &str, tags: &[String], policy: &Policy) {
    if tags.is_empty() {
        return;
    }
    let ttl = cache.fresh_ttl(policy);
    let lasts = policy.retention(ttl) + policy.lock_timeout;
    let expires_at_ms = envelope::now_ms().saturating_add(lasts.as_millis() as u64);
    for tag in tags {
        let index = cache.tag_index(tag);
        let tagged = with_backend!(&cache.inner.store, backend => backend.tag(&index, key, expires_at_ms).await);
        if let Err(error) = tagged {
            cache.record_fault(&error);
            tracing::debug!(%error, tag = %tag, "tag index not updated");
        }
    }
}

/// `begin_fill`, counting a failure; `None` when the backend failed.
async fn begin(
    cache: &Cache,
    key: &str,
    lock: Option<(&str, Duration)>,
) -> Option<FillStart<Arc<[u8]>>> {
    let started = with_backend!(&cache.inner.store, backend => match backend.begin_fill(key, lock).await {
        Ok(start) => Ok(FillStart {
            locked: start.locked,
            version: start.version,
            current: start.current.map(|bytes| Arc::<[u8]>::from(bytes.as_ref())),
        }),
        Err(error) => Err(error),
    });
    match started {
        Ok(start) => Some(start),
        Err(error) => {
            cache.record_fault(&error);
            tracing::debug!(%error, "fill could not start on the backend; loading without it");
            None
        }
    }
}

/// `finish_fill`, counting a failure and a refused store.
async fn finish(cache: &Cache, key: &str, value: Option<(Arc<[u8]>, Duration)>, ticket: &Ticket) {
    let storing = value.is_some();
    let finished = with_backend!(&cache.inner.store, backend =>
        backend.finish_fill(key, value, ticket.version, ticket.token.as_deref()).await);
    match finished {
        Ok(stored) if storing && !stored => {
            cache.inner.counters.fill_discarded();
            tracing::debug!(
                key,
                "value not stored: the key was invalidated during the load"
            );
        }
        Ok(_) => {}
        Err(error) => {
            cache.record_fault(&error);
            tracing::debug!(%error, "cache write failed");
        }
    }
}

/// The envelope of `outcome`'s value and how long it is fresh (`None`: not to be stored, for a
/// value that is not cached or is too large); `None` for a failure.
pub(crate) fn encode<R, M: Mode<R>>(
    cache: &Cache,
    policy: &Policy,
    outcome: &R,
    load_time: Duration,
) -> Option<(Arc<[u8]>, Option<Duration>)> {
    let value = M::value(outcome)?;
    let ttl = M::ttl(outcome, policy, cache.fresh_ttl(policy));
    match envelope::encode(value, ttl.unwrap_or(Duration::ZERO), load_time) {
        Ok(bytes) if ttl.is_some() && bytes.len() > cache.inner.max_value_size => {
            cache.inner.counters.oversize();
            tracing::warn!(
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
            tracing::warn!(%error, "value not cached: it does not serialize");
            None
        }
    }
}

/// A fresh entry under `key` with its envelope, without touching the counters.
async fn fresh_entry<V: DeserializeOwned>(cache: &Cache, key: &str) -> Option<(V, Arc<[u8]>)> {
    let bytes = with_backend!(&cache.inner.store, backend => match backend.get(key).await {
        Ok(Some(bytes)) => Arc::<[u8]>::from(bytes.as_ref()),
        _ => return None,
    });
    fresh(bytes)
}

fn fresh<V: DeserializeOwned>(bytes: Arc<[u8]>) -> Option<(V, Arc<[u8]>)> {
    let envelope = envelope::decode(&bytes).ok()?;
    if envelope.is_expired_at(envelope::now_ms()) {
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

//! Cache-aside with stampede protection: read the entry, or load it once for everybody.
//!
//! A read finds one of three things:
//! - a fresh entry: returned; with early refresh on, XFetch may also start one refresh;
//! - an entry past its ttl but inside its `stale` window: returned, and one refresh starts;
//! - nothing usable: the caller joins the single flight for the key. Its leader takes the fill
//!   lock (one loader across processes), loads, stores and hands the value to the followers.
//!
//! Every backend fault is counted and swallowed here: the caller of a cached function always gets
//! a value from the cache or from its own loader, never a cache error.

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};

use crate::backend::Backend;
use crate::cache::{timed, with_backend, Cache, Store};
use crate::envelope::{self, Envelope};
use crate::flight::{follow, Join, Landing, RefreshClaim};
use crate::policy::Policy;

/// How a function's return value maps to what is stored.
pub trait Mode<R> {
    /// The stored value.
    type Value: Serialize + DeserializeOwned;
    /// The value to store and hand to waiters; `None` for a failure.
    fn value(outcome: &R) -> Option<&Self::Value>;
    /// How long a value is fresh; `None` when it is handed to waiters but not stored.
    fn ttl(outcome: &R, policy: &Policy, default_ttl: Duration) -> Option<Duration>;
    /// The return value for a stored value.
    fn from_value(value: Self::Value) -> R;
}

/// Every value is stored.
#[derive(Debug)]
pub struct PlainMode;
/// `Ok` values are stored; errors are returned, never stored.
#[derive(Debug)]
pub struct ResultMode;
/// `Some` is stored for the ttl, `None` for the negative ttl when there is one.
#[derive(Debug)]
pub struct OptionMode;

impl<T: Serialize + DeserializeOwned> Mode<T> for PlainMode {
    type Value = T;
    fn value(outcome: &T) -> Option<&T> {
        Some(outcome)
    }
    fn ttl(_: &T, policy: &Policy, default_ttl: Duration) -> Option<Duration> {
        Some(policy.ttl_or(default_ttl))
    }
    fn from_value(value: T) -> T {
        value
    }
}

impl<T: Serialize + DeserializeOwned, E> Mode<Result<T, E>> for ResultMode {
    type Value = T;
    fn value(outcome: &Result<T, E>) -> Option<&T> {
        outcome.as_ref().ok()
    }
    fn ttl(_: &Result<T, E>, policy: &Policy, default_ttl: Duration) -> Option<Duration> {
        Some(policy.ttl_or(default_ttl))
    }
    fn from_value(value: T) -> Result<T, E> {
        Ok(value)
    }
}

impl<T: Serialize + DeserializeOwned> Mode<Option<T>> for OptionMode {
    type Value = Option<T>;
    fn value(outcome: &Option<T>) -> Option<&Option<T>> {
        Some(outcome)
    }
    fn ttl(outcome: &Option<T>, policy: &Policy, default_ttl: Duration) -> Option<Duration> {
        match outcome {
            Some(_) => Some(policy.ttl_or(default_ttl)),
            None => policy.negative_ttl_value(),
        }
    }
    fn from_value(value: Option<T>) -> Option<T> {
        value
    }
}

/// Starts the function's body; where a refresh of it may run.
pub trait Loader<R>: Sized {
    /// The running body.
    type Future: Future<Output = R>;

    /// Starts the body in the caller's task.
    fn start(self) -> Self::Future;

    /// Refreshes the entry under `key` with this loader: in a background task when the body can
    /// outlive the caller, otherwise in the caller's task.
    fn refresh<M: Mode<R> + 'static>(
        self,
        cache: &Cache,
        key: String,
        policy: Policy,
        claim: RefreshClaim,
    ) -> impl Future<Output = ()>;
}

/// A body that borrows from the caller (`&self`, references): refreshes run in the caller's task.
#[derive(Debug)]
pub struct InCaller<F>(pub F);

/// A body that owns everything it uses: refreshes run in a background task.
#[derive(Debug)]
pub struct Detached<F>(pub F);

impl<R, F, Fut> Loader<R> for InCaller<F>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = R>,
{
    type Future = Fut;

    fn start(self) -> Fut {
        (self.0)()
    }

    fn refresh<M: Mode<R> + 'static>(
        self,
        cache: &Cache,
        key: String,
        policy: Policy,
        claim: RefreshClaim,
    ) -> impl Future<Output = ()> {
        refresh::<R, M>(cache.clone(), key, policy, self.start(), claim)
    }
}

impl<R, F, Fut> Loader<R> for Detached<F>
where
    R: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    type Future = Fut;

    fn start(self) -> Fut {
        (self.0)()
    }

    #[allow(clippy::manual_async_fn)]
    fn refresh<M: Mode<R> + 'static>(
        self,
        cache: &Cache,
        key: String,
        policy: Policy,
        claim: RefreshClaim,
    ) -> impl Future<Output = ()> {
        let job = refresh::<R, M>(cache.clone(), key, policy, self.start(), claim);
        async move {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(job)),
                Err(_) => job.await,
            }
        }
    }
}

/// How a failed load reaches the callers that waited on it: a clone each when the return type is
/// `Clone`, otherwise each waiter runs the body itself.
pub struct Sharing<R> {
    share: Option<fn(&R) -> SharedFailure>,
    unshare: fn(&(dyn Any + Send + Sync)) -> Option<R>,
}

/// A failed load's result, type-erased so one single-flight table serves every return type.
type SharedFailure = Arc<dyn Any + Send + Sync>;

impl<R> Sharing<R> {
    /// Waiters of a failed load run the body themselves.
    pub fn nothing() -> Self {
        Self {
            share: None,
            unshare: |_| None,
        }
    }
}

impl<R: Clone + Send + Sync + 'static> Sharing<R> {
    /// Waiters of a failed load get a clone of its result.
    pub fn by_clone() -> Self {
        Self {
            share: Some(|outcome| Arc::new(outcome.clone())),
            unshare: |shared| shared.downcast_ref::<R>().cloned(),
        }
    }
}

/// Picks [`Sharing::by_clone`] when `R` is `Clone` and [`Sharing::nothing`] otherwise, by method
/// resolution at the call site: `(&SharingProbe::<R>::new()).sharing()` with both traits in scope.
pub struct SharingProbe<R>(PhantomData<fn() -> R>);

impl<R> SharingProbe<R> {
    /// A probe for the return type `R`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

/// Chosen when `R` is `Clone + Send + Sync + 'static`.
pub trait ShareByClone<R> {
    /// The sharing for `R`.
    fn sharing(&self) -> Sharing<R>;
}

impl<R: Clone + Send + Sync + 'static> ShareByClone<R> for SharingProbe<R> {
    fn sharing(&self) -> Sharing<R> {
        Sharing::by_clone()
    }
}

/// The fallback for any other `R`.
pub trait ShareNothing<R> {
    /// The sharing for `R`.
    fn sharing(&self) -> Sharing<R>;
}

impl<R> ShareNothing<R> for &SharingProbe<R> {
    fn sharing(&self) -> Sharing<R> {
        Sharing::nothing()
    }
}

/// Cache-aside for a function returning a plain value: every value is stored.
pub async fn cached_value<T, L>(
    cache: &Cache,
    key: String,
    policy: &Policy,
    loader: L,
    sharing: Sharing<T>,
) -> T
where
    T: Serialize + DeserializeOwned + 'static,
    L: Loader<T>,
{
    cached::<T, PlainMode, L>(cache, key, policy, loader, sharing).await
}

/// Cache-aside for a function returning `Result`: `Ok` values are stored, errors returned as is.
pub async fn cached_result<T, E, L>(
    cache: &Cache,
    key: String,
    policy: &Policy,
    loader: L,
    sharing: Sharing<Result<T, E>>,
) -> Result<T, E>
where
    T: Serialize + DeserializeOwned + 'static,
    E: 'static,
    L: Loader<Result<T, E>>,
{
    cached::<Result<T, E>, ResultMode, L>(cache, key, policy, loader, sharing).await
}

/// Cache-aside for a function returning `Option`: `Some` is stored for the ttl, `None` for the
/// negative ttl (against lookups of absent rows hammering the database) unless that is off.
pub async fn cached_option<T, L>(
    cache: &Cache,
    key: String,
    policy: &Policy,
    loader: L,
    sharing: Sharing<Option<T>>,
) -> Option<T>
where
    T: Serialize + DeserializeOwned + 'static,
    L: Loader<Option<T>>,
{
    cached::<Option<T>, OptionMode, L>(cache, key, policy, loader, sharing).await
}

async fn cached<R, M, L>(
    cache: &Cache,
    key: String,
    policy: &Policy,
    loader: L,
    sharing: Sharing<R>,
) -> R
where
    M: Mode<R> + 'static,
    L: Loader<R>,
{
    match read::<M::Value>(cache, &key, policy).await {
        Read::Fresh(value) => M::from_value(value),
        Read::Refresh(value, why) => {
            if let Some(claim) = cache.inner.flights.claim_refresh(&key) {
                match why {
                    Why::Early => cache.inner.counters.early_refresh(),
                    Why::Stale => cache.inner.counters.stale_refresh(),
                }
                loader.refresh::<M>(cache, key, *policy, claim).await;
            }
            M::from_value(value)
        }
        Read::Miss => fill::<R, M, L>(cache, &key, policy, loader, &sharing).await,
    }
}

enum Read<V> {
    Fresh(V),
    /// A hit that should also refresh the entry.
    Refresh(V, Why),
    Miss,
}

#[derive(Clone, Copy)]
enum Why {
    /// Drawn by XFetch before the entry expired.
    Early,
    /// The entry is past its ttl, inside its stale window.
    Stale,
}

/// The usable value under `key`, counting the hit or miss; faults and bad entries are misses.
async fn read<V: DeserializeOwned>(cache: &Cache, key: &str, policy: &Policy) -> Read<V> {
    let counters = &cache.inner.counters;
    let read = with_backend!(&cache.inner.store, backend => match backend.get(key).await {
        Ok(Some(bytes)) => judge(cache, bytes.as_ref(), policy),
        Ok(None) => Read::Miss,
        Err(error) => {
            counters.error();
            tracing::debug!(%error, "cache read failed; loading instead");
            Read::Miss
        }
    });
    match read {
        Read::Miss => counters.miss(),
        _ => counters.hit(),
    }
    read
}

fn judge<V: DeserializeOwned>(cache: &Cache, bytes: &[u8], policy: &Policy) -> Read<V> {
    let counters = &cache.inner.counters;
    let decoded = envelope::decode(bytes).and_then(|envelope| Ok((envelope, envelope.value()?)));
    let (envelope, value) = match decoded {
        Ok(decoded) => decoded,
        Err(error) => {
            counters.decode_error();
            tracing::debug!(%error, "undecodable cache entry; it will be overwritten");
            return Read::Miss;
        }
    };
    let now = envelope::now_ms();
    if !envelope.is_expired_at(now) {
        if policy.early_refresh && draws_early_refresh(&envelope, now, policy.beta) {
            return Read::Refresh(value, Why::Early);
        }
        return Read::Fresh(value);
    }
    match policy.stale {
        Some(window)
            if now
                < envelope
                    .expires_at_ms
                    .saturating_add(window.as_millis() as u64) =>
        {
            counters.stale_hit();
            Read::Refresh(value, Why::Stale)
        }
        _ => Read::Miss,
    }
}

/// XFetch (Vattani, Chierichetti, Lowenstein, VLDB 2015): refresh when
/// `now - delta * beta * ln(rand) >= expiry`, with `delta` the last load time and `rand` in
/// (0, 1]. The closer the expiry and the slower the load, the likelier; so with many readers one
/// of them refreshes shortly before expiry, and nobody ever finds the entry missing.
fn draws_early_refresh(envelope: &Envelope<'_>, now_ms: u64, beta: f64) -> bool {
    if envelope.load_micros == 0 {
        return false;
    }
    let delta_ms = f64::from(envelope.load_micros) / 1000.0;
    let draw = 1.0 - rand::random::<f64>();
    now_ms as f64 - delta_ms * beta * draw.ln() >= envelope.expires_at_ms as f64
}

/// A miss: one load per key in this process, and with the fill lock one across processes.
async fn fill<R, M, L>(
    cache: &Cache,
    key: &str,
    policy: &Policy,
    loader: L,
    sharing: &Sharing<R>,
) -> R
where
    M: Mode<R> + 'static,
    L: Loader<R>,
{
    loop {
        match cache.inner.flights.join(key) {
            Join::Lead(leader) => {
                let (outcome, landing) =
                    lead::<R, M>(cache, key, policy, loader.start(), sharing).await;
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
                        if let Some(outcome) = (sharing.unshare)(&*shared) {
                            return outcome;
                        }
                    }
                    Some(Landing::Failed(None)) => {}
                    // The leader was cancelled before it landed: start over.
                    None => continue,
                }
                let (outcome, _) = load_and_store::<R, M>(cache, key, policy, loader.start()).await;
                return outcome;
            }
        }
    }
}

/// The leader's load: under the fill lock when the policy asks for it.
async fn lead<R, M>(
    cache: &Cache,
    key: &str,
    policy: &Policy,
    load: impl Future<Output = R>,
    sharing: &Sharing<R>,
) -> (R, Landing)
where
    M: Mode<R>,
{
    let mut held = None;
    if policy.lock {
        match fill_lock(cache, key, policy).await {
            FillLock::Held(lock) => {
                // Another process may have stored the value between our read and our lock.
                if let Some((value, bytes)) = fresh_entry::<M::Value>(cache, key).await {
                    lock.release(cache).await;
                    return (M::from_value(value), Landing::Value(bytes));
                }
                held = Some(lock);
            }
            FillLock::Filled(value, bytes) => return (M::from_value(value), Landing::Value(bytes)),
            FillLock::Unavailable => {}
        }
    }
    let (outcome, stored) = load_and_store::<R, M>(cache, key, policy, load).await;
    if let Some(lock) = held {
        lock.release(cache).await;
    }
    let landing = match stored {
        Some(bytes) => Landing::Value(bytes),
        None => Landing::Failed(sharing.share.map(|share| share(&outcome))),
    };
    (outcome, landing)
}

/// Runs the body, then stores its value; the envelope for waiters, `None` for a failure.
async fn load_and_store<R, M>(
    cache: &Cache,
    key: &str,
    policy: &Policy,
    load: impl Future<Output = R>,
) -> (R, Option<Arc<[u8]>>)
where
    M: Mode<R>,
{
    let (outcome, load_time) = timed(load).await;
    cache.inner.counters.load();
    let stored = store::<R, M>(cache, key, policy, &outcome, load_time).await;
    (outcome, stored)
}

/// Encodes and writes the value of `outcome` when it has one; returns its envelope.
async fn store<R, M: Mode<R>>(
    cache: &Cache,
    key: &str,
    policy: &Policy,
    outcome: &R,
    load_time: Duration,
) -> Option<Arc<[u8]>> {
    let (bytes, ttl) = encode::<R, M>(cache, policy, outcome, load_time)?;
    if let Some(ttl) = ttl {
        write(cache, key, Arc::clone(&bytes), policy.retention(ttl)).await;
    }
    Some(bytes)
}

fn encode<R, M: Mode<R>>(
    cache: &Cache,
    policy: &Policy,
    outcome: &R,
    load_time: Duration,
) -> Option<(Arc<[u8]>, Option<Duration>)> {
    let value = M::value(outcome)?;
    let ttl = M::ttl(outcome, policy, cache.inner.default_ttl);
    match envelope::encode(value, ttl.unwrap_or(Duration::ZERO), load_time) {
        Ok(bytes) => Some((bytes.into(), ttl)),
        Err(error) => {
            cache.inner.counters.error();
            tracing::warn!(%error, "value not cached: it does not serialize");
            None
        }
    }
}

async fn write(cache: &Cache, key: &str, bytes: Arc<[u8]>, retention: Duration) {
    let written =
        with_backend!(&cache.inner.store, backend => backend.set(key, bytes, retention).await);
    if let Err(error) = written {
        cache.inner.counters.error();
        tracing::debug!(%error, "cache write failed");
    }
}

/// Refreshes an entry while callers keep being served the current one. Takes the fill lock so one
/// process refreshes; a failed load leaves the entry as it is.
async fn refresh<R, M: Mode<R>>(
    cache: Cache,
    key: String,
    policy: Policy,
    load: impl Future<Output = R>,
    _claim: RefreshClaim,
) {
    let lock = if policy.lock {
        match take_lock(&cache, &key, &policy).await {
            Ok(Some(lock)) => Some(lock),
            // Another process is refreshing or filling it.
            Ok(None) => return,
            Err(()) => None,
        }
    } else {
        None
    };
    let (outcome, load_time) = timed(load).await;
    // Encoded before any await, so the job holds no borrow of the outcome and stays `Send`.
    let encoded = encode::<R, M>(&cache, &policy, &outcome, load_time);
    drop(outcome);
    match encoded {
        Some((bytes, Some(ttl))) => write(&cache, &key, bytes, policy.retention(ttl)).await,
        // The value is now one that is not cached (`None` without negative caching): the old
        // entry must not outlive what it described.
        Some((_, None)) => {
            let deleted = with_backend!(&cache.inner.store, backend => backend.delete(&key).await);
            if deleted.is_err() {
                cache.inner.counters.error();
            }
        }
        None => {
            cache.inner.counters.refresh_failure();
            tracing::warn!(key = %key, "refresh failed; serving the current entry");
        }
    }
    if let Some(lock) = lock {
        lock.release(&cache).await;
    }
}

/// The fill lock of one key, held under a random token.
struct HeldLock {
    key: String,
    token: String,
}

impl HeldLock {
    async fn release(self, cache: &Cache) {
        let released = with_backend!(&cache.inner.store, backend => backend.unlock(&self.key, &self.token).await);
        if let Err(error) = released {
            cache.inner.counters.error();
            tracing::debug!(%error, "fill lock release failed; it expires by itself");
        }
    }
}

enum FillLock<V> {
    /// This caller loads.
    Held(HeldLock),
    /// Another caller's load landed while this one waited.
    Filled(V, Arc<[u8]>),
    /// No lock could be had (backend down, or the wait timed out): load without it.
    Unavailable,
}

/// One attempt at the fill lock: `Ok(None)` when someone else holds it, `Err` when the backend
/// failed.
async fn take_lock(cache: &Cache, key: &str, policy: &Policy) -> Result<Option<HeldLock>, ()> {
    let lock_key = lock_key(key);
    let token = format!("{:016x}", rand::random::<u64>());
    let taken = with_backend!(&cache.inner.store, backend => backend.try_lock(&lock_key, &token, policy.lock_timeout).await);
    match taken {
        Ok(true) => Ok(Some(HeldLock {
            key: lock_key,
            token,
        })),
        Ok(false) => Ok(None),
        Err(error) => {
            cache.inner.counters.error();
            tracing::debug!(%error, "fill lock unavailable; loading without it");
            Err(())
        }
    }
}

/// Takes the fill lock, or waits for its holder's value with bounded polling (5 ms doubling to
/// 100 ms) for at most `lock_timeout`. A holder that died frees the lock when it expires, and a
/// waiter then takes it over.
async fn fill_lock<V: DeserializeOwned>(cache: &Cache, key: &str, policy: &Policy) -> FillLock<V> {
    const FIRST_PAUSE: Duration = Duration::from_millis(5);
    const LONGEST_PAUSE: Duration = Duration::from_millis(100);
    match take_lock(cache, key, policy).await {
        Ok(Some(lock)) => return FillLock::Held(lock),
        Ok(None) => cache.inner.counters.lock_wait(),
        Err(()) => return FillLock::Unavailable,
    }
    let deadline = Instant::now() + policy.lock_timeout;
    let mut pause = FIRST_PAUSE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
        if let Some((value, bytes)) = fresh_entry(cache, key).await {
            return FillLock::Filled(value, bytes);
        }
        if Instant::now() >= deadline {
            cache.inner.counters.lock_timeout();
            tracing::debug!(key, "waited lock_timeout for another fill; loading");
            return FillLock::Unavailable;
        }
        match take_lock(cache, key, policy).await {
            Ok(Some(lock)) => return FillLock::Held(lock),
            Ok(None) => {}
            Err(()) => return FillLock::Unavailable,
        }
    }
}

/// The lock guarding fills of `key`. `#` never appears in a rendered value, so no data key
/// produced from a template can be mistaken for it.
fn lock_key(key: &str) -> String {
    let mut lock = String::with_capacity(key.len() + 5);
    lock.push_str(key);
    lock.push_str("#lock");
    lock
}

/// A fresh entry under `key` with its envelope, without touching the counters.
async fn fresh_entry<V: DeserializeOwned>(cache: &Cache, key: &str) -> Option<(V, Arc<[u8]>)> {
    let bytes = with_backend!(&cache.inner.store, backend => match backend.get(key).await {
        Ok(Some(bytes)) => Arc::<[u8]>::from(bytes.as_ref()),
        _ => return None,
    });
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

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
//!
//! The engine is the same for every cached function, so it is not generic: each of its steps is
//! a plain function that returns a boxed future ([`Step`]), compiled once, here. (An `async fn`
//! awaited from generic code would be compiled again in every crate that awaits it, with
//! everything it awaits.) Between the steps run the shells, [`join`], [`load`] and [`refresh`],
//! which decode, run the body and encode its value: they are generic over the return type and
//! over the body's future, which is a boxed `dyn Future` for an erased loader (see `loader.rs`),
//! so that the functions returning one type share them. The boxes cost a few allocations per
//! miss, next to a database load.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::backend::{Backend, Begin, FillKeys, Stored, Token};
use crate::call::Call;
use crate::core::{with_backend, Core, Step, Store};
use crate::envelope::{self, Meta};
use crate::error::Result;
use crate::flight::{Join, Landing, Leader, RefreshClaim, Waited};
use crate::function::EntryRef;
use crate::key::Key;
use crate::outcome::{take_skip_store, Mode, SharedFailure, Sharing};
use crate::policy::Policy;
use crate::stats::Counters;

/// A stored value's envelope and how long it is fresh: `None` when it is handed to the callers
/// waiting on the load but not stored (a value that is not cached, or is too large).
pub(crate) struct Encoded {
    pub(crate) bytes: Arc<[u8]>,
    pub(crate) ttl: Option<Duration>,
}

// The shells: the only generic code of the miss path and of refreshes.

/// How a miss goes on once this process's single flight is joined. Returned, then taken apart
/// at once: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Joined<'a, R> {
    /// Another caller's load left this outcome.
    Outcome(R),
    /// The load this call waited for was voided by an invalidation, or went away: read the
    /// cache again.
    Reread,
    /// This call loads: see [`load`].
    Load(Fill<'a>),
}

/// A miss up to its load: one load per key in this process, and with the fill lock one across
/// processes. `offline`: the read found the backend unavailable, so the load spends no more
/// cache operations and stores nothing; the single flight still spares the database.
///
/// Generic over the return type only, not over the function, so functions that return the same
/// type share it.
pub(crate) async fn join<'a, R, M: Mode<R>>(
    call: &'a Call<'a>,
    sharing: &Sharing<R>,
    offline: bool,
) -> Joined<'a, R> {
    let mut step = miss(call, offline, decodes::<M::Value>);
    loop {
        match step.await {
            Miss::Load(fill) => return Joined::Load(fill),
            Miss::Value(bytes) => {
                if let Some(value) = decode_value::<M::Value>(&bytes) {
                    return Joined::Outcome(M::from_value(value));
                }
            }
            Miss::Failed(shared) => {
                if let Some(outcome) = sharing.unshare(&*shared) {
                    return Joined::Outcome(outcome);
                }
            }
            Miss::Reread => return Joined::Reread,
        }
        // What the load this call waited for left is of no use to it: it loads by itself.
        step = unled(call, offline);
    }
}

/// The load [`join`] handed this call: runs the body, stores its value if no invalidation came
/// in between, and hands what it left to the callers waiting on it. Generic over the body's
/// future, a boxed `dyn Future` shared by the functions of one return type when their loader is
/// erased (see `loader.rs`).
pub(crate) async fn load<R, M: Mode<R>, F: Future<Output = R>>(
    fill: Fill<'_>,
    body: F,
    sharing: &Sharing<R>,
) -> R {
    let span = fill_span(false, fill.call);
    let watch = fill.watch();
    let outcome = body.instrument(span.clone()).await;
    let took = watch.finished();
    let encoded = encode::<R, M>(fill.call, &outcome, took, fill.stamps());
    record_fill(&span, took, encoded.as_ref());
    let failure = match encoded {
        Some(_) => None,
        None => sharing.share(&outcome),
    };
    fill.finish(encoded, failure).await;
    outcome
}

/// Refreshes an entry while callers keep being served the current one. One process refreshes
/// (the fill lock, when on); a failed load leaves the entry as it is.
pub(crate) async fn refresh<R, M: Mode<R>>(job: RefreshJob, load: impl Future<Output = R>) {
    let Some(refreshing) = begin_refresh(job).await else {
        return;
    };
    let span = fill_span(true, &refreshing.call());
    let watch = refreshing.watch();
    let outcome = load.instrument(span.clone()).await;
    let load_time = watch.finished();
    // Encoded before any await, so the job holds no borrow of the outcome and stays `Send`.
    let encoded = encode::<R, M>(&refreshing.call(), &outcome, load_time, refreshing.stamps());
    record_fill(&span, load_time, encoded.as_ref());
    drop(outcome);
    refreshing.finish(encoded).await;
}

/// The span of a load, `cache.fill` or `cache.refresh`: the body's own spans (its database
/// queries) nest under it.
fn fill_span(refresh: bool, call: &Call<'_>) -> tracing::Span {
    match refresh {
        true => tracing::debug_span!(
            "cache.refresh",
            function = call.function_name(),
            load_ms = tracing::field::Empty,
            cached = tracing::field::Empty,
        ),
        false => tracing::debug_span!(
            "cache.fill",
            function = call.function_name(),
            load_ms = tracing::field::Empty,
            cached = tracing::field::Empty,
        ),
    }
}

/// Records how long a load took and whether its value is to be stored.
fn record_fill(span: &tracing::Span, took: Duration, encoded: Option<&Encoded>) {
    span.record("load_ms", took.as_secs_f64() * 1e3);
    span.record(
        "cached",
        encoded.is_some_and(|encoded| encoded.ttl.is_some()),
    );
}

/// The envelope of `outcome`'s value and how long it is fresh; `None` for a failure, or a value
/// that does not serialize. A value its body kept out of the cache (`unless`) is encoded for
/// the callers waiting on it, but not stored; a refresh then removes the entry it replaced.
pub(crate) fn encode<R, M: Mode<R>>(
    call: &Call<'_>,
    outcome: &R,
    load_time: Duration,
    stamps: &[(String, Token)],
) -> Option<Encoded> {
    let skipped = take_skip_store();
    let value = M::value(outcome)?;
    let ttl = if skipped {
        None
    } else {
        M::ttl(outcome, call.policy, call.ttl())
    };
    let bytes = header(call, ttl, load_time, stamps)
        .and_then(|header| envelope::append_value(header, value, call.encoding()));
    seal(call, bytes, ttl)
}

/// The value in a whole envelope, `None` when it does not decode.
fn decode_value<V: DeserializeOwned>(bytes: &[u8]) -> Option<V> {
    envelope::decode(bytes)
        .and_then(|envelope| envelope.value())
        .ok()
}

/// Whether a whole envelope decodes as a `V`: how the engine, which is not generic, checks an
/// entry another process stored.
fn decodes<V: DeserializeOwned>(bytes: &[u8]) -> bool {
    decode_value::<V>(bytes).is_some()
}

// The engine.

/// How a miss goes on after the single flight and the fill lock.
pub(crate) enum Miss<'a> {
    /// This call loads.
    Load(Fill<'a>),
    /// Another caller's load (or another process's fill) left this envelope.
    Value(Arc<[u8]>),
    /// The load this call waited for failed, with this result.
    Failed(SharedFailure),
    /// The load this call waited for was voided or went away: read the cache again.
    Reread,
}

/// A load this call runs: the fill guard, and the single flight when this call leads it.
pub(crate) struct Fill<'a> {
    call: &'a Call<'a>,
    /// `None` when the backend could not tell the version: nothing is then stored.
    ticket: Option<Ticket>,
    leader: Option<Leader<'a>>,
}

/// A miss up to its load: joins this process's load of the key, or leads it under the fill lock.
/// `decodes` tells whether an entry stored meanwhile is a value of the function's type.
pub(crate) fn miss<'a>(
    call: &'a Call<'a>,
    offline: bool,
    decodes: fn(&[u8]) -> bool,
) -> Step<'a, Miss<'a>> {
    Box::pin(async move {
        let follower = match call.core.flights.join(call.key, call.tag_names()) {
            Join::Lead(leader) => return lead(call, offline, decodes, leader).await,
            Join::Follow(follower) => follower,
        };
        let counters = &call.core.counters;
        call.count_coalesced();
        match follower.wait(call.patience()).await {
            Waited::Landed(Landing::Value(bytes)) => return Miss::Value(bytes),
            Waited::Landed(Landing::Failed(Some(shared))) => return Miss::Failed(shared),
            Waited::Landed(Landing::Failed(None)) => {}
            Waited::Landed(Landing::Reread) | Waited::Reread => return Miss::Reread,
            Waited::TimedOut => {
                counters.lock_timeout();
                tracing::debug!(
                    key = call.key,
                    "waited lock_timeout for this process's load; loading"
                );
            }
        }
        Miss::Load(unled_fill(call, offline).await)
    })
}

/// A load outside the single flight, for a caller whose wait on it gave it nothing to use.
fn unled<'a>(call: &'a Call<'a>, offline: bool) -> Step<'a, Miss<'a>> {
    Box::pin(async move { Miss::Load(unled_fill(call, offline).await) })
}

async fn unled_fill<'a>(call: &'a Call<'a>, offline: bool) -> Fill<'a> {
    let ticket = if offline {
        None
    } else {
        begin(call, None).await.map(|(ticket, _, _)| ticket)
    };
    Fill {
        call,
        ticket,
        leader: None,
    }
}

/// The leader's fill: under the fill lock when the policy asks for it.
async fn lead<'a>(
    call: &'a Call<'a>,
    offline: bool,
    decodes: fn(&[u8]) -> bool,
    leader: Leader<'a>,
) -> Miss<'a> {
    let ticket = if offline {
        None
    } else if call.policy.lock {
        match acquire(call, decodes, &leader).await {
            Acquired::Filled(bytes) => {
                leader.land(Landing::Value(Arc::clone(&bytes)));
                return Miss::Value(bytes);
            }
            Acquired::Lock(ticket) => Some(ticket),
            Acquired::TimedOut => begin(call, None).await.map(|(ticket, _, _)| ticket),
            Acquired::BackendDown => None,
        }
    } else {
        begin(call, None).await.map(|(ticket, _, _)| ticket)
    };
    Miss::Load(Fill {
        call,
        ticket,
        leader: Some(leader),
    })
}

impl<'a> Fill<'a> {
    /// Each tag's name and the epoch it had when the fill began, to stamp into the entry.
    pub(crate) fn stamps(&self) -> &[(String, Token)] {
        self.ticket.as_ref().map_or(&[], |ticket| &ticket.stamps)
    }

    /// Counts the load that starts now, and watches it.
    pub(crate) fn watch(&self) -> LoadWatch<'a> {
        let counters = &self.call.core.counters;
        counters.load();
        if let Some(function) = self.call.function() {
            function.load();
        }
        LoadWatch::start(counters, self.call.function_entry())
    }

    /// Stores the load's value if no invalidation came in between, and hands what it left
    /// (`encoded`, or else `failure`) to the callers that waited on it.
    pub(crate) fn finish(
        self,
        encoded: Option<Encoded>,
        failure: Option<SharedFailure>,
    ) -> Step<'a, ()> {
        Box::pin(async move {
            let Fill {
                call,
                ticket,
                leader,
            } = self;
            let landing = store(call, ticket, leader.as_ref(), encoded, failure).await;
            if let Some(leader) = leader {
                leader.land(landing);
            }
        })
    }
}

/// Stores a load's value under its fill guard; what the load's followers get.
async fn store(
    call: &Call<'_>,
    ticket: Option<Ticket>,
    leader: Option<&Leader<'_>>,
    encoded: Option<Encoded>,
    failure: Option<SharedFailure>,
) -> Landing {
    // Without a ticket the backend failed to say which version the load started from: storing
    // could install a value older than an invalidation, so nothing is stored.
    let Some(ticket) = ticket else {
        // Unguarded, this value is shared with every caller that joined during the load, as the
        // price of sparing the database while the cache cannot be reached: a caller sent back
        // would find the cache unreachable again, and wait one more operation timeout.
        if let Some(leader) = leader {
            leader.mark();
        }
        return match encoded {
            Some(encoded) => Landing::Value(encoded.bytes),
            None => Landing::Failed(failure),
        };
    };
    if let Some(leader) = leader {
        leader.mark();
    }
    let value = encoded.as_ref().and_then(|encoded| {
        encoded.ttl.map(|ttl| Stored {
            bytes: Arc::clone(&encoded.bytes),
            ttl: call.policy.retention(ttl),
            sliding: call.policy.sliding,
        })
    });
    let valid = finish(ticket, value).await;
    match encoded {
        None => Landing::Failed(failure),
        Some(encoded) if valid => Landing::Value(encoded.bytes),
        Some(_) => Landing::Reread,
    }
}

/// A started fill: the version and epochs it read, and the lock while it holds it. Dropped
/// before [`finish`] completes (its caller cancelled, its body panicked), it frees the lock in
/// the background, so waiters take over at once instead of after the lock's ttl.
pub(crate) struct Ticket {
    core: Arc<Core>,
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
            release_later(&self.core, &self.keys.lock, token);
        }
    }
}

/// Frees the lock `lock` if `token` still holds it, in a background task that retries while the
/// backend is unavailable, for as long as the lock could live. Never blocks the caller: this runs
/// from `Drop`.
pub(crate) fn release_later(core: &Arc<Core>, lock: &str, token: String) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let core = core.clone();
    let lock = lock.to_owned();
    runtime.spawn(async move {
        const PAUSE: Duration = Duration::from_millis(50);
        let started = Instant::now();
        loop {
            let freed = with_backend!(&core.store, backend => backend.unlock(&lock, &token).await);
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

enum Acquired {
    /// This caller holds the lock and loads.
    Lock(Ticket),
    /// Another caller's value landed while this one waited: its envelope.
    Filled(Arc<[u8]>),
    /// The wait ran out: load without the lock.
    TimedOut,
    /// The backend failed: load, and store nothing.
    BackendDown,
}

/// Takes the fill lock, or waits for its holder's value with bounded polling (5 ms doubling to
/// 100 ms) for at most `lock_timeout`. A holder that died frees the lock when it expires, and a
/// waiter then takes it over.
///
/// Each read here may find another process's value, landed for this process's followers, so
/// each is marked on `leader` first: it may predate an invalidation that completed before a
/// follower who joins after it started.
async fn acquire(call: &Call<'_>, decodes: fn(&[u8]) -> bool, leader: &Leader<'_>) -> Acquired {
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
                    current.filter(|bytes| usable(call, bytes, &ticket.stamps_epochs(), decodes));
                return match found {
                    Some(bytes) => {
                        finish(ticket, None).await;
                        Acquired::Filled(bytes)
                    }
                    None => Acquired::Lock(ticket),
                };
            }
            Some(_) => {}
            None => return Acquired::BackendDown,
        }
        if !waited {
            waited = true;
            call.count_lock_wait();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            call.core.counters.lock_timeout();
            tracing::debug!(
                key = call.key,
                "waited lock_timeout for another fill; loading"
            );
            return Acquired::TimedOut;
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
        leader.mark();
        if let Some(bytes) = usable_entry(call, decodes).await {
            return Acquired::Filled(bytes);
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

/// Times a load, and counts it as cancelled or panicked if it is dropped before it finishes.
pub(crate) struct LoadWatch<'a> {
    counters: &'a Counters,
    /// Where the load's duration is recorded.
    function: Option<EntryRef>,
    started: Instant,
    finished: bool,
}

impl<'a> LoadWatch<'a> {
    fn start(counters: &'a Counters, function: Option<EntryRef>) -> Self {
        LoadWatch {
            counters,
            function,
            started: Instant::now(),
            finished: false,
        }
    }

    /// The load finished: how long it took.
    pub(crate) fn finished(mut self) -> Duration {
        self.finished = true;
        let took = self.started.elapsed();
        if let Some(function) = &self.function {
            function.record_load_time(took);
        }
        took
    }
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

/// The entry a refresh stores into, and its claim on refreshing it.
pub struct RefreshJob {
    core: Arc<Core>,
    key: String,
    tags: Vec<Key>,
    policy: Policy,
    /// Held until the refresh ends: no other refresh of the key starts in this process meanwhile.
    _claim: RefreshClaim,
}

impl RefreshJob {
    /// The refresh of `call`'s entry, under `claim`.
    pub(crate) fn new(call: &Call<'_>, claim: RefreshClaim) -> Self {
        RefreshJob {
            core: call.core.clone(),
            key: call.key.to_owned(),
            tags: call.tags.to_vec(),
            policy: *call.policy,
            _claim: claim,
        }
    }

    fn call(&self) -> Call<'_> {
        Call::new(&self.core, &self.key, &self.tags, &self.policy)
    }
}

/// A refresh whose fill began: the body runs next.
pub(crate) struct Refreshing {
    job: RefreshJob,
    ticket: Ticket,
}

/// Begins a refresh's fill; `None` when another process is filling or refreshing the entry, or
/// the backend failed.
fn begin_refresh(job: RefreshJob) -> Step<'static, Option<Refreshing>> {
    Box::pin(async move {
        let lock = job.policy.lock;
        let token = format!("{:016x}", rand::random::<u64>());
        let begun = begin(&job.call(), lock.then_some(token.as_str())).await;
        let ticket = match begun {
            Some((_, locked, _)) if lock && !locked => return None,
            Some((ticket, _, _)) => ticket,
            None => return None,
        };
        Some(Refreshing { job, ticket })
    })
}

impl Refreshing {
    pub(crate) fn call(&self) -> Call<'_> {
        self.job.call()
    }

    pub(crate) fn stamps(&self) -> &[(String, Token)] {
        &self.ticket.stamps
    }

    /// Watches the refresh's load, which is not counted among the loads of misses.
    pub(crate) fn watch(&self) -> LoadWatch<'_> {
        LoadWatch::start(&self.job.core.counters, self.call().function_entry())
    }

    /// Stores the refreshed value, or leaves the entry as it is when the load failed.
    pub(crate) fn finish(self, encoded: Option<Encoded>) -> Step<'static, ()> {
        Box::pin(async move {
            let Refreshing { job, ticket } = self;
            let value = match encoded {
                Some(Encoded {
                    bytes,
                    ttl: Some(ttl),
                }) => Some(Stored {
                    bytes,
                    ttl: job.policy.retention(ttl),
                    sliding: job.policy.sliding,
                }),
                // The value is now one that is not cached (`None` without negative caching): the
                // old entry must not outlive what it described.
                Some(Encoded { ttl: None, .. }) => {
                    finish(ticket, None).await;
                    crate::invalidate::invalidate_key(&job.core, &job.key)
                        .await
                        .ok();
                    return;
                }
                None => {
                    job.core.counters.refresh_failure();
                    crate::log::warn_throttled!(key = %job.key, "refresh failed; serving the current entry");
                    None
                }
            };
            finish(ticket, value).await;
        })
    }
}

/// Begins a write's fill, without the lock: the version the write must find unchanged when it
/// stores. `None` when the backend failed.
pub(crate) fn begin_write<'a>(call: &'a Call<'a>) -> Step<'a, Option<Ticket>> {
    Box::pin(async move { begin(call, None).await.map(|(ticket, _, _)| ticket) })
}

/// `begin_fill`, counting a failure: the ticket, whether it holds the lock, and the entry read
/// under the lock. `None` when the backend failed.
async fn begin(call: &Call<'_>, lock: Option<&str>) -> Option<(Ticket, bool, Option<Arc<[u8]>>)> {
    let core = call.core;
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
    let started = with_backend!(&core.store, backend => match backend.begin_fill(&keys, begin).await {
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
                core: core.clone(),
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
            core.record_fault(&error);
            tracing::debug!(%error, "fill could not start on the backend; loading without it");
            // A lock request that timed out may still run on the server later (a paused or slow
            // Redis): free it behind itself, so it cannot hold up the next caller for its ttl.
            if let (Some(token), true) = (lock, error.is_timeout()) {
                release_later(core, &keys.lock, token.to_owned());
            }
            None
        }
    }
}

/// `finish_fill`, counting a failure and a refused store. Whether the fill was still valid.
async fn finish(mut ticket: Ticket, value: Option<Stored>) -> bool {
    let core = ticket.core.clone();
    let storing = value.is_some();
    let finished = with_backend!(&core.store, backend =>
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
                core.counters.fill_discarded();
                tracing::debug!(
                    key = %ticket.keys.entry,
                    "value not stored: the key or a tag was invalidated during the load"
                );
            }
            false
        }
        Err(error) => {
            core.record_fault(&error);
            tracing::debug!(%error, "cache write failed");
            // Out of memory the fill was valid, only not stored; any other failure leaves it
            // unknown, so followers read again.
            error.is_out_of_memory()
        }
    }
}

/// The header of the envelope of a value fresh for `ttl` (zero when it is not stored).
fn header(
    call: &Call<'_>,
    ttl: Option<Duration>,
    load_time: Duration,
    stamps: &[(String, Token)],
) -> Result<Vec<u8>> {
    let stamps: Vec<(&str, Token)> = stamps
        .iter()
        .map(|(tag, epoch)| (tag.as_str(), *epoch))
        .collect();
    envelope::header(&Meta {
        ttl: ttl.unwrap_or(Duration::ZERO),
        load_time,
        sliding: call.policy.sliding,
        stamps: &stamps,
    })
}

/// A serialized envelope as [`encode`] returns it: not stored when larger than the cache
/// allows, `None` when the value did not serialize.
fn seal(call: &Call<'_>, bytes: Result<Vec<u8>>, ttl: Option<Duration>) -> Option<Encoded> {
    let core = call.core;
    match bytes {
        Ok(bytes) if ttl.is_some() && bytes.len() > core.max_value_size => {
            call.count_oversized();
            crate::log::warn_throttled!(
                size = bytes.len(),
                max = core.max_value_size,
                "value not cached: larger than max_value_size"
            );
            // Still handed to the callers waiting on this load, just not stored.
            Some(Encoded {
                bytes: bytes.into(),
                ttl: None,
            })
        }
        Ok(bytes) => Some(Encoded {
            bytes: bytes.into(),
            ttl,
        }),
        Err(error) => {
            call.record_fault(&error);
            crate::log::warn_throttled!(%error, "value not cached: it does not serialize");
            None
        }
    }
}

/// A fresh entry under the call's key whose stamps match its tags' current epochs and whose
/// value decodes, without touching the counters.
async fn usable_entry(call: &Call<'_>, decodes: fn(&[u8]) -> bool) -> Option<Arc<[u8]>> {
    let (bytes, epochs) = with_backend!(&call.core.store, backend => match backend.read(call.key, call.tags, None).await {
        Ok(found) => (Arc::<[u8]>::from(found.entry?.as_ref()), found.epochs),
        Err(_) => return None,
    });
    usable(call, &bytes, &epochs, decodes).then_some(bytes)
}

fn usable(
    call: &Call<'_>,
    bytes: &[u8],
    epochs: &[Option<Token>],
    decodes: fn(&[u8]) -> bool,
) -> bool {
    let Ok(envelope) = envelope::decode(bytes) else {
        return false;
    };
    !envelope.is_expired_at(envelope::now_ms())
        && envelope.stamps.match_epochs(call.tag_names(), epochs)
        && envelope.is_read_by(&call.encoding())
        && decodes(bytes)
}

/// Joins the single flight for `call` as its leader, for the engine's unit tests.
#[cfg(test)]
pub(crate) async fn lead_for_tests<'a>(call: &'a Call<'a>) -> Fill<'a> {
    match join::<u64, crate::outcome::PlainMode>(call, &Sharing::nothing(), false).await {
        Joined::Load(fill) => fill,
        _ => panic!("a lone miss loads"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Key;
    use crate::outcome::{OptionMode, PlainMode};
    use crate::policy::Policy;

    const POLICY: Policy = Policy::new();

    async fn stored<V: DeserializeOwned>(core: &Core, key: &str) -> Option<V> {
        let bytes = core.raw(key).await?;
        envelope::decode(&bytes)
            .and_then(|envelope| envelope.value())
            .ok()
    }

    /// Joins the single flight for `call` and, as its leader, loads `value`.
    async fn lead_and_load(call: &Call<'_>, value: u64) -> u64 {
        let fill = lead_for_tests(call).await;
        load::<u64, PlainMode, _>(fill, async { value }, &Sharing::nothing()).await
    }

    #[tokio::test]
    async fn a_miss_loads_and_stores_the_value_stamped_with_its_tags() {
        let core = Core::for_tests();
        let key = core.full_key("k");
        let tags: [Key; 1] = [core.tag_key("org:1")];
        let call = Call::new(&core, &key, &tags, &POLICY);
        assert_eq!(lead_and_load(&call, 7).await, 7);
        assert_eq!(stored::<u64>(&core, &key).await, Some(7));
        let bytes = core.raw(&key).await.expect("an entry");
        let envelope = envelope::decode(&bytes).expect("an envelope");
        assert_eq!(
            envelope
                .stamps
                .iter()
                .map(|(tag, _)| tag)
                .collect::<Vec<_>>(),
            ["org:1"]
        );
        assert_eq!(core.stats().loads, 1);
    }

    #[tokio::test]
    async fn a_load_overlapped_by_an_invalidation_is_returned_but_not_stored() {
        let core = Core::for_tests();
        let key = core.full_key("k");
        let call = Call::new(&core, &key, &[], &POLICY);
        let sharing = Sharing::nothing();
        let fill = lead_for_tests(&call).await;
        crate::invalidate::invalidate_key(&core, &key)
            .await
            .expect("invalidated");
        assert_eq!(
            load::<u64, PlainMode, _>(fill, async { 7 }, &sharing).await,
            7
        );
        assert_eq!(core.raw(&key).await, None);
        assert_eq!(core.stats().fills_discarded, 1);
    }

    #[tokio::test]
    async fn a_second_miss_waits_for_the_first_load() {
        let core = Core::for_tests();
        let key = core.full_key("k");
        let call = Call::new(&core, &key, &[], &POLICY);
        let sharing = Sharing::nothing();
        let leader = async {
            let Joined::Load(fill) = join::<u64, PlainMode>(&call, &sharing, false).await else {
                panic!("the first miss loads")
            };
            tokio::task::yield_now().await;
            load::<u64, PlainMode, _>(fill, async { 5 }, &sharing).await
        };
        let follower = async {
            tokio::task::yield_now().await;
            match join::<u64, PlainMode>(&call, &sharing, false).await {
                Joined::Outcome(value) => value,
                _ => panic!("the second miss takes the first one's value"),
            }
        };
        assert_eq!(tokio::join!(leader, follower), (5, 5));
        let stats = core.stats();
        assert_eq!((stats.loads, stats.coalesced), (1, 1));
    }

    #[tokio::test]
    async fn a_refresh_replaces_the_entry_and_a_value_not_cached_removes_it() {
        let core = Core::for_tests();
        let key = core.full_key("k");
        let call = Call::new(&core, &key, &[], &POLICY);
        lead_and_load(&call, 1).await;
        let claim = core.flights.claim_refresh(&key).expect("no refresh runs");
        assert!(core.flights.claim_refresh(&key).is_none(), "one at a time");
        refresh::<u64, PlainMode>(RefreshJob::new(&call, claim), async { 2 }).await;
        assert_eq!(stored::<u64>(&core, &key).await, Some(2));

        const UNCACHED_NONE: Policy = Policy::new().negative_ttl(None);
        let call = Call::new(&core, &key, &[], &UNCACHED_NONE);
        let claim = core
            .flights
            .claim_refresh(&key)
            .expect("the claim was given back");
        refresh::<Option<u64>, OptionMode>(RefreshJob::new(&call, claim), async { None }).await;
        assert_eq!(
            core.raw(&key).await,
            None,
            "the old entry no longer describes the row"
        );
    }
}

//! What happens when Redis fails: faults counted (and, for `on_cache_error = "fail"`, returned),
//! and invalidations that could not reach Redis queued and replayed once it answers.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::marker::PhantomData;
use std::pin::pin;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use crate::cache::{Cache, Inner};
use crate::error::{Error, ErrorKind};
use crate::policy::Policy;

/// What a cached function does when a cache operation fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnCacheError {
    /// Serve the function's own result and count the fault (the default).
    #[default]
    Ignore,
    /// Return the cache's error instead, converted into the function's error type. Applies to
    /// functions returning `Result<T, E>` with `E: From<cachemacro_runtime::Error>`; others keep
    /// ignoring faults.
    Fail,
}

/// How a cache error becomes the function's return value, when it can.
pub struct Failure<R> {
    convert: Option<fn(Error) -> R>,
}

impl<R> Failure<R> {
    /// Faults are never returned.
    pub fn never() -> Self {
        Self { convert: None }
    }

    /// The conversion to use for `policy` on `cache`, if faults are to be returned.
    pub(crate) fn converter(&self, cache: &Cache, policy: &Policy) -> Option<fn(Error) -> R> {
        let mode = policy.on_cache_error.unwrap_or(cache.inner.on_cache_error);
        (mode == OnCacheError::Fail)
            .then_some(self.convert)
            .flatten()
    }
}

impl<T, E: From<Error>> Failure<Result<T, E>> {
    /// Faults are returned as `Err(E::from(error))`.
    pub fn into_err() -> Self {
        Self {
            convert: Some(|error| Err(E::from(error))),
        }
    }
}

/// Picks [`Failure::into_err`] when the return type is `Result<T, E>` with
/// `E: From<cachemacro_runtime::Error>`, and [`Failure::never`] otherwise, by method resolution at
/// the call site: `(&FailureProbe::<R>::new()).failure()` with both traits in scope.
pub struct FailureProbe<R>(PhantomData<fn() -> R>);

impl<R> FailureProbe<R> {
    /// A probe for the return type `R`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

/// Chosen when the error type converts from the cache's error.
pub trait FailByError<R> {
    /// The failure conversion for `R`.
    fn failure(&self) -> Failure<R>;
}

impl<T, E: From<Error>> FailByError<Result<T, E>> for FailureProbe<Result<T, E>> {
    fn failure(&self) -> Failure<Result<T, E>> {
        Failure::into_err()
    }
}

/// The fallback for any other return type.
pub trait FailNever<R> {
    /// The failure conversion for `R`: none.
    fn failure(&self) -> Failure<R>;
}

impl<R> FailNever<R> for &FailureProbe<R> {
    fn failure(&self) -> Failure<R> {
        Failure::never()
    }
}

/// Return types that `on_cache_error = "fail"` can return a cache error through.
#[diagnostic::on_unimplemented(
    message = "`on_cache_error = \"fail\"` needs a `Result<T, E>` return type whose `E` implements `From<cachemacro_runtime::Error>`",
    label = "cannot return a cache error through `{Self}`"
)]
pub trait CanFail {}

impl<T, E: From<Error>> CanFail for Result<T, E> {}

/// Fails to compile unless `R` can carry a cache error: the check behind a function's
/// `on_cache_error = "fail"`.
pub const fn assert_can_fail<R: CanFail>() {}

thread_local! {
    /// The faults of the call being polled on this thread, while it runs with
    /// `on_cache_error = "fail"`: set around each poll of the call, as a task-local would be.
    static FAULTS: RefCell<Option<Arc<Faults>>> = const { RefCell::new(None) };
}

/// The first cache fault of one call.
#[derive(Default)]
pub(crate) struct Faults(OnceLock<Error>);

impl Faults {
    pub(crate) fn first(&self) -> Option<Error> {
        self.0.get().cloned()
    }
}

/// Runs `call` and, if a cache operation failed during it and `convert` is given, returns the
/// converted error instead of its outcome.
pub(crate) async fn failing_on_faults<R>(
    convert: Option<fn(Error) -> R>,
    call: impl Future<Output = R>,
) -> R {
    let faults = convert.map(|_| Arc::new(Faults::default()));
    let mut call = pin!(call);
    let outcome = poll_fn(|context| {
        let _scope = FaultScope::enter(faults.as_ref());
        call.as_mut().poll(context)
    })
    .await;
    match (convert, faults.and_then(|faults| faults.first())) {
        (Some(convert), Some(error)) => convert(error),
        _ => outcome,
    }
}

/// Makes `faults` the current call's while it lives, then restores the previous ones. Not
/// generic, unlike Tokio's task-locals, so that each cached function compiles none of it.
struct FaultScope {
    previous: Option<Arc<Faults>>,
}

impl FaultScope {
    fn enter(faults: Option<&Arc<Faults>>) -> Option<FaultScope> {
        let faults = Arc::clone(faults?);
        let previous = FAULTS
            .try_with(|current| current.replace(Some(faults)))
            .ok()?;
        Some(FaultScope { previous })
    }
}

impl Drop for FaultScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = FAULTS.try_with(|current| *current.borrow_mut() = previous);
    }
}

/// The first fault recorded so far in the current call (always `None` outside fail mode).
pub(crate) fn current_fault() -> Option<Error> {
    FAULTS
        .try_with(|faults| faults.borrow().as_ref().and_then(|faults| faults.first()))
        .ok()
        .flatten()
}

impl Cache {
    /// Counts a backend fault (commands skipped by the open breaker are counted by the breaker)
    /// and records it for the current call.
    pub(crate) fn record_fault(&self, error: &Error) {
        if error.kind() != ErrorKind::CircuitOpen {
            self.inner.counters.error();
        }
        self.note_fault(error);
    }

    /// Records `error` for the current call without counting it: it was counted where it
    /// happened, in a task of its own.
    pub(crate) fn note_fault(&self, error: &Error) {
        let _ = FAULTS.try_with(|faults| {
            if let Some(faults) = &*faults.borrow() {
                let _ = faults.0.set(error.clone());
            }
        });
    }
}

/// How many failed invalidations are kept for replay; past it the oldest is dropped.
pub(crate) const PENDING_CAPACITY: usize = 10_000;
/// How often the replayer retries while Redis stays unavailable.
const REPLAY_PAUSE: Duration = Duration::from_millis(200);

/// An invalidation that could not reach the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pending {
    /// A full key.
    Key(String),
    /// A tag, as the user named it.
    Tag(String),
}

/// Invalidations waiting for the backend to answer again.
#[derive(Default)]
pub(crate) struct PendingInvalidations {
    queue: Mutex<VecDeque<Pending>>,
    replaying: std::sync::atomic::AtomicBool,
}

impl Cache {
    /// Queues `pending` for replay. Any backend fault may be passing (a timeout, a lost
    /// connection, a server out of memory or loading), and an invalidation that is neither
    /// applied nor retried would leave stale data for a whole ttl.
    pub(crate) fn retry_later(&self, pending: Pending, error: &Error) {
        if matches!(
            error.kind(),
            ErrorKind::Encode | ErrorKind::Decode | ErrorKind::InvalidUrl
        ) {
            return;
        }
        let counters = &self.inner.counters;
        let mut queue = self
            .inner
            .pending
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if queue.contains(&pending) {
            return;
        }
        queue.push_back(pending);
        counters.invalidation_queued();
        if queue.len() > PENDING_CAPACITY {
            if let Some(lost) = queue.pop_front() {
                counters.invalidation_lost();
                crate::log::error_throttled!(?lost, "invalidation lost: the retry queue is full");
            }
        }
        drop(queue);
        if !self
            .inner
            .pending
            .replaying
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(replay(Arc::downgrade(&self.inner)));
            } else {
                self.inner
                    .pending
                    .replaying
                    .store(false, std::sync::atomic::Ordering::Release);
            }
        }
    }
}

/// Replays queued invalidations in order, pausing while the backend stays unavailable; ends when
/// the queue is empty or the cache is gone.
async fn replay(inner: Weak<Inner>) {
    loop {
        let Some(inner) = inner.upgrade() else { return };
        let cache = Cache { inner };
        let next = cache
            .inner
            .pending
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .front()
            .cloned();
        let Some(pending) = next else {
            cache
                .inner
                .pending
                .replaying
                .store(false, std::sync::atomic::Ordering::Release);
            // One may have been queued between the check and the flag.
            if cache
                .inner
                .pending
                .queue
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
                || cache
                    .inner
                    .pending
                    .replaying
                    .swap(true, std::sync::atomic::Ordering::AcqRel)
            {
                return;
            }
            continue;
        };
        let replayed = match &pending {
            Pending::Key(key) => crate::write::invalidate_key_once(&cache, key).await,
            Pending::Tag(tag) => cache.invalidate_tag_once(tag).await,
        };
        match replayed {
            Ok(()) => {
                let mut queue = cache
                    .inner
                    .pending
                    .queue
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if queue.front() == Some(&pending) {
                    queue.pop_front();
                }
                cache.inner.counters.invalidation_replayed();
                tracing::info!(?pending, "queued invalidation replayed");
            }
            Err(_) => {
                drop(cache);
                tokio::time::sleep(REPLAY_PAUSE).await;
            }
        }
    }
}

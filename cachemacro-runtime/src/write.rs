//! Write-through and invalidation: what `#[cache_put]` and `#[cache_invalidate]` call after the
//! function (the database write) has run.
//!
//! Both delete the versions of the keys they touch (and invalidation the epochs of the tags), so
//! a fill that read the database before the write cannot store its older value afterwards (see
//! [`crate::fill`]), and both detach this process's loads of those keys from the single flight,
//! so a call that starts after them never joins a load that started before.

use std::future::Future;
use std::time::Duration;

use crate::backend::{Backend, Stored};
use crate::cache::{with_backend, Cache, Store};
use crate::call::Call;
use crate::error::{Error, ErrorKind, Result};
use crate::fill::{begin_write, encode, Encoded, Step, Ticket};
use crate::key::Key;
use crate::outcome::{Mode, OptionMode, PlainMode, ResultMode};
use crate::policy::Policy;
use crate::resilience::{failing_on_faults, Failure, Pending};

/// Write-through for a function returning a plain value: runs it, then stores its value.
pub async fn put_value<T>(
    cache: &Cache,
    key: &str,
    tags: &[Key],
    policy: &Policy,
    body: impl Future<Output = T>,
    failure: Failure<T>,
) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    put::<T, PlainMode>(cache, key, tags, policy, body, failure).await
}

/// Write-through for a function returning `Result`: on `Ok` stores the value; on `Err` removes
/// the key (the database refused the write, so what the cache held may be wrong too) and returns
/// the error untouched.
pub async fn put_result<T, E>(
    cache: &Cache,
    key: &str,
    tags: &[Key],
    policy: &Policy,
    body: impl Future<Output = Result<T, E>>,
    failure: Failure<Result<T, E>>,
) -> Result<T, E>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    put::<Result<T, E>, ResultMode>(cache, key, tags, policy, body, failure).await
}

/// Write-through for a function returning `Option`: `Some` is stored, `None` stored for the
/// negative ttl or else removed.
pub async fn put_option<T>(
    cache: &Cache,
    key: &str,
    tags: &[Key],
    policy: &Policy,
    body: impl Future<Output = Option<T>>,
    failure: Failure<Option<T>>,
) -> Option<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    put::<Option<T>, OptionMode>(cache, key, tags, policy, body, failure).await
}

async fn put<R, M: Mode<R>>(
    cache: &Cache,
    key: &str,
    tags: &[Key],
    policy: &Policy,
    body: impl Future<Output = R>,
    failure: Failure<R>,
) -> R {
    let convert = failure.converter(cache, policy);
    let call = Call::new(cache, key, tags, policy);
    failing_on_faults(convert, async {
        // The version before the database write: of two overlapping writes, the cache cannot
        // tell which committed last, so the store is made only if no other write or
        // invalidation of the key came in between; otherwise the key is removed.
        let before = begin_write(&call).await;
        // The database first: the cache never holds a value the database refused, and readers
        // never see a value before it is committed.
        let outcome = body.await;
        let encoded = before
            .as_ref()
            .and_then(|before| encode::<R, M>(&call, &outcome, Duration::ZERO, before.stamps()));
        store_written(&call, before, encoded).await;
        outcome
    })
    .await
}

/// The cache's part of a write-through: stores the value if no other write came since `before`,
/// and removes the key otherwise, run to completion (see [`run_to_completion`]).
fn store_written<'a>(
    call: &'a Call<'a>,
    before: Option<Ticket>,
    encoded: Option<Encoded>,
) -> Step<'a, ()> {
    let cache = call.cache.clone();
    let key = call.key.to_owned();
    let stored = encoded.and_then(|encoded| {
        encoded.ttl.map(|ttl| Stored {
            bytes: encoded.bytes,
            ttl: call.policy.retention(ttl),
            sliding: call.policy.sliding,
        })
    });
    let expected = before.map(|before| before.version());
    let step = async move {
        let (Some(value), Some(expected)) = (stored, expected) else {
            return invalidate_key(&cache, &key).await.err();
        };
        let keys = cache.fill_keys(&key);
        let written = with_backend!(&cache.inner.store, backend =>
            backend.put(&keys.entry, &keys.version, Some(expected), value).await);
        // Loads of the key running now started before the write: callers from now on must not
        // join them.
        cache.inner.flights.detach_key(&key);
        let error = written.err()?;
        cache.record_fault(&error);
        crate::log::warn_throttled!(%error, "write-through failed; removing the key instead");
        invalidate_key(&cache, &key).await.err().or(Some(error))
    };
    Box::pin(run_to_completion(call.cache, step))
}

/// Runs the cache's part of a write to completion, even if the caller is dropped meanwhile: the
/// database has changed, and a cache step left half done would leave the old entry in place for
/// its whole ttl. Hands the step's fault to the caller's `on_cache_error`.
async fn run_to_completion(
    cache: &Cache,
    step: impl Future<Output = Option<Error>> + Send + 'static,
) {
    let fault = match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime.spawn(step).await.unwrap_or_else(|_| {
            Some(Error::new(
                ErrorKind::Backend,
                "the cache step of a write panicked",
            ))
        }),
        Err(_) => step.await,
    };
    if let Some(error) = fault {
        cache.note_fault(&error);
    }
}

/// Runs a function that returns `Result`; after `Ok`, removes `keys` and invalidates `tags`.
/// After `Err` it does nothing: the database did not change.
pub async fn invalidate_after_result<T, E>(
    cache: &Cache,
    keys: Vec<String>,
    tags: Vec<String>,
    policy: &Policy,
    body: impl Future<Output = Result<T, E>>,
    failure: Failure<Result<T, E>>,
) -> Result<T, E> {
    match body.await {
        // The database did not change: there is nothing to invalidate.
        Err(error) => Err(error),
        ok => invalidate_then(cache, &keys, &tags, policy, ok, failure).await,
    }
}

/// Runs a function; afterwards removes `keys` and invalidates `tags`.
pub async fn invalidate_after<R>(
    cache: &Cache,
    keys: Vec<String>,
    tags: Vec<String>,
    policy: &Policy,
    body: impl Future<Output = R>,
    failure: Failure<R>,
) -> R {
    let outcome = body.await;
    invalidate_then(cache, &keys, &tags, policy, outcome, failure).await
}

/// Invalidates `keys` and `tags`, then hands back `outcome` (or, with `on_cache_error = "fail"`,
/// the first fault).
async fn invalidate_then<R>(
    cache: &Cache,
    keys: &[String],
    tags: &[String],
    policy: &Policy,
    outcome: R,
    failure: Failure<R>,
) -> R {
    let convert = failure.converter(cache, policy);
    let step = invalidate_now(cache, keys, tags);
    failing_on_faults(convert, async {
        step.await;
        outcome
    })
    .await
}

/// Invalidates `keys` and `tags`, run to completion (see [`run_to_completion`]).
fn invalidate_now<'a>(cache: &'a Cache, keys: &[String], tags: &[String]) -> Step<'a, ()> {
    let step = invalidate_all(cache.clone(), keys.to_vec(), tags.to_vec());
    Box::pin(run_to_completion(cache, step))
}

/// Invalidates `keys` and `tags`; the first fault, if any. Each failure is counted, logged and
/// queued for replay where it happens.
async fn invalidate_all(cache: Cache, keys: Vec<String>, tags: Vec<String>) -> Option<Error> {
    let mut first = None;
    for key in &keys {
        if let Err(error) = invalidate_key(&cache, key).await {
            first.get_or_insert(error);
        }
    }
    for tag in &tags {
        if let Err(error) = cache.invalidate_tag(tag).await {
            first.get_or_insert(error);
        }
    }
    first
}

/// Removes the entry under the full `key` and voids its fills in flight, in this process and
/// others. A failure is counted, logged, queued for replay, and returned. Boxed, so that the
/// companions `invalidate_<fn>` and `refresh_<fn>` do not compile it again each.
pub fn invalidate_key<'a>(cache: &'a Cache, key: &'a str) -> Step<'a, Result<()>> {
    Box::pin(async move {
        let invalidated = invalidate_key_once(cache, key).await;
        if let Err(error) = &invalidated {
            cache.record_fault(error);
            crate::log::warn_throttled!(%error, "invalidation failed; queued for retry");
            cache.retry_later(Pending::Key(key.to_owned()), error);
        }
        invalidated
    })
}

pub(crate) async fn invalidate_key_once(cache: &Cache, key: &str) -> Result<()> {
    let keys = cache.fill_keys(key);
    let invalidated = with_backend!(&cache.inner.store, backend => backend.invalidate(&keys.entry, &keys.version).await);
    // Even when the backend failed: the loads running here started before this call.
    cache.inner.flights.detach_key(key);
    invalidated
}

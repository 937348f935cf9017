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
use crate::error::Result;
use crate::fill::{begin, encode, Ticket};
use crate::outcome::{Mode, OptionMode, PlainMode, ResultMode};
use crate::policy::Policy;
use crate::resilience::{failing_on_faults, Failure, Pending};

/// Write-through for a function returning a plain value: runs it, then stores its value.
pub async fn put_value<T>(
    cache: &Cache,
    key: String,
    tags: &[String],
    policy: &Policy,
    body: impl Future<Output = T>,
    failure: Failure<T>,
) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    put::<T, PlainMode>(cache, &key, tags, policy, body, failure).await
}

/// Write-through for a function returning `Result`: on `Ok` stores the value; on `Err` removes
/// the key (the database refused the write, so what the cache held may be wrong too) and returns
/// the error untouched.
pub async fn put_result<T, E>(
    cache: &Cache,
    key: String,
    tags: &[String],
    policy: &Policy,
    body: impl Future<Output = Result<T, E>>,
    failure: Failure<Result<T, E>>,
) -> Result<T, E>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    put::<Result<T, E>, ResultMode>(cache, &key, tags, policy, body, failure).await
}

/// Write-through for a function returning `Option`: `Some` is stored, `None` stored for the
/// negative ttl or else removed.
pub async fn put_option<T>(
    cache: &Cache,
    key: String,
    tags: &[String],
    policy: &Policy,
    body: impl Future<Output = Option<T>>,
    failure: Failure<Option<T>>,
) -> Option<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    put::<Option<T>, OptionMode>(cache, &key, tags, policy, body, failure).await
}

async fn put<R, M: Mode<R>>(
    cache: &Cache,
    key: &str,
    tags: &[String],
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
        let before = begin(&call, None).await.map(|(ticket, _, _)| ticket);
        // The database first: the cache never holds a value the database refused, and readers
        // never see a value before it is committed.
        let outcome = body.await;
        store_written::<R, M>(&call, before, outcome).await
    })
    .await
}

async fn store_written<R, M: Mode<R>>(call: &Call<'_>, before: Option<Ticket>, outcome: R) -> R {
    let cache = call.cache;
    let Some(before) = before else {
        invalidate_key(cache, call.key).await.ok();
        return outcome;
    };
    match encode::<R, M>(call, &outcome, Duration::ZERO, before.stamps()) {
        Some((bytes, Some(ttl))) => {
            let value = Stored {
                bytes,
                ttl: call.policy.retention(ttl),
                sliding: call.policy.sliding,
            };
            let keys = call.fill_keys();
            let written = with_backend!(&cache.inner.store, backend =>
                backend.put(&keys.entry, &keys.version, Some(before.version()), value).await);
            // Loads of the key running now started before the write: callers from now on must
            // not join them.
            cache.inner.flights.detach_key(call.key);
            if let Err(error) = written {
                cache.record_fault(&error);
                crate::log::warn_throttled!(%error, "write-through failed; removing the key instead");
                invalidate_key(cache, call.key).await.ok();
            }
        }
        _ => {
            invalidate_key(cache, call.key).await.ok();
        }
    }
    outcome
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
    failing_on_faults(convert, async {
        invalidate_all(cache, keys, tags).await;
        outcome
    })
    .await
}

async fn invalidate_all(cache: &Cache, keys: &[String], tags: &[String]) {
    for key in keys {
        invalidate_key(cache, key).await.ok();
    }
    for tag in tags {
        // Counted, logged and queued for replay by `invalidate_tag` itself.
        cache.invalidate_tag(tag).await.ok();
    }
}

/// Removes the entry under the full `key` and voids its fills in flight, in this process and
/// others. A failure is counted, logged, queued for replay, and returned.
pub async fn invalidate_key(cache: &Cache, key: &str) -> Result<()> {
    let invalidated = invalidate_key_once(cache, key).await;
    if let Err(error) = &invalidated {
        cache.record_fault(error);
        crate::log::warn_throttled!(%error, "invalidation failed; queued for retry");
        cache.retry_later(Pending::Key(key.to_owned()), error);
    }
    invalidated
}

pub(crate) async fn invalidate_key_once(cache: &Cache, key: &str) -> Result<()> {
    let keys = cache.fill_keys(key);
    let invalidated = with_backend!(&cache.inner.store, backend => backend.invalidate(&keys.entry, &keys.version).await);
    // Even when the backend failed: the loads running here started before this call.
    cache.inner.flights.detach_key(key);
    invalidated
}

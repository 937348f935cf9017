//! Write-through and invalidation: what `#[cache_put]` and `#[cache_invalidate]` call after the
//! function (the database write) has run.
//!
//! Both bump the versions of the keys they touch, so a fill that read the database before the
//! write cannot store its older value afterwards (see [`crate::fill`]).

use std::future::Future;
use std::time::Duration;

use crate::backend::Backend;
use crate::cache::{with_backend, Cache, Store};
use crate::error::Result;
use crate::fill::{encode, register_tags};
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
    // The database first: the cache never holds a value the database refused, and readers never
    // see a value before it is committed.
    let outcome = body.await;
    let convert = failure.converter(cache, policy);
    failing_on_faults(
        convert,
        store_written::<R, M>(cache, key, tags, policy, outcome),
    )
    .await
}

async fn store_written<R, M: Mode<R>>(
    cache: &Cache,
    key: &str,
    tags: &[String],
    policy: &Policy,
    outcome: R,
) -> R {
    match encode::<R, M>(cache, policy, &outcome, Duration::ZERO) {
        Some((bytes, Some(ttl))) => {
            register_tags(cache, key, tags, policy).await;
            let retention = policy.retention(ttl);
            let written = with_backend!(&cache.inner.store, backend => backend.put(key, bytes, retention).await);
            if let Err(error) = written {
                cache.record_fault(&error);
                tracing::warn!(%error, key, "write-through failed; removing the key instead");
                invalidate_key(cache, key).await.ok();
            }
        }
        _ => {
            invalidate_key(cache, key).await.ok();
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

/// Removes the entry under the full `key` and voids its fills in flight. A failure is counted,
/// logged, queued for replay when Redis is unavailable, and returned.
pub async fn invalidate_key(cache: &Cache, key: &str) -> Result<()> {
    let invalidated = invalidate_key_once(cache, key).await;
    if let Err(error) = &invalidated {
        cache.record_fault(error);
        tracing::warn!(%error, key, "invalidation failed");
        cache.retry_later(Pending::Key(key.to_owned()), error);
    }
    invalidated
}

pub(crate) async fn invalidate_key_once(cache: &Cache, key: &str) -> Result<()> {
    with_backend!(&cache.inner.store, backend => backend.invalidate(key).await)
}

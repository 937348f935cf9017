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

/// Write-through for a function returning a plain value: runs it, then stores its value.
pub async fn put_value<T>(
    cache: &Cache,
    key: String,
    tags: &[String],
    policy: &Policy,
    body: impl Future<Output = T>,
) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    put::<T, PlainMode>(cache, &key, tags, policy, body).await
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
) -> Result<T, E>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    put::<Result<T, E>, ResultMode>(cache, &key, tags, policy, body).await
}

/// Write-through for a function returning `Option`: `Some` is stored, `None` stored for the
/// negative ttl or else removed.
pub async fn put_option<T>(
    cache: &Cache,
    key: String,
    tags: &[String],
    policy: &Policy,
    body: impl Future<Output = Option<T>>,
) -> Option<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    put::<Option<T>, OptionMode>(cache, &key, tags, policy, body).await
}

async fn put<R, M: Mode<R>>(
    cache: &Cache,
    key: &str,
    tags: &[String],
    policy: &Policy,
    body: impl Future<Output = R>,
) -> R {
    // The database first: the cache never holds a value the database refused, and readers never
    // see a value before it is committed.
    let outcome = body.await;
    match encode::<R, M>(cache, policy, &outcome, Duration::ZERO) {
        Some((bytes, Some(ttl))) => {
            register_tags(cache, key, tags, policy).await;
            let retention = policy.retention(ttl);
            let written = with_backend!(&cache.inner.store, backend => backend.put(key, bytes, retention).await);
            if let Err(error) = written {
                cache.inner.counters.error();
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
    body: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let outcome = body.await;
    if outcome.is_ok() {
        invalidate_all(cache, &keys, &tags).await;
    }
    outcome
}

/// Runs a function; afterwards removes `keys` and invalidates `tags`.
pub async fn invalidate_after<R>(
    cache: &Cache,
    keys: Vec<String>,
    tags: Vec<String>,
    body: impl Future<Output = R>,
) -> R {
    let outcome = body.await;
    invalidate_all(cache, &keys, &tags).await;
    outcome
}

async fn invalidate_all(cache: &Cache, keys: &[String], tags: &[String]) {
    for key in keys {
        invalidate_key(cache, key).await.ok();
    }
    for tag in tags {
        if let Err(error) = cache.invalidate_tag(tag).await {
            cache.inner.counters.error();
            tracing::warn!(%error, tag = %tag, "tag invalidation failed");
        }
    }
}

/// Removes the entry under the full `key` and voids its fills in flight; counts and logs a
/// failure before returning it.
pub async fn invalidate_key(cache: &Cache, key: &str) -> Result<()> {
    let invalidated = with_backend!(&cache.inner.store, backend => backend.invalidate(key).await);
    if let Err(error) = &invalidated {
        cache.inner.counters.error();
        tracing::warn!(%error, key, "invalidation failed");
    }
    invalidated
}

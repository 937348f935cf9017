//! Cache-aside: read the entry, or run the loader and store what it returns.
//!
//! Every backend fault is counted and swallowed here: the caller of a cached function always gets
//! a value from the cache or from its own loader, never a cache error.

use std::future::Future;
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

use crate::backend::Backend;
use crate::cache::{timed, with_backend, Cache, Store};
use crate::envelope;
use crate::policy::Policy;

/// Cache-aside for a function returning a plain value: every value is stored.
pub async fn cached_value<T, F>(cache: &Cache, key: String, policy: &Policy, load: F) -> T
where
    T: Serialize + DeserializeOwned,
    F: Future<Output = T>,
{
    if let Some(value) = lookup(cache, &key).await {
        return value;
    }
    let (value, load_time) = timed(load).await;
    cache.inner.counters.load();
    store(
        cache,
        &key,
        &value,
        policy.ttl_or(cache.inner.default_ttl),
        load_time,
    )
    .await;
    value
}

/// Cache-aside for a function returning `Result`: `Ok` values are stored, errors returned as is.
pub async fn cached_result<T, E, F>(
    cache: &Cache,
    key: String,
    policy: &Policy,
    load: F,
) -> Result<T, E>
where
    T: Serialize + DeserializeOwned,
    F: Future<Output = Result<T, E>>,
{
    if let Some(value) = lookup(cache, &key).await {
        return Ok(value);
    }
    let (result, load_time) = timed(load).await;
    cache.inner.counters.load();
    if let Ok(value) = &result {
        store(
            cache,
            &key,
            value,
            policy.ttl_or(cache.inner.default_ttl),
            load_time,
        )
        .await;
    }
    result
}

/// Cache-aside for a function returning `Option`: `Some` is stored for the ttl, `None` for the
/// negative ttl (against lookups of absent rows hammering the database) unless that is off.
pub async fn cached_option<T, F>(cache: &Cache, key: String, policy: &Policy, load: F) -> Option<T>
where
    T: Serialize + DeserializeOwned,
    F: Future<Output = Option<T>>,
{
    if let Some(value) = lookup::<Option<T>>(cache, &key).await {
        return value;
    }
    let (value, load_time) = timed(load).await;
    cache.inner.counters.load();
    let ttl = match value {
        Some(_) => Some(policy.ttl_or(cache.inner.default_ttl)),
        None => policy.negative_ttl_value(),
    };
    if let Some(ttl) = ttl {
        store(cache, &key, &value, ttl, load_time).await;
    }
    value
}

/// The fresh value under `key`, counting the hit or miss; faults and bad entries are misses.
async fn lookup<T: DeserializeOwned>(cache: &Cache, key: &str) -> Option<T> {
    let counters = &cache.inner.counters;
    let found = with_backend!(&cache.inner.store, backend => match backend.get(key).await {
        Ok(Some(bytes)) => decode_fresh(cache, bytes.as_ref()),
        Ok(None) => None,
        Err(error) => {
            counters.error();
            tracing::debug!(%error, "cache read failed; loading instead");
            None
        }
    });
    match found {
        Some(_) => counters.hit(),
        None => counters.miss(),
    }
    found
}

fn decode_fresh<T: DeserializeOwned>(cache: &Cache, bytes: &[u8]) -> Option<T> {
    let decoded = envelope::decode(bytes).and_then(|envelope| {
        if envelope.is_expired_at(envelope::now_ms()) {
            Ok(None)
        } else {
            envelope.value().map(Some)
        }
    });
    decoded.unwrap_or_else(|error| {
        cache.inner.counters.decode_error();
        tracing::debug!(%error, "undecodable cache entry; it will be overwritten");
        None
    })
}

async fn store<T: Serialize + ?Sized>(
    cache: &Cache,
    key: &str,
    value: &T,
    ttl: Duration,
    load_time: Duration,
) {
    let counters = &cache.inner.counters;
    let bytes = match envelope::encode(value, ttl, load_time) {
        Ok(bytes) => bytes,
        Err(error) => {
            counters.error();
            tracing::warn!(%error, "value not cached: it does not serialize");
            return;
        }
    };
    let written = with_backend!(&cache.inner.store, backend => backend.set(key, bytes, ttl).await);
    if let Err(error) = written {
        counters.error();
        tracing::debug!(%error, "cache write failed");
    }
}

//! What the generated code calls: the entry points of `#[cached]`, `#[cache_put]`,
//! `#[cache_invalidate]` and the companions. Each takes the handle the function named and hands
//! its core to the engine.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::{de::DeserializeOwned, Serialize};

use crate::cache::Cache;
use crate::failure::Failure;
use crate::key::Key;
use crate::loader::Loader;
use crate::outcome::{OptionMode, PlainMode, ResultMode, Sharing};
use crate::policy::Policy;

/// Cache-aside for a function returning a plain value: every value is stored.
pub fn cached_value<'a, T, L>(
    cache: &'a Cache,
    key: &'a str,
    tags: &'a [Key],
    policy: &'a Policy,
    loader: L,
    sharing: Sharing<T>,
    failure: Failure<T>,
) -> impl Future<Output = T> + 'a
where
    T: Serialize + DeserializeOwned + 'static,
    L: Loader<T> + 'a,
{
    crate::aside::cached::<T, PlainMode, L>(
        &cache.core,
        key,
        tags,
        policy,
        loader,
        sharing,
        failure,
    )
}

/// Cache-aside for a function returning `Result`: `Ok` values are stored, errors returned as is.
pub fn cached_result<'a, T, E, L>(
    cache: &'a Cache,
    key: &'a str,
    tags: &'a [Key],
    policy: &'a Policy,
    loader: L,
    sharing: Sharing<Result<T, E>>,
    failure: Failure<Result<T, E>>,
) -> impl Future<Output = Result<T, E>> + 'a
where
    T: Serialize + DeserializeOwned + 'static,
    E: 'static,
    L: Loader<Result<T, E>> + 'a,
{
    crate::aside::cached::<Result<T, E>, ResultMode, L>(
        &cache.core,
        key,
        tags,
        policy,
        loader,
        sharing,
        failure,
    )
}

/// Cache-aside for a function returning `Option`: `Some` is stored for the ttl, `None` for the
/// negative ttl (against lookups of absent rows hammering the database) unless that is off.
pub fn cached_option<'a, T, L>(
    cache: &'a Cache,
    key: &'a str,
    tags: &'a [Key],
    policy: &'a Policy,
    loader: L,
    sharing: Sharing<Option<T>>,
    failure: Failure<Option<T>>,
) -> impl Future<Output = Option<T>> + 'a
where
    T: Serialize + DeserializeOwned + 'static,
    L: Loader<Option<T>> + 'a,
{
    crate::aside::cached::<Option<T>, OptionMode, L>(
        &cache.core,
        key,
        tags,
        policy,
        loader,
        sharing,
        failure,
    )
}

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
    crate::write::put::<T, PlainMode>(&cache.core, key, tags, policy, body, failure).await
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
    crate::write::put::<Result<T, E>, ResultMode>(&cache.core, key, tags, policy, body, failure)
        .await
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
    crate::write::put::<Option<T>, OptionMode>(&cache.core, key, tags, policy, body, failure).await
}

/// `#[cache_invalidate]` on a function returning `Result`: invalidates only after `Ok`.
pub async fn invalidate_after_result<T, E>(
    cache: &Cache,
    keys: Vec<String>,
    tags: Vec<String>,
    policy: &Policy,
    body: impl Future<Output = Result<T, E>>,
    failure: Failure<Result<T, E>>,
) -> Result<T, E> {
    crate::write::invalidate_after_result(&cache.core, keys, tags, policy, body, failure).await
}

/// `#[cache_invalidate]` on any other function: invalidates after it returns.
pub async fn invalidate_after<R>(
    cache: &Cache,
    keys: Vec<String>,
    tags: Vec<String>,
    policy: &Policy,
    body: impl Future<Output = R>,
    failure: Failure<R>,
) -> R {
    crate::write::invalidate_after(&cache.core, keys, tags, policy, body, failure).await
}

/// A call that `condition` sends past the cache: runs the body, reads and stores nothing.
pub async fn uncached<R, L: Loader<R>>(loader: L) -> R {
    let outcome = loader.start().await;
    // No fill reads what an `unless` in the body marked.
    crate::outcome::take_skip_store();
    outcome
}

/// `invalidate_<fn>` and `refresh_<fn>`: removes the entry under the full `key` and voids its
/// fills in flight, in this process and others. A failure is counted, logged, queued for replay,
/// and returned. The companion is a plain fn returning this future, not an `async fn` of its
/// own, so that it compiles no state machine per cached function.
pub fn invalidation(cache: Cache, key: Key) -> Invalidation {
    Invalidation(Box::pin(async move {
        crate::invalidate::invalidate_key(&cache.core, &key).await
    }))
}

/// `clear_<fn>`: removes the entries under any of `prefixes` (see `Cache::clear_prefix`).
pub fn clearing(cache: Cache, prefixes: Vec<String>) -> Clearing {
    Clearing(Box::pin(async move {
        crate::invalidate::clear_prefixes(&cache.core, &prefixes).await
    }))
}

/// The removal of every entry of one cached function, which `clear_<fn>` returns: walks the
/// cache when awaited and resolves to the number of entries removed. It owns what it needs
/// (`Send` and `'static`), so it can be spawned.
///
/// Fails with the cache's error when Redis could not be walked to the end; the entries removed
/// until then stay removed.
///
/// ```
/// # #[derive(Clone, serde::Serialize, serde::Deserialize)] struct User;
/// #[cachemacro_runtime::cached(key = "user:<id>")]
/// async fn get_user(id: u64) -> User {
///     User
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cachemacro_runtime::Result<()> {
/// get_user(1).await;
/// get_user(2).await;
/// let removed = clear_get_user().await?;
/// assert_eq!(removed, 2);
/// # Ok(())
/// # }
/// ```
#[must_use = "a clear does nothing until it is awaited"]
pub struct Clearing(Pin<Box<dyn Future<Output = crate::Result<u64>> + Send>>);

impl Future for Clearing {
    type Output = crate::Result<u64>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(context)
    }
}

impl fmt::Debug for Clearing {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Clearing")
    }
}

/// The invalidation of one cached entry, which `invalidate_<fn>` returns: removes the entry and
/// voids the loads of it in flight when awaited. It owns what it needs (`Send` and `'static`), so
/// it can be spawned.
///
/// Fails with the cache's error if the entry could not be removed; the removal is then queued
/// and retried in the background.
///
/// ```
/// # #[derive(Clone, serde::Serialize, serde::Deserialize)] struct User;
/// #[cachemacro_runtime::cached(key = "user:<id>")]
/// async fn get_user(id: u64) -> User {
///     User
/// }
///
/// # async fn run() -> cachemacro_runtime::Result<()> {
/// let invalidation: cachemacro_runtime::Invalidation = invalidate_get_user(7);
/// tokio::spawn(invalidation).await.expect("not cancelled")?;
/// # Ok(())
/// # }
/// ```
#[must_use = "an invalidation does nothing until it is awaited"]
pub struct Invalidation(Pin<Box<dyn Future<Output = crate::Result<()>> + Send>>);

impl Future for Invalidation {
    type Output = crate::Result<()>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(context)
    }
}

impl fmt::Debug for Invalidation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Invalidation")
    }
}

//! Write-through and invalidation: what `#[cache_put]` and `#[cache_invalidate]` call after the
//! function (the database write) has run.
//!
//! Both delete the versions of the keys they touch (and invalidation the epochs of the tags), so
//! a fill that read the database before the write cannot store its older value afterwards (see
//! [`crate::fill`]), and both detach this process's loads of those keys from the single flight,
//! so a call that starts after them never joins a load that started before.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::backend::{Backend, Stored};
use crate::call::Call;
use crate::core::{with_backend, Core, Step, Store};
use crate::error::{Error, ErrorKind, Result};
use crate::failure::Failure;
use crate::faults::failing_on_faults;
use crate::fill::{begin_write, encode, Encoded, Ticket};
use crate::invalidate::{invalidate_key, invalidate_tag};
use crate::key::Key;
use crate::outcome::Mode;
use crate::policy::Policy;

/// Write-through: runs `body` (the database write), then stores its value if no other write or
/// invalidation of the key came in between, and removes the key otherwise.
pub(crate) async fn put<R, M: Mode<R>>(
    core: &Arc<Core>,
    key: &str,
    tags: &[Key],
    policy: &Policy,
    body: impl Future<Output = R>,
    failure: Failure<R>,
) -> R {
    let convert = failure.converter(core.on_cache_error, policy);
    let call = Call::new(core, key, tags, policy);
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
    let core = call.core.clone();
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
            return invalidate_key(&core, &key).await.err();
        };
        let keys = core.fill_keys(&key);
        let written = with_backend!(&core.store, backend =>
            backend.put(&keys.entry, &keys.version, Some(expected), value).await);
        // Loads of the key running now started before the write: callers from now on must not
        // join them.
        core.flights.detach_key(&key);
        if let Some(near) = &core.near {
            near.invalidated_key(&key);
        }
        let error = written.err()?;
        core.record_fault(&error);
        crate::log::warn_throttled!(%error, "write-through failed; removing the key instead");
        invalidate_key(&core, &key).await.err().or(Some(error))
    };
    Box::pin(run_to_completion(step))
}

/// Runs the cache's part of a write to completion, even if the caller is dropped meanwhile: the
/// database has changed, and a cache step left half done would leave the old entry in place for
/// its whole ttl. Hands the step's fault to the caller's `on_cache_error`.
async fn run_to_completion(step: impl Future<Output = Option<Error>> + Send + 'static) {
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
        crate::faults::note_fault(&error);
    }
}

/// Runs a function that returns `Result`; after `Ok`, removes `keys` and invalidates `tags`.
/// After `Err` it does nothing: the database did not change.
pub(crate) async fn invalidate_after_result<T, E>(
    core: &Arc<Core>,
    keys: Vec<String>,
    tags: Vec<String>,
    policy: &Policy,
    body: impl Future<Output = Result<T, E>>,
    failure: Failure<Result<T, E>>,
) -> Result<T, E> {
    match body.await {
        // The database did not change: there is nothing to invalidate.
        Err(error) => Err(error),
        ok => invalidate_then(core, &keys, &tags, policy, ok, failure).await,
    }
}

/// Runs a function; afterwards removes `keys` and invalidates `tags`.
pub(crate) async fn invalidate_after<R>(
    core: &Arc<Core>,
    keys: Vec<String>,
    tags: Vec<String>,
    policy: &Policy,
    body: impl Future<Output = R>,
    failure: Failure<R>,
) -> R {
    let outcome = body.await;
    invalidate_then(core, &keys, &tags, policy, outcome, failure).await
}

/// Invalidates `keys` and `tags`, then hands back `outcome` (or, with `on_cache_error = "fail"`,
/// the first fault).
async fn invalidate_then<R>(
    core: &Arc<Core>,
    keys: &[String],
    tags: &[String],
    policy: &Policy,
    outcome: R,
    failure: Failure<R>,
) -> R {
    let convert = failure.converter(core.on_cache_error, policy);
    let step = invalidate_now(core, keys, tags);
    failing_on_faults(convert, async {
        step.await;
        outcome
    })
    .await
}

/// Invalidates `keys` and `tags`, run to completion (see [`run_to_completion`]).
fn invalidate_now<'a>(core: &'a Arc<Core>, keys: &[String], tags: &[String]) -> Step<'a, ()> {
    let step = invalidate_all(core.clone(), keys.to_vec(), tags.to_vec());
    Box::pin(run_to_completion(step))
}

/// Invalidates `keys` and `tags`; the first fault, if any. Each failure is counted, logged and
/// queued for replay where it happens.
async fn invalidate_all(core: Arc<Core>, keys: Vec<String>, tags: Vec<String>) -> Option<Error> {
    let mut first = None;
    for key in &keys {
        if let Err(error) = invalidate_key(&core, key).await {
            first.get_or_insert(error);
        }
    }
    for tag in &tags {
        if let Err(error) = invalidate_tag(&core, tag).await {
            first.get_or_insert(error);
        }
    }
    first
}

/// Stores `bytes` under the full `key` for `ttl`, unconditionally, voiding the fills of the key
/// in flight here and in other processes (`Cache::set`).
pub(crate) async fn set(core: &Core, key: &str, bytes: Arc<[u8]>, ttl: Duration) -> Result<()> {
    let keys = core.fill_keys(key);
    let stored = Stored {
        bytes,
        ttl,
        sliding: false,
    };
    let written = with_backend!(&core.store, backend => backend.put(&keys.entry, &keys.version, None, stored).await);
    core.flights.detach_key(key);
    if let Some(near) = &core.near {
        near.invalidated_key(key);
    }
    written.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fill::{lead_for_tests, load};
    use crate::outcome::{PlainMode, ResultMode, Sharing};

    const POLICY: Policy = Policy::new();

    async fn stored(core: &Core, key: &str) -> Option<u64> {
        let bytes = core.raw(key).await?;
        crate::envelope::decode(&bytes)
            .and_then(|envelope| envelope.value())
            .ok()
    }

    #[tokio::test]
    async fn a_write_through_stores_what_the_write_returned() {
        let core = Core::for_tests();
        let key = core.full_key("k");
        let written =
            put::<u64, PlainMode>(&core, &key, &[], &POLICY, async { 3 }, Failure::never()).await;
        assert_eq!(written, 3);
        assert_eq!(stored(&core, &key).await, Some(3));
    }

    #[tokio::test]
    async fn a_write_through_overlapped_by_another_write_removes_the_key() {
        let core = Core::for_tests();
        let key = core.full_key("k");
        put::<u64, PlainMode>(&core, &key, &[], &POLICY, async { 1 }, Failure::never()).await;
        let overlapped = async {
            // Another writer's invalidation lands while this write runs.
            invalidate_key(&core, &key).await.expect("invalidated");
            set(
                &core,
                &key,
                Arc::from(&b"other"[..]),
                Duration::from_secs(60),
            )
            .await
            .expect("set");
            2
        };
        put::<u64, PlainMode>(&core, &key, &[], &POLICY, overlapped, Failure::never()).await;
        assert_eq!(
            core.raw(&key).await,
            None,
            "neither write can be known to be last"
        );
    }

    #[tokio::test]
    async fn a_refused_write_removes_the_key_and_returns_the_error() {
        let core = Core::for_tests();
        let key = core.full_key("k");
        put::<u64, PlainMode>(&core, &key, &[], &POLICY, async { 1 }, Failure::never()).await;
        let refused = put::<Result<u64, String>, ResultMode>(
            &core,
            &key,
            &[],
            &POLICY,
            async { Err("refused".to_owned()) },
            Failure::never(),
        )
        .await;
        assert_eq!(refused, Err("refused".to_owned()));
        assert_eq!(core.raw(&key).await, None);
    }

    #[tokio::test]
    async fn a_set_voids_the_loads_in_flight() {
        let core = Core::for_tests();
        let key = core.full_key("k");
        let call = Call::new(&core, &key, &[], &POLICY);
        let fill = lead_for_tests(&call).await;
        let bytes = crate::envelope::encode(&9u64, Duration::from_secs(60), Duration::ZERO)
            .expect("encoded");
        set(&core, &key, bytes.into(), Duration::from_secs(60))
            .await
            .expect("set");
        load::<u64, PlainMode, _>(fill, async { 1 }, &Sharing::nothing()).await;
        assert_eq!(
            stored(&core, &key).await,
            Some(9),
            "the older load did not overwrite"
        );
    }

    #[tokio::test]
    async fn an_invalidation_after_a_failed_write_does_nothing() {
        let core = Core::for_tests();
        let key = core.full_key("k");
        put::<u64, PlainMode>(&core, &key, &[], &POLICY, async { 1 }, Failure::never()).await;
        let failed = invalidate_after_result(
            &core,
            vec![key.clone()],
            vec![],
            &POLICY,
            async { Err::<(), _>("refused") },
            Failure::never(),
        )
        .await;
        assert_eq!(failed, Err("refused"));
        assert_eq!(stored(&core, &key).await, Some(1));
        invalidate_after(
            &core,
            vec![key.clone()],
            vec![],
            &POLICY,
            async {},
            Failure::never(),
        )
        .await;
        assert_eq!(core.raw(&key).await, None);
    }
}

//! Invalidation by key and by tag, and the replay of the invalidations that could not reach the
//! backend.
//!
//! An invalidation of a key deletes the entry with its version, and of a tag the tag's epoch, so
//! that a fill that began before it cannot store its value afterwards (see `fill.rs`); and it
//! detaches this process's loads of the key (or tag) from the single flight, so that a call that
//! starts after it never joins a load that began before. One that fails for any backend reason is
//! queued and replayed in order by one background task, since an invalidation neither applied
//! nor retried would leave stale data for a whole ttl.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tracing::field::Empty;
use tracing::Instrument;

use crate::backend::{Backend, Clear};
use crate::core::{with_backend, Core, Step, Store};
use crate::error::{Error, ErrorKind, Result};
use crate::pending::Pending;

/// How often the replayer retries while the backend stays unavailable.
const REPLAY_PAUSE: Duration = Duration::from_millis(200);

/// Invalidates the entry under the full key `key`; a failure is counted, returned and queued for
/// replay.
pub(crate) fn invalidate_key<'a>(core: &'a Arc<Core>, key: &'a str) -> Step<'a, Result<()>> {
    let span = tracing::debug_span!("cache.invalidate", target = "key", outcome = Empty);
    Box::pin(async move {
        let invalidated = invalidate_key_once(core, key)
            .instrument(span.clone())
            .await;
        span.record("outcome", outcome(&invalidated));
        if let Err(error) = &invalidated {
            core.record_fault(error);
            crate::log::warn_throttled!(%error, "invalidation failed; queued for retry");
            retry_later(core, Pending::Key(key.to_owned()), error);
        }
        invalidated
    })
}

/// Invalidates the entries stamped with `tag`; a failure is counted, returned and queued for
/// replay.
pub(crate) fn invalidate_tag<'a>(core: &'a Arc<Core>, tag: &'a str) -> Step<'a, Result<()>> {
    let span = tracing::debug_span!("cache.invalidate", target = "tag", outcome = Empty);
    Box::pin(async move {
        let invalidated = invalidate_tag_once(core, tag)
            .instrument(span.clone())
            .await;
        span.record("outcome", outcome(&invalidated));
        if let Err(error) = &invalidated {
            core.record_fault(error);
            crate::log::warn_throttled!(%error, tag, "tag invalidation failed; queued for retry");
            retry_later(core, Pending::Tag(tag.to_owned()), error);
        }
        invalidated
    })
}

/// Removes every entry whose key starts with one of `prefixes` (after the cache's own), with
/// their versions and locks, so that no load that began before can store afterwards; and
/// detaches this process's loads of them. Not queued for replay on failure: a clear is a bulk
/// operation its caller retries, and part of it may have been applied. The number of entries
/// removed.
pub(crate) fn clear_prefixes<'a>(
    core: &'a Arc<Core>,
    prefixes: &'a [String],
) -> Step<'a, Result<u64>> {
    let span = tracing::debug_span!("cache.clear", removed = Empty);
    Box::pin(
        async move {
            let entries: Vec<String> = prefixes
                .iter()
                .map(|prefix| core.full_key(prefix))
                .collect();
            let epochs = core.epoch_key("");
            let clear = Clear {
                scope: &core.key_prefix,
                entries: &entries,
                epochs: &epochs,
            };
            let cleared = match &core.store {
                Store::Memory(backend) => Ok(backend.clear(&clear)),
                Store::Redis(backend) => backend.clear(&clear).await,
            };
            // Even when the backend failed: the loads running here started before this call.
            for prefix in &entries {
                core.flights.detach_prefix(prefix);
            }
            match &cleared {
                Ok(removed) => {
                    tracing::Span::current().record("removed", removed);
                }
                Err(error) => core.record_fault(error),
            }
            cleared
        }
        .instrument(span),
    )
}

/// How an invalidation ended, as its span records it.
fn outcome(invalidated: &Result<()>) -> &'static str {
    match invalidated {
        Ok(()) => "done",
        Err(_) => "failed",
    }
}

async fn invalidate_key_once(core: &Core, key: &str) -> Result<()> {
    let keys = core.fill_keys(key);
    let invalidated =
        with_backend!(&core.store, backend => backend.invalidate(&keys.entry, &keys.version).await);
    // Even when the backend failed: the loads running here started before this call.
    core.flights.detach_key(key);
    // Now that the `DEL` ran: a read that started before it inserts nothing (see `near.rs`).
    if let Some(near) = &core.near {
        near.invalidated_key(key);
    }
    invalidated
}

async fn invalidate_tag_once(core: &Core, tag: &str) -> Result<()> {
    let epoch = core.epoch_key(tag);
    let invalidated = with_backend!(&core.store, backend => backend.invalidate_tag(&epoch).await);
    // Even when the backend failed: the loads running here started before this call.
    core.flights.detach_tag(tag);
    if let Some(near) = &core.near {
        near.invalidated_tag(&epoch);
    }
    invalidated
}

/// Queues `pending` for replay, and starts the replayer unless it runs. Any backend fault may be
/// passing (a timeout, a lost connection, a server out of memory or loading); only a fault of the
/// invalidation itself is not retried.
fn retry_later(core: &Arc<Core>, pending: Pending, error: &Error) {
    if matches!(
        error.kind(),
        ErrorKind::Encode | ErrorKind::Decode | ErrorKind::InvalidUrl
    ) {
        return;
    }
    if !core.pending.push(pending, &core.counters) {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn(replay(Arc::downgrade(core)))),
        Err(_) => core.pending.abandon(),
    }
}

/// Replays queued invalidations in order, pausing while the backend stays unavailable; ends when
/// the queue is empty or the cache is gone.
async fn replay(core: Weak<Core>) {
    loop {
        let Some(core) = core.upgrade() else { return };
        let Some(pending) = core.pending.front() else {
            if core.pending.stop_replaying() {
                continue;
            }
            return;
        };
        let replayed = match &pending {
            Pending::Key(key) => invalidate_key_once(&core, key).await,
            Pending::Tag(tag) => invalidate_tag_once(&core, tag).await,
        };
        match replayed {
            Ok(()) => {
                core.pending.replayed(&pending);
                core.counters.invalidation_replayed();
                core.counters
                    .export(crate::function::names::INVALIDATIONS_REPLAYED);
                tracing::info!(?pending, "queued invalidation replayed");
            }
            Err(_) => {
                // The cache may be dropped while the backend is down: the replayer must not
                // keep it alive.
                drop(core);
                tokio::time::sleep(REPLAY_PAUSE).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Begin, Token};

    async fn store(core: &Core, key: &str) {
        let bytes: Arc<[u8]> = Arc::from(&b"value"[..]);
        with_backend!(&core.store, backend => backend.set(key, Arc::clone(&bytes), Duration::from_secs(60)).await)
            .expect("stored");
    }

    async fn version(core: &Core, key: &str) -> Token {
        let keys = core.fill_keys(key);
        let begin = Begin {
            lock: None,
            tags: &[],
            epoch_ttl: Duration::from_secs(60),
        };
        with_backend!(&core.store, backend => backend.begin_fill(&keys, begin).await.map(|start| start.version))
            .expect("a version")
    }

    #[tokio::test]
    async fn a_key_loses_its_entry_and_its_version() {
        let core = Core::for_tests();
        let key = core.full_key("k");
        store(&core, &key).await;
        let before = version(&core, &key).await;
        invalidate_key(&core, &key).await.expect("invalidated");
        assert_eq!(core.raw(&key).await, None);
        assert_ne!(
            version(&core, &key).await,
            before,
            "a fill that began before cannot store"
        );
        assert_eq!(core.stats().invalidations_queued, 0);
    }

    #[tokio::test]
    async fn a_tag_gets_a_new_epoch() {
        let core = Core::for_tests();
        let tags = [core.epoch_key("org:1")];
        let keys = core.fill_keys(&core.full_key("k"));
        let epoch = || async {
            let begin = Begin {
                lock: None,
                tags: &tags,
                epoch_ttl: Duration::from_secs(60),
            };
            with_backend!(&core.store, backend => backend.begin_fill(&keys, begin).await.map(|start| start.epochs[0]))
                .expect("epochs")
        };
        let before = epoch().await;
        assert_eq!(epoch().await, before, "an epoch lasts until invalidated");
        invalidate_tag(&core, "org:1").await.expect("invalidated");
        assert_ne!(epoch().await, before);
    }

    #[tokio::test]
    async fn both_detach_the_loads_running_here() {
        use crate::flight::Join;
        let core = Core::for_tests();
        let key = core.full_key("k");
        let Join::Lead(_old) = core.flights.join(&key, ["org:1"].into_iter()) else {
            panic!("the first caller leads")
        };
        invalidate_key(&core, &key).await.expect("invalidated");
        assert!(
            matches!(core.flights.join(&key, [].into_iter()), Join::Lead(_)),
            "a caller after the invalidation leads a new load"
        );
        let Join::Lead(_tagged) = core.flights.join("t:other", ["org:1"].into_iter()) else {
            panic!()
        };
        invalidate_tag(&core, "org:1").await.expect("invalidated");
        assert!(matches!(
            core.flights.join("t:other", [].into_iter()),
            Join::Lead(_)
        ));
    }
}

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

use crate::backend::Backend;
use crate::core::{with_backend, Core, Step, Store};
use crate::error::{Error, ErrorKind, Result};
use crate::pending::Pending;

/// How often the replayer retries while the backend stays unavailable.
const REPLAY_PAUSE: Duration = Duration::from_millis(200);

/// Invalidates the entry under the full key `key`; a failure is counted, returned and queued for
/// replay.
pub(crate) fn invalidate_key<'a>(core: &'a Arc<Core>, key: &'a str) -> Step<'a, Result<()>> {
    Box::pin(async move {
        let invalidated = invalidate_key_once(core, key).await;
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
    Box::pin(async move {
        let invalidated = invalidate_tag_once(core, tag).await;
        if let Err(error) = &invalidated {
            core.record_fault(error);
            crate::log::warn_throttled!(%error, tag, "tag invalidation failed; queued for retry");
            retry_later(core, Pending::Tag(tag.to_owned()), error);
        }
        invalidated
    })
}

async fn invalidate_key_once(core: &Core, key: &str) -> Result<()> {
    let keys = core.fill_keys(key);
    let invalidated =
        with_backend!(&core.store, backend => backend.invalidate(&keys.entry, &keys.version).await);
    // Even when the backend failed: the loads running here started before this call.
    core.flights.detach_key(key);
    invalidated
}

async fn invalidate_tag_once(core: &Core, tag: &str) -> Result<()> {
    let epoch = core.epoch_key(tag);
    let invalidated = with_backend!(&core.store, backend => backend.invalidate_tag(&epoch).await);
    // Even when the backend failed: the loads running here started before this call.
    core.flights.detach_tag(tag);
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

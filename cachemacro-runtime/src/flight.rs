//! Single-flight: concurrent misses on one key in this process share one load, and at most one
//! refresh of a key runs at a time.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

/// What a load left for the callers that waited on it.
#[derive(Clone)]
pub(crate) enum Landing {
    /// The stored (or storable) envelope of the loaded value.
    Value(Arc<[u8]>),
    /// The loader failed; the failure itself when its type can be cloned for each waiter.
    Failed(Option<Arc<dyn Any + Send + Sync>>),
}

type Slot = watch::Receiver<Option<Landing>>;

/// The loads and refreshes running in this process, by key.
#[derive(Default)]
pub(crate) struct Flights {
    loads: Mutex<HashMap<String, Slot>>,
    refreshes: Mutex<HashSet<String>>,
}

/// The caller's part in a load of a key.
pub(crate) enum Join<'a> {
    /// Nobody is loading the key: this caller loads and lands the result.
    Lead(Leader<'a>),
    /// Someone is: this caller waits for the landing.
    Follow(Slot),
}

/// The one caller loading a key. Dropping it without landing (a cancelled caller) wakes the
/// followers, who then start over.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: &'a str,
    sender: watch::Sender<Option<Landing>>,
}

impl Flights {
    pub(crate) fn join<'a>(&'a self, key: &'a str) -> Join<'a> {
        let mut loads = lock(&self.loads);
        if let Some(slot) = loads.get(key) {
            return Join::Follow(slot.clone());
        }
        let (sender, slot) = watch::channel(None);
        loads.insert(key.to_owned(), slot);
        Join::Lead(Leader {
            flights: self,
            key,
            sender,
        })
    }

    /// Claims the refresh of `key`; `None` when one is already running in this process.
    pub(crate) fn claim_refresh(self: &Arc<Self>, key: &str) -> Option<RefreshClaim> {
        lock(&self.refreshes)
            .insert(key.to_owned())
            .then(|| RefreshClaim {
                flights: Arc::clone(self),
                key: key.to_owned(),
            })
    }
}

impl Leader<'_> {
    pub(crate) fn land(self, landing: Landing) {
        self.sender.send_replace(Some(landing));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let mut loads = lock(&self.flights.loads);
        if loads
            .get(self.key)
            .is_some_and(|slot| slot.same_channel(&self.sender.subscribe()))
        {
            loads.remove(self.key);
        }
    }
}

/// Waits for the leader's landing; `None` when the leader gave up without one.
pub(crate) async fn follow(mut slot: Slot) -> Option<Landing> {
    slot.wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|landing| landing.clone())
}

/// The right to refresh one key, given back on drop.
pub struct RefreshClaim {
    flights: Arc<Flights>,
    key: String,
}

impl Drop for RefreshClaim {
    fn drop(&mut self) {
        lock(&self.flights.refreshes).remove(&self.key);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

//! Single-flight: concurrent misses on one key in this process share one load, and at most one
//! refresh of a key runs at a time.
//!
//! A load's followers must never receive a value older than an invalidation that completed
//! before they started. Three rules keep that:
//! - an invalidation in this process detaches the loads of its key (or tag) from the table, so
//!   callers that start after it returns lead a new load instead of joining the older one;
//! - a leader whose fill guard reports an invalidation (from any process) during its load lands
//!   [`Landing::Reread`]: its followers read the cache again;
//! - a caller that joins after the leader began the read or store whose result it lands (the
//!   window between a store and its landing, or between the leader's read of another process's
//!   entry while it waited for the fill lock and its landing) reads the cache again rather than
//!   take the landing, since an invalidation may have completed in that window.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

/// What a load left for the callers that waited on it.
#[derive(Clone)]
pub(crate) enum Landing {
    /// The envelope of the loaded value, stored (or not storable, but not voided).
    Value(Arc<[u8]>),
    /// The loader failed; the failure itself when its type can be cloned for each waiter.
    Failed(Option<Arc<dyn Any + Send + Sync>>),
    /// An invalidation came during the load, so its value may be older than what a follower
    /// must see: read the cache again.
    Reread,
}

type Slot = watch::Receiver<Option<Landing>>;

struct Flight {
    slot: Slot,
    tags: Box<[String]>,
    marks: Arc<AtomicU64>,
}

/// The loads and refreshes running in this process, by key.
#[derive(Default)]
pub(crate) struct Flights {
    loads: Mutex<HashMap<String, Flight>>,
    refreshes: Mutex<HashSet<String>>,
}

/// The caller's part in a load of a key.
pub(crate) enum Join<'a> {
    /// Nobody is loading the key: this caller loads and lands the result.
    Lead(Leader<'a>),
    /// Someone is: this caller waits for the landing.
    Follow(Follower),
}

/// The one caller loading a key. Dropping it without landing (a cancelled or panicking caller)
/// wakes the followers, who then read the cache again.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: &'a str,
    sender: watch::Sender<Option<Landing>>,
    /// How many reads and stores the leader has begun whose result it may land.
    marks: Arc<AtomicU64>,
}

/// A caller waiting for another's load.
pub(crate) struct Follower {
    slot: Slot,
    marks: Arc<AtomicU64>,
    /// The leader's marks when this caller joined: a value is trusted only if the read or store
    /// that produced it began after.
    joined_at: u64,
}

/// How a follower's wait ended.
pub(crate) enum Waited {
    /// The leader landed this.
    Landed(Landing),
    /// The leader went away without landing, or the follower joined too late to trust the
    /// landing: read the cache again.
    Reread,
    /// The leader took longer than the follower waits (it may not even be polled any more).
    TimedOut,
}

impl Flights {
    pub(crate) fn join<'a, 't>(
        &'a self,
        key: &'a str,
        tags: impl Iterator<Item = &'t str>,
    ) -> Join<'a> {
        let mut loads = lock(&self.loads);
        if let Some(flight) = loads.get(key) {
            return Join::Follow(Follower {
                slot: flight.slot.clone(),
                marks: Arc::clone(&flight.marks),
                joined_at: flight.marks.load(Ordering::Acquire),
            });
        }
        let (sender, slot) = watch::channel(None);
        let marks = Arc::new(AtomicU64::new(0));
        let flight = Flight {
            slot,
            tags: tags.map(str::to_owned).collect(),
            marks: Arc::clone(&marks),
        };
        loads.insert(key.to_owned(), flight);
        Join::Lead(Leader {
            flights: self,
            key,
            sender,
            marks,
        })
    }

    /// Callers that start from now on do not join the loads of `key` already running.
    pub(crate) fn detach_key(&self, key: &str) {
        lock(&self.loads).remove(key);
    }

    /// Callers that start from now on do not join the loads of keys under `prefix` already
    /// running.
    pub(crate) fn detach_prefix(&self, prefix: &str) {
        lock(&self.loads).retain(|key, _| !key.starts_with(prefix));
    }

    /// Callers that start from now on do not join the loads carrying `tag` already running.
    pub(crate) fn detach_tag(&self, tag: &str) {
        lock(&self.loads).retain(|_, flight| !flight.tags.iter().any(|carried| carried == tag));
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

    #[cfg(test)]
    fn running(&self) -> usize {
        lock(&self.loads).len()
    }
}

impl Leader<'_> {
    /// Called right before the leader sends a read or a store whose result it may land: the
    /// callers that joined before it take that result, and those that join from now on read
    /// the cache again instead, unless a later mark comes before the landing.
    ///
    /// A store is guarded (refused after any invalidation since the load began), so callers that
    /// joined during the load may take its value; a read returns whatever the cache held when it
    /// ran, so only callers that joined before it was sent may.
    pub(crate) fn mark(&self) {
        self.marks.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn land(self, landing: Landing) {
        // Out of the table first: a follower sent back to the cache must not join this load
        // again and find its landing.
        self.leave();
        self.sender.send_replace(Some(landing));
    }

    fn leave(&self) {
        let mut loads = lock(&self.flights.loads);
        if loads
            .get(self.key)
            .is_some_and(|flight| flight.slot.same_channel(&self.sender.subscribe()))
        {
            loads.remove(self.key);
        }
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}

impl Follower {
    /// Waits for the leader's landing, at most `patience`.
    pub(crate) async fn wait(mut self, patience: Duration) -> Waited {
        let landed = tokio::time::timeout(patience, self.slot.wait_for(Option::is_some)).await;
        match landed {
            Err(_) => Waited::TimedOut,
            Ok(Err(_)) => Waited::Reread,
            Ok(Ok(landing)) => match landing.clone() {
                Some(Landing::Value(_)) if self.marks.load(Ordering::Acquire) == self.joined_at => {
                    Waited::Reread
                }
                Some(landing) => Waited::Landed(landing),
                None => Waited::Reread,
            },
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn value(byte: u8) -> Landing {
        Landing::Value(Arc::from(vec![byte]))
    }

    fn lead<'a, 't>(flights: &'a Flights, tags: impl Iterator<Item = &'t str>) -> Leader<'a> {
        match flights.join("k", tags) {
            Join::Lead(leader) => leader,
            Join::Follow(_) => panic!("expected to lead"),
        }
    }

    fn follow<'t>(flights: &Flights, tags: impl Iterator<Item = &'t str>) -> Follower {
        match flights.join("k", tags) {
            Join::Follow(follower) => follower,
            Join::Lead(_) => panic!("expected to follow"),
        }
    }

    fn landed_value(waited: Waited) -> Option<u8> {
        match waited {
            Waited::Landed(Landing::Value(bytes)) => Some(bytes[0]),
            _ => None,
        }
    }

    #[tokio::test]
    async fn followers_get_the_landing() {
        let flights = Flights::default();
        let leader = lead(&flights, [].into_iter());
        let follower = follow(&flights, [].into_iter());
        leader.mark();
        leader.land(value(7));
        assert_eq!(
            landed_value(follower.wait(Duration::from_secs(1)).await),
            Some(7)
        );
    }

    #[tokio::test]
    async fn a_value_from_no_read_or_store_begun_since_joining_is_not_trusted() {
        let flights = Flights::default();
        let leader = lead(&flights, [].into_iter());
        let follower = follow(&flights, [].into_iter());
        leader.land(value(3));
        assert!(matches!(
            follower.wait(Duration::from_secs(1)).await,
            Waited::Reread
        ));
    }

    #[tokio::test]
    async fn a_dropped_leader_sends_followers_back_to_the_cache() {
        let flights = Flights::default();
        let leader = lead(&flights, [].into_iter());
        let follower = follow(&flights, [].into_iter());
        drop(leader);
        assert!(matches!(
            follower.wait(Duration::from_secs(1)).await,
            Waited::Reread
        ));
        assert_eq!(flights.running(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn followers_wait_at_most_their_patience() {
        let flights = Flights::default();
        let _leader = lead(&flights, [].into_iter());
        let follower = follow(&flights, [].into_iter());
        assert!(matches!(
            follower.wait(Duration::from_secs(5)).await,
            Waited::TimedOut
        ));
    }

    #[tokio::test]
    async fn detached_loads_are_not_joined_but_still_land_for_their_followers() {
        let flights = Flights::default();
        let tags = ["org:1"];
        let old = lead(&flights, tags.into_iter());
        let early = follow(&flights, tags.into_iter());
        flights.detach_tag("org:1");
        let new = lead(&flights, tags.into_iter());
        old.mark();
        old.land(value(1));
        assert_eq!(
            flights.running(),
            1,
            "the old leader does not remove the new load"
        );
        assert_eq!(
            landed_value(early.wait(Duration::from_secs(1)).await),
            Some(1)
        );
        flights.detach_key("k");
        assert_eq!(flights.running(), 0);
        drop(new);
    }

    #[tokio::test]
    async fn late_joiners_read_again() {
        let flights = Flights::default();
        let leader = lead(&flights, [].into_iter());
        let early = follow(&flights, [].into_iter());
        leader.mark();
        let late = follow(&flights, [].into_iter());
        leader.land(value(1));
        assert!(matches!(
            late.wait(Duration::from_secs(1)).await,
            Waited::Reread
        ));
        assert_eq!(
            landed_value(early.wait(Duration::from_secs(1)).await),
            Some(1)
        );
    }

    #[tokio::test]
    async fn a_landing_is_trusted_by_callers_that_joined_before_its_last_read_began() {
        let flights = Flights::default();
        let leader = lead(&flights, [].into_iter());
        leader.mark();
        let between = follow(&flights, [].into_iter());
        // The first read found nothing; the second began after `between` joined.
        leader.mark();
        let after = follow(&flights, [].into_iter());
        leader.land(value(2));
        assert_eq!(
            landed_value(between.wait(Duration::from_secs(1)).await),
            Some(2)
        );
        assert!(matches!(
            after.wait(Duration::from_secs(1)).await,
            Waited::Reread
        ));
    }

    #[tokio::test]
    async fn failures_are_shared_with_late_joiners() {
        let flights = Flights::default();
        let leader = lead(&flights, [].into_iter());
        leader.mark();
        let late = follow(&flights, [].into_iter());
        leader.land(Landing::Failed(None));
        assert!(matches!(
            late.wait(Duration::from_secs(1)).await,
            Waited::Landed(Landing::Failed(None))
        ));
    }
}

//! Invalidations that could not reach the backend, waiting to be replayed in order: the queue
//! and the flag that keeps one replayer running. The replay itself is an engine step
//! (`invalidate.rs`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::function::names;
use crate::stats::Counters;

/// How many failed invalidations are kept for replay; past it the oldest is dropped.
const PENDING_CAPACITY: usize = 10_000;

/// An invalidation that could not reach the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pending {
    /// A full key.
    Key(String),
    /// A tag, as the user named it.
    Tag(String),
}

/// Invalidations waiting for the backend to answer again.
#[derive(Default)]
pub(crate) struct PendingInvalidations {
    queue: Mutex<VecDeque<Pending>>,
    replaying: AtomicBool,
}

impl PendingInvalidations {
    /// Queues `pending` unless it is already waiting, dropping (and counting) the oldest past
    /// the capacity. Whether the caller must start a replayer: none is running.
    pub(crate) fn push(&self, pending: Pending, counters: &Counters) -> bool {
        let mut queue = self.queue();
        if queue.contains(&pending) {
            return false;
        }
        queue.push_back(pending);
        counters.invalidation_queued();
        counters.export(names::INVALIDATIONS_QUEUED);
        if queue.len() > PENDING_CAPACITY {
            if let Some(lost) = queue.pop_front() {
                counters.invalidation_lost();
                counters.export(names::INVALIDATIONS_LOST);
                crate::log::error_throttled!(?lost, "invalidation lost: the retry queue is full");
            }
        }
        drop(queue);
        !self.replaying.swap(true, Ordering::AcqRel)
    }

    /// The oldest waiting invalidation.
    pub(crate) fn front(&self) -> Option<Pending> {
        self.queue().front().cloned()
    }

    /// Removes `replayed` if it is still the oldest.
    pub(crate) fn replayed(&self, replayed: &Pending) {
        let mut queue = self.queue();
        if queue.front() == Some(replayed) {
            queue.pop_front();
        }
    }

    /// Gives up the replayer's role, for a replayer that found the queue empty or could not be
    /// started. Whether it must go on: an invalidation was queued meanwhile and no other
    /// replayer took it.
    pub(crate) fn stop_replaying(&self) -> bool {
        self.replaying.store(false, Ordering::Release);
        !self.queue().is_empty() && !self.replaying.swap(true, Ordering::AcqRel)
    }

    /// Gives up the replayer's role without replaying: there is no runtime to replay on, and the
    /// next invalidation queued where there is one starts the replayer.
    pub(crate) fn abandon(&self) {
        self.replaying.store(false, Ordering::Release);
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<Pending>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_replayer_at_a_time_and_each_invalidation_once() {
        let pending = PendingInvalidations::default();
        let counters = Counters::default();
        assert!(pending.push(Pending::Key("a".into()), &counters));
        assert!(
            !pending.push(Pending::Tag("t".into()), &counters),
            "one replayer runs"
        );
        assert!(
            !pending.push(Pending::Key("a".into()), &counters),
            "already queued"
        );
        assert_eq!(pending.front(), Some(Pending::Key("a".into())));
        pending.replayed(&Pending::Tag("t".into()));
        assert_eq!(
            pending.front(),
            Some(Pending::Key("a".into())),
            "not the oldest"
        );
        pending.replayed(&Pending::Key("a".into()));
        assert_eq!(pending.front(), Some(Pending::Tag("t".into())));
        assert!(
            pending.stop_replaying(),
            "one is left: the replayer goes on"
        );
        pending.replayed(&Pending::Tag("t".into()));
        assert!(!pending.stop_replaying());
        assert!(
            pending.push(Pending::Key("b".into()), &counters),
            "a new replayer starts"
        );
        assert_eq!(
            counters
                .snapshot(Default::default(), Default::default())
                .invalidations_queued,
            3
        );
    }

    #[test]
    fn past_the_capacity_the_oldest_is_lost_and_counted() {
        let pending = PendingInvalidations::default();
        let counters = Counters::default();
        for index in 0..=PENDING_CAPACITY {
            pending.push(Pending::Key(index.to_string()), &counters);
        }
        assert_eq!(pending.front(), Some(Pending::Key("1".into())));
        assert_eq!(
            counters
                .snapshot(Default::default(), Default::default())
                .invalidations_lost,
            1
        );
    }
}

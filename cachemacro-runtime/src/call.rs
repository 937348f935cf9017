//! One call of a cached function as the engine sees it: the cache's core, the key, the tags and
//! the policy, with the backend keys derived from them.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::backend::{FillKeys, VERSION_TTL};
use crate::codec::Encoding;
use crate::core::Core;
use crate::error::Error;
use crate::function::{EntryRef, FunctionEntry};
use crate::key::Key;
use crate::outcome::Sharing;
use crate::policy::Policy;

/// How much longer than its entries a tag's epoch lives: a sliding entry outlives its fill, and
/// an epoch that expires under a live entry costs that entry a reload.
const EPOCH_MARGIN: Duration = Duration::from_secs(24 * 60 * 60);

/// Methods that count an event on the cache's counters and on the called function's.
macro_rules! counted {
    ($($(#[doc = $doc:literal])* $name:ident => $on_cache:ident, $on_function:ident;)*) => {
        $($(#[doc = $doc])*
        pub(crate) fn $name(&self) {
            self.core.counters.$on_cache();
            if let Some(function) = &self.function {
                function.$on_function();
            }
        })*
    };
}

/// A call of a cached function, or of a write path.
pub(crate) struct Call<'a> {
    pub(crate) core: &'a Arc<Core>,
    /// The full key, prefix included.
    pub(crate) key: &'a str,
    /// The tags, each as the key of its epoch, which a hit reads; the tag's name is its tail
    /// ([`tag_names`](Self::tag_names)), so a hit renders nothing more.
    pub(crate) tags: &'a [Key],
    pub(crate) policy: &'a Policy,
    /// The counters of the function called, when it declared one.
    function: Option<EntryRef>,
    /// When this call stops waiting for other callers' loads: `lock_timeout` after its first
    /// miss, however many loads it waited for (a leader that went away, a voided load, another
    /// process's lock). Set on first need, so a hit never reads the clock for it.
    deadline: OnceLock<Instant>,
}

impl<'a> Call<'a> {
    pub(crate) fn new(
        core: &'a Arc<Core>,
        key: &'a str,
        tags: &'a [Key],
        policy: &'a Policy,
    ) -> Self {
        Self {
            core,
            key,
            tags,
            policy,
            function: policy
                .function
                .map(|function| core.functions.entry(function)),
            deadline: OnceLock::new(),
        }
    }

    /// The counters of the function called, if it declared one.
    pub(crate) fn function(&self) -> Option<&FunctionEntry> {
        self.function.as_deref()
    }

    /// The function's name, for spans.
    pub(crate) fn function_name(&self) -> Option<&str> {
        self.function().map(FunctionEntry::label)
    }

    /// The function's entry, to keep beyond the call.
    pub(crate) fn function_entry(&self) -> Option<EntryRef> {
        self.function.clone()
    }

    counted! {
        /// A read that found a servable entry.
        count_hit => hit, hit;
        /// A read that found nothing servable.
        count_miss => miss, miss;
        /// An entry served after its ttl.
        count_stale_hit => stale_hit, stale_hit;
        /// An entry that did not decode.
        count_decode_error => decode_error, decode_error;
        /// A refresh drawn before expiry.
        count_early_refresh => early_refresh, early_refresh;
        /// A call that joined a load already running.
        count_coalesced => coalesce, coalesce;
        /// A miss that waited for another process's fill lock.
        count_lock_wait => lock_wait, lock_wait;
        /// A value not stored for its size.
        count_oversized => oversize, oversize;
    }

    /// A failed cache operation of this call: counted on the cache (see
    /// [`Core::record_fault`]) and on the function.
    pub(crate) fn record_fault(&self, error: &Error) {
        self.core.record_fault(error);
        if let Some(function) = self.function() {
            if error.kind() != crate::error::ErrorKind::CircuitOpen {
                function.error(error.kind());
            }
        }
    }

    /// The tags by name, as the user named them and as entries are stamped with them.
    pub(crate) fn tag_names(&self) -> impl ExactSizeIterator<Item = &'a str> {
        let core = self.core;
        self.tags.iter().map(move |key| core.tag_name(key))
    }

    /// When this call stops waiting for others and loads by itself.
    pub(crate) fn deadline(&self) -> Instant {
        *self
            .deadline
            .get_or_init(|| Instant::now() + self.policy.lock_timeout)
    }

    /// How long this call may still wait for others.
    pub(crate) fn patience(&self) -> Duration {
        self.deadline().saturating_duration_since(Instant::now())
    }

    /// How long this call's entries are fresh.
    pub(crate) fn ttl(&self) -> Duration {
        self.core.fresh_ttl(self.policy)
    }

    /// How this call's entries are serialized and compressed.
    #[inline]
    pub(crate) fn encoding(&self) -> Encoding {
        self.core.encoding(self.policy)
    }

    /// The entry key and its companions.
    pub(crate) fn fill_keys(&self) -> FillKeys {
        self.core.fill_keys(self.key)
    }

    /// How long the epochs of this call's tags must live at least.
    pub(crate) fn epoch_ttl(&self) -> Duration {
        self.policy.retention(self.ttl()) + VERSION_TTL + EPOCH_MARGIN
    }
}

/// A call of a cached function and what its return type `R` decides: how a failed load is
/// shared with the callers waiting on it, and, with `on_cache_error = "fail"`, how a cache fault
/// becomes the call's result. The one value the hit loop is handed.
pub(crate) struct Request<'a, R> {
    pub(crate) call: Call<'a>,
    pub(crate) sharing: Sharing<R>,
    pub(crate) convert: Option<fn(Error) -> R>,
}

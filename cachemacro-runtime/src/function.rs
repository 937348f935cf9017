//! Per-function statistics and metrics: what each cached function's calls did, counted under
//! its name, and exported through the `metrics` facade labelled by function and cache.
//!
//! A `#[cached]` function declares a [`Function`] in a `static` beside its policy. The first
//! cache that serves it registers an entry ([`FunctionEntry`]) and keeps it in that static, so a
//! call of the function on its usual cache finds its counters without a lookup; a call on any
//! other cache finds them in that cache's table by name. Keys are never labels: they are
//! unbounded in number and may carry personal data.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use metrics::{Counter, Histogram, Label};

use crate::error::ErrorKind;
use crate::stats::{Count, Striped};

/// The identity of one cached function: its name, and its counters on the first cache that
/// served it. Declared by the generated code in a `static`.
#[derive(Debug)]
pub struct Function {
    name: Name,
    /// The name, rendered on first need.
    label: OnceLock<Box<str>>,
    home: OnceLock<Home>,
}

#[derive(Debug, Clone, Copy)]
enum Name {
    /// `name = "..."`.
    Given(&'static str),
    /// The path the compiler resolves (`app::users::get_user`): the function's scope, found at
    /// run time from the type name of a marker fn declared in its body, then its name.
    Scoped {
        scope: fn() -> &'static str,
        name: &'static str,
    },
}

#[derive(Debug)]
struct Home {
    cache_id: u64,
    entry: Arc<FunctionEntry>,
}

impl Function {
    /// A function named by its `name = "..."` argument.
    pub const fn named(name: &'static str) -> Self {
        Self {
            name: Name::Given(name),
            label: OnceLock::new(),
            home: OnceLock::new(),
        }
    }

    /// A function named by its path: `scope()` then `::name`.
    pub const fn scoped(scope: fn() -> &'static str, name: &'static str) -> Self {
        Self {
            name: Name::Scoped { scope, name },
            label: OnceLock::new(),
            home: OnceLock::new(),
        }
    }

    /// The name the function's statistics and metrics go by.
    pub(crate) fn label(&self) -> &str {
        self.label.get_or_init(|| match self.name {
            Name::Given(name) => name.into(),
            Name::Scoped { scope, name } => format!("{}::{name}", scope()).into(),
        })
    }
}

impl PartialEq for Function {
    /// The same function: the same `static`.
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

/// Where one cache keeps its functions' entries.
#[derive(Debug)]
pub(crate) struct Functions {
    /// Tells this cache's entries from another's in a [`Function`]'s home.
    cache_id: u64,
    /// The cache's name, the `cache` label of its metrics.
    cache_name: Arc<str>,
    by_label: Mutex<HashMap<String, Arc<FunctionEntry>>>,
}

/// An entry, borrowed from the function's `static` when it lives there, or else shared with the
/// cache's table.
#[derive(Debug, Clone)]
pub(crate) enum EntryRef {
    Home(&'static FunctionEntry),
    Shared(Arc<FunctionEntry>),
}

impl std::ops::Deref for EntryRef {
    type Target = FunctionEntry;

    fn deref(&self) -> &FunctionEntry {
        match self {
            EntryRef::Home(entry) => entry,
            EntryRef::Shared(entry) => entry,
        }
    }
}

impl Functions {
    /// The table of a cache named `cache_name`.
    pub(crate) fn new(cache_name: &str) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Self {
            cache_id: NEXT_ID.fetch_add(1, Relaxed),
            cache_name: Arc::from(cache_name),
            by_label: Mutex::default(),
        }
    }

    /// The cache's name.
    pub(crate) fn cache_name(&self) -> &str {
        &self.cache_name
    }

    /// The entry of `function` on this cache, registered on its first call.
    pub(crate) fn entry(&self, function: &'static Function) -> EntryRef {
        if let Some(home) = function.home.get() {
            if home.cache_id == self.cache_id {
                return EntryRef::Home(&home.entry);
            }
        }
        let entry = self.by_label(function.label());
        let home = function.home.get_or_init(|| Home {
            cache_id: self.cache_id,
            entry: Arc::clone(&entry),
        });
        if home.cache_id == self.cache_id {
            EntryRef::Home(&home.entry)
        } else {
            EntryRef::Shared(entry)
        }
    }

    /// The entry named `label`, made on first need. Allocates only then: a function called on
    /// a cache other than its home comes here on every call.
    fn by_label(&self, label: &str) -> Arc<FunctionEntry> {
        let mut by_label = self
            .by_label
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(entry) = by_label.get(label) {
            return Arc::clone(entry);
        }
        let entry = Arc::new(FunctionEntry::new(label, &self.cache_name));
        by_label.insert(label.to_owned(), Arc::clone(&entry));
        entry
    }

    /// Every registered function's statistics, by name.
    pub(crate) fn stats(&self) -> HashMap<String, FunctionStats> {
        let by_label = self
            .by_label
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        by_label
            .iter()
            .map(|(label, entry)| (label.clone(), entry.snapshot()))
            .collect()
    }
}

/// The metric names, as exported.
pub mod names {
    /// Reads that found a fresh or servable entry.
    pub const HITS: &str = "cachemacro_hits_total";
    /// Reads that found no servable entry.
    pub const MISSES: &str = "cachemacro_misses_total";
    /// Bodies run to fill or refresh an entry.
    pub const LOADS: &str = "cachemacro_loads_total";
    /// How long each body took, in seconds.
    pub const LOAD_SECONDS: &str = "cachemacro_load_seconds";
    /// Entries served after their ttl, within `stale`.
    pub const STALE_HITS: &str = "cachemacro_stale_hits_total";
    /// Refreshes started before expiry (XFetch).
    pub const EARLY_REFRESHES: &str = "cachemacro_early_refreshes_total";
    /// Calls that joined a load already running instead of starting one.
    pub const COALESCED: &str = "cachemacro_coalesced_total";
    /// Misses that waited for another process's fill lock.
    pub const LOCK_WAITS: &str = "cachemacro_lock_waits_total";
    /// Cache operations that failed, labelled by `kind` as well.
    pub const ERRORS: &str = "cachemacro_errors_total";
    /// Entries that could not be decoded (a changed type, a foreign value).
    pub const DECODE_ERRORS: &str = "cachemacro_decode_errors_total";
    /// Values not stored because they exceed `max_value_size`.
    pub const OVERSIZED: &str = "cachemacro_oversized_total";
    /// Failed invalidations queued for replay (labelled by cache only).
    pub const INVALIDATIONS_QUEUED: &str = "cachemacro_invalidations_queued_total";
    /// Queued invalidations applied later (labelled by cache only).
    pub const INVALIDATIONS_REPLAYED: &str = "cachemacro_invalidations_replayed_total";
    /// Queued invalidations dropped because the queue was full (labelled by cache only).
    pub const INVALIDATIONS_LOST: &str = "cachemacro_invalidations_lost_total";
    /// 1 while a circuit breaker is open, else 0 (not labelled: a Redis backend, and its
    /// breaker, may serve several caches).
    pub const BREAKER_OPEN: &str = crate::breaker::BREAKER_OPEN_METRIC;
}

macro_rules! function_counters {
    ($($(#[doc = $doc:literal])* $field:ident: $kind:ty => $record:ident, $metric:expr;)*) => {
        /// What one cached function's calls did on one cache, counted since the cache was built.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct FunctionStats {
            $($(#[doc = $doc])* pub $field: u64,)*
            /// Cache operations of this function that failed (the call itself did not).
            pub errors: u64,
        }

        /// One function's counters on one cache, and the metric handles they are exported by.
        #[derive(Debug)]
        pub(crate) struct FunctionEntry {
            label: Arc<str>,
            cache_name: Arc<str>,
            $($field: ($kind, Counter),)*
            errors: AtomicU64,
            load_seconds: Histogram,
        }

        impl FunctionEntry {
            fn new(label: &str, cache_name: &Arc<str>) -> Self {
                describe();
                let labels = [
                    Label::new("fn", label.to_owned()),
                    Label::new("cache", cache_name.to_string()),
                ];
                Self {
                    label: Arc::from(label),
                    cache_name: Arc::clone(cache_name),
                    $($field: (<$kind>::default(), metrics::counter!($metric, labels.iter())),)*
                    errors: AtomicU64::new(0),
                    load_seconds: metrics::histogram!(names::LOAD_SECONDS, labels.iter()),
                }
            }

            $(pub(crate) fn $record(&self) {
                self.$field.0.add_one();
                self.$field.1.increment(1);
            })*

            fn snapshot(&self) -> FunctionStats {
                FunctionStats {
                    $($field: self.$field.0.total(),)*
                    errors: self.errors.load(Relaxed),
                }
            }
        }
    };
}

function_counters! {
    /// Reads that found a fresh or servable entry.
    hits: Striped => hit, names::HITS;
    /// Reads that found no servable entry.
    misses: Striped => miss, names::MISSES;
    /// Bodies run to fill or refresh an entry.
    loads: AtomicU64 => load, names::LOADS;
    /// Entries served after their ttl, within `stale`.
    stale_hits: AtomicU64 => stale_hit, names::STALE_HITS;
    /// Refreshes started before expiry.
    early_refreshes: AtomicU64 => early_refresh, names::EARLY_REFRESHES;
    /// Calls that joined a load already running.
    coalesced: AtomicU64 => coalesce, names::COALESCED;
    /// Misses that waited for another process's fill lock.
    lock_waits: AtomicU64 => lock_wait, names::LOCK_WAITS;
    /// Entries that could not be decoded.
    decode_errors: AtomicU64 => decode_error, names::DECODE_ERRORS;
    /// Values not stored for their size.
    oversized: AtomicU64 => oversize, names::OVERSIZED;
}

impl FunctionEntry {
    /// The function's name.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// A failed cache operation of this function, of `kind`.
    pub(crate) fn error(&self, kind: ErrorKind) {
        self.errors.fetch_add(1, Relaxed);
        // Rare, so the counter of each kind is looked up when needed rather than held.
        metrics::counter!(
            names::ERRORS,
            "fn" => self.label.to_string(),
            "cache" => self.cache_name.to_string(),
            "kind" => kind.as_str(),
        )
        .increment(1);
    }

    /// A body, of a miss or a refresh, that ran for `took`.
    pub(crate) fn record_load_time(&self, took: Duration) {
        self.load_seconds.record(took.as_secs_f64());
    }
}

/// Gives each metric its help text, once per process.
fn describe() {
    static DESCRIBED: OnceLock<()> = OnceLock::new();
    DESCRIBED.get_or_init(|| {
        use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
        describe_counter!(names::HITS, "Reads that found a fresh or servable entry");
        describe_counter!(names::MISSES, "Reads that found no servable entry");
        describe_counter!(names::LOADS, "Bodies run to fill or refresh an entry");
        describe_histogram!(
            names::LOAD_SECONDS,
            Unit::Seconds,
            "How long each body took"
        );
        describe_counter!(
            names::STALE_HITS,
            "Entries served after their ttl, within stale"
        );
        describe_counter!(names::EARLY_REFRESHES, "Refreshes started before expiry");
        describe_counter!(names::COALESCED, "Calls that joined a load already running");
        describe_counter!(names::LOCK_WAITS, "Misses that waited for a fill lock");
        describe_counter!(names::ERRORS, "Cache operations that failed");
        describe_counter!(names::DECODE_ERRORS, "Entries that could not be decoded");
        describe_counter!(names::OVERSIZED, "Values not stored for their size");
        describe_counter!(
            names::INVALIDATIONS_QUEUED,
            "Failed invalidations queued for replay"
        );
        describe_counter!(
            names::INVALIDATIONS_REPLAYED,
            "Queued invalidations applied later"
        );
        describe_counter!(names::INVALIDATIONS_LOST, "Queued invalidations dropped");
        describe_gauge!(names::BREAKER_OPEN, "1 while a circuit breaker is open");
    });
}

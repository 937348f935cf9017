//! Redis caching patterns as attributes on async functions.
//!
//! ```
//! use cachemacro_runtime::cached;
//!
//! #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
//! struct User { id: u64, name: String }
//!
//! #[cached(ttl = "1h", key = "user:<id>")]
//! async fn get_user(id: u64) -> Result<User, std::io::Error> {
//!     Ok(User { id, name: "Ada".into() }) // the database query
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let first = get_user(1).await.unwrap(); // miss: runs the query, stores the user
//! let second = get_user(1).await.unwrap(); // hit: served from the cache
//! assert_eq!(first, second);
//! # }
//! ```
//!
//! Without setup, `#[cached]` functions use an embedded in-process cache. Point them at Redis
//! with [`Cache::from_env`] (or [`Cache::redis`]) and [`Cache::install`]. A cache fault never
//! reaches the caller: when Redis is down, slow or returns garbage, the function runs its body.
//!
//! # The attributes
//!
//! - [`#[cached]`](macro@cached): cache-aside. A hit returns the stored value, a miss runs the
//!   body and stores its result; the function also gets two companions, `invalidate_<name>`
//!   and `refresh_<name>`.
//! - [`#[cache_put]`](macro@cache_put): write-through. Runs the function, then stores its
//!   result under a key that a `#[cached]` function reads.
//! - [`#[cache_invalidate]`](macro@cache_invalidate): runs the function, then removes entries by
//!   key or by tag.
//!
//! Each attribute's page describes every argument it takes, with an example, and the page of
//! `#[cached]` shows [what it expands to](macro@cached#what-it-expands-to). The caches
//! themselves are [`Cache`] values, configured with [`Cache::builder`].
#![warn(missing_docs)]

// The modules form layers, each naming only those below it: see `layers.rs`.
mod aside;
// Not an extension point: `Cache` dispatches over its two backends statically, so that a hit
// pays no virtual call and no boxed future. Public for the conformance tests, which reach
// storage directly; hidden from the docs and without a stability promise. The two backends
// are re-exported below for `CacheBuilder::memory_backend` and `redis_backend`.
#[doc(hidden)]
pub mod backend;
mod breaker;
mod cache;
mod call;
mod checks;
mod codec;
mod core;
mod duration;
mod entry;
pub mod envelope;
mod error;
mod failure;
mod faults;
mod fill;
mod flight;
mod function;
mod invalidate;
mod key;
#[cfg(test)]
mod layers;
mod lend;
mod loader;
mod log;
mod near;
mod on_cache_error;
mod outcome;
mod pending;
mod policy;
mod server_stats;
mod stats;
mod write;

pub use cachemacro::{cache_invalidate, cache_put, cached};

pub use crate::backend::{MemoryBackend, RedisBackend, DEFAULT_TCP_NODELAY};
pub use crate::cache::{Cache, CacheBuilder};
pub use crate::codec::{Codec, Compression, Encoding};
pub use crate::entry::{Clearing, Invalidation};
pub use crate::error::{Error, ErrorKind, Result};
pub use crate::function::{names as metric_names, FunctionStats};
pub use crate::key::join_key_parts;
pub use crate::on_cache_error::OnCacheError;
pub use crate::server_stats::ServerStats;
pub use crate::stats::Stats;

/// A key from parts, each escaped and joined by `:` (see [`join_key_parts`]): for a
/// `key = <expression>` that a template cannot express, and that stays collision-free.
///
/// ```
/// # #[derive(Clone, serde::Serialize, serde::Deserialize)] struct Report;
/// # #[derive(Clone, Copy)] enum Period { Day }
/// # impl Period { fn label(self) -> &'static str { "day" } }
/// use cachemacro_runtime::{cached, key_parts};
///
/// #[cached(key = key_parts!("report", account, period.label()))]
/// async fn report(account: u64, period: Period) -> Report {
///     Report
/// }
/// assert_eq!(key_parts!("report", 7, "day"), "report:7:day");
/// ```
#[macro_export]
macro_rules! key_parts {
    ($($part:expr),+ $(,)?) => {
        $crate::join_key_parts(&[$(&$part as &dyn ::core::fmt::Display),+])
    };
}

/// Support for the code `#[cached]` generates. Not public API: no stability guarantee.
#[doc(hidden)]
pub mod __private {
    pub use crate::cache::Cache;
    pub use crate::checks::{assert_cacheable, Cacheable, CompanionsInTraitImpl};
    pub use crate::codec::gates::*;
    pub use crate::codec::{Codec, Compression};
    pub use crate::entry::{
        cached_option, cached_result, cached_value, clearing, invalidate_after,
        invalidate_after_result, invalidation, put_option, put_result, put_value, uncached,
    };
    pub use crate::failure::{
        assert_can_fail, CanFail, FailByError, FailNever, Failure, FailureProbe,
    };
    pub use crate::function::Function;
    pub use crate::key::{scope, Key, KeyBuilder};
    pub use crate::lend::{
        mark, AllOwned, DetachProbe, DetachedRefresh, HoldBorrowed, HoldOwned, HoldProbe, Lend,
        Lent, Owned, Refresh, RouteDetached, RouteInCaller,
    };
    pub use crate::loader::{
        probe_lending, Detached, EraseLending, InCaller, KeepLending, Lending, SendLending,
    };
    pub use crate::on_cache_error::OnCacheError;
    pub use crate::outcome::{
        skip_store, unless_ok, unless_some, unless_value, Mode, OptionMode, PlainMode, ResultMode,
    };
    pub use crate::outcome::{ShareByClone, ShareNothing, Sharing, SharingProbe};
    pub use crate::policy::Policy;

    /// The installed global cache.
    pub fn global_cache() -> Cache {
        crate::cache::global()
    }

    /// A handle to the cache a `cache = <expr>` argument reaches.
    pub fn cache_handle(cache: &Cache) -> Cache {
        cache.clone()
    }

    /// A builder for a tag by name, as `#[cache_invalidate]` hands it over: tags are not prefixed
    /// (the keys of their epochs are).
    pub fn tag_builder(capacity: usize) -> KeyBuilder {
        KeyBuilder::with_capacity(capacity)
    }

    /// A builder for the key of a tag's epoch: the cache's prefix and the epoch's mark, then the
    /// tag. A cached function hands its tags to the runtime in this form, which a hit reads as
    /// it is and whose tail is the tag's name.
    pub fn epoch_key_builder(cache: &Cache, capacity: usize) -> KeyBuilder {
        let prefix = &cache.core.key_prefix;
        let mark = crate::core::EPOCH_MARK;
        let mut builder = KeyBuilder::with_capacity(prefix.len() + mark.len() + capacity);
        builder.literal(prefix).literal(mark);
        builder
    }

    /// A key builder that starts with the cache's prefix.
    pub fn key_builder(cache: &Cache, capacity: usize) -> KeyBuilder {
        let prefix = &cache.core.key_prefix;
        let mut builder = KeyBuilder::with_capacity(prefix.len() + capacity);
        builder.literal(prefix);
        builder
    }
}

//! `#[cached]` on associated functions without a receiver: constructors returning `Self`, ones
//! that borrow their arguments, and their `invalidate_*` and `refresh_*` companions, which must
//! call the function through `Self::` since nothing else names it inside an impl.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use cachemacro_runtime::{cached, Cache};
use serde::{Deserialize, Serialize};

static LOADS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

impl User {
    #[cached(cache = cache.clone(), key = "user:<id>", ttl = "1m", stale = "1m")]
    async fn load(cache: &Cache, id: u64) -> Option<Self> {
        LOADS.fetch_add(1, SeqCst);
        Some(User {
            id,
            name: format!("user {id}"),
        })
    }

    #[cached(cache = cache.clone(), key = "by-name:<name>", ttl = "1m", stale = "1m")]
    async fn by_name(cache: &Cache, name: &str) -> Option<Self> {
        LOADS.fetch_add(1, SeqCst);
        Some(User {
            id: name.len() as u64,
            name: name.to_owned(),
        })
    }
}

#[tokio::test]
async fn constructors_and_their_companions_use_the_cache() {
    let cache = Cache::memory();
    let before = LOADS.load(SeqCst);
    let first = User::load(&cache, 7).await;
    assert_eq!(User::load(&cache, 7).await, first);
    assert_eq!(LOADS.load(SeqCst) - before, 1, "the second call is a hit");

    User::invalidate_load(&cache, 7).await.expect("invalidated");
    assert_eq!(User::load(&cache, 7).await, first);
    assert_eq!(
        LOADS.load(SeqCst) - before,
        2,
        "invalidated, so loaded again"
    );

    assert_eq!(User::refresh_load(&cache, 7).await, first);
    assert_eq!(LOADS.load(SeqCst) - before, 3, "a refresh loads");

    let named = User::by_name(&cache, "ada").await;
    assert_eq!(User::by_name(&cache, "ada").await, named);
    assert_eq!(User::refresh_by_name(&cache, "ada").await, named);
    assert_eq!(LOADS.load(SeqCst) - before, 5, "one load and one refresh");
}

/// Nothing in this fn's signature shows the macro that it is in an impl, so without the `where`
/// clause its companions and siblings would call it as a free fn: `where Self: Sized` says so.
struct Counter;

static COUNTS: AtomicUsize = AtomicUsize::new(0);

impl Counter {
    #[cached(cache = cache.clone(), key = "count:<id>", ttl = "1m", stale = "1m")]
    async fn count(cache: &Cache, id: u64) -> u64
    where
        Self: Sized,
    {
        COUNTS.fetch_add(1, SeqCst);
        id * 2
    }
}

#[tokio::test]
async fn an_associated_fn_that_names_self_only_in_a_where_clause() {
    let cache = Cache::memory();
    assert_eq!(Counter::count(&cache, 4).await, 8);
    assert_eq!(Counter::count(&cache, 4).await, 8);
    assert_eq!(COUNTS.load(SeqCst), 1);
    assert_eq!(Counter::refresh_count(&cache, 4).await, 8);
    Counter::invalidate_count(&cache, 4)
        .await
        .expect("invalidated");
    assert_eq!(Counter::count(&cache, 4).await, 8);
    assert_eq!(COUNTS.load(SeqCst), 3);
}

//! The classic cache-aside scenario on the embedded in-process cache: no Redis needed.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! A slow "database" query is wrapped in `#[cached]`. The first call runs the query and stores the
//! result (a miss, ~200 ms); the second call is answered from the cache (a hit, microseconds).

use std::time::{Duration, Instant};

use cachemacro_runtime::{cached, Cache};
use serde::{Deserialize, Serialize};

/// What the database returns. Cached values only need serde's `Serialize` and `Deserialize`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    email: String,
}

/// Stands in for a real query that takes 200 ms.
async fn query_user_from_database(id: u64) -> User {
    tokio::time::sleep(Duration::from_millis(200)).await;
    User {
        id,
        name: format!("User {id}"),
        email: format!("user{id}@example.com"),
    }
}

/// Cached for one hour under the key `user:<id>`, e.g. `user:42`. With no `cache = ...` argument
/// the function uses the global cache: the one installed in `main`.
#[cached(ttl = 3600, key = "user:<id>")]
async fn get_user(id: u64) -> User {
    query_user_from_database(id).await
}

#[tokio::main]
async fn main() {
    // Without this line `#[cached]` would make an embedded cache on first use; installing our own
    // keeps a handle to it so we can read its statistics at the end.
    let cache = Cache::memory();
    cache.install();

    let started = Instant::now();
    let user = get_user(42).await;
    let miss_time = started.elapsed();
    println!("first call (miss): {miss_time:.1?}  -> {user:?}");

    let started = Instant::now();
    let user = get_user(42).await;
    let hit_time = started.elapsed();
    println!("second call (hit): {hit_time:.1?}  -> {user:?}");

    let speed_up = miss_time.as_secs_f64() / hit_time.as_secs_f64();
    println!("speed-up: {speed_up:.0}x");

    let stats = cache.stats();
    println!(
        "hit rate: {:.0}% ({} hit, {} miss, {} database call)",
        stats.hit_rate() * 100.0,
        stats.hits,
        stats.misses,
        stats.loads,
    );
}

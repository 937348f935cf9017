//! The quickstart scenario against a real Redis server, plus the `Result` and `Option` forms.
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run --example redis
//! ```
//!
//! Without `REDIS_URL` the same code runs on the embedded in-process cache.

use std::time::{Duration, Instant};

use cachemacro_runtime::{cached, Cache};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    email: String,
}

/// The error a real database driver would return.
#[derive(Debug)]
struct DbError(String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "database error: {}", self.0)
    }
}

impl std::error::Error for DbError {}

/// A query that takes 200 ms and can fail.
async fn query_user(id: u64) -> Result<User, DbError> {
    tokio::time::sleep(Duration::from_millis(200)).await;
    if id == 0 {
        return Err(DbError("id 0 is reserved".into()));
    }
    Ok(User {
        id,
        name: format!("User {id}"),
        email: format!("user{id}@example.com"),
    })
}

/// `Result` form: `Ok` values are cached, an `Err` is returned to the caller and never stored, so
/// the next call asks the database again.
#[cached(ttl = "1h", key = "user:<id>")]
async fn get_user(id: u64) -> Result<User, DbError> {
    query_user(id).await
}

/// `Option` form with negative caching: a `None` ("no such user") is cached too, for a shorter
/// time, so lookups of a missing row do not reach the database on every request.
#[cached(ttl = "1h", negative_ttl = "30s", key = "user-lookup:<id>")]
async fn find_user(id: u64) -> Option<User> {
    query_user(id).await.ok().filter(|user| user.id < 1000)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("REDIS_URL").is_none() {
        println!("note: REDIS_URL is not set, so this runs on the embedded in-process cache");
    }
    // Redis at REDIS_URL, or the embedded cache; `install` makes it the one `#[cached]` uses.
    let cache = Cache::from_env().await?;
    cache.install();
    println!("cache: {cache:?}");

    // Entries outlive this process on Redis: start clean so the first calls below are misses.
    cache.delete("user:42").await?;
    cache.delete("user-lookup:4040").await?;

    let started = Instant::now();
    let user = get_user(42).await?;
    let miss_time = started.elapsed();
    println!("first call (miss): {miss_time:.1?}  -> {user:?}");

    let started = Instant::now();
    let user = get_user(42).await?;
    let hit_time = started.elapsed();
    println!("second call (hit): {hit_time:.1?}  -> {user:?}");
    let speed_up = miss_time.as_secs_f64() / hit_time.as_secs_f64();
    println!("speed-up: {speed_up:.0}x");

    // An error reaches the caller unchanged and is not cached.
    match get_user(0).await {
        Ok(user) => println!("unexpected user: {user:?}"),
        Err(error) => println!("get_user(0): {error} (not cached)"),
    }

    // The first lookup of a missing user asks the database; the second is a cached `None`.
    for attempt in ["first", "second"] {
        let started = Instant::now();
        let found = find_user(4040).await;
        println!(
            "{attempt} lookup of a missing user: {:.1?}  -> {found:?}",
            started.elapsed()
        );
    }

    let stats = cache.stats();
    println!(
        "hit rate: {:.0}% ({} hits, {} misses, {} database calls, {} cache errors)",
        stats.hit_rate() * 100.0,
        stats.hits,
        stats.misses,
        stats.loads,
        stats.errors,
    );
    Ok(())
}

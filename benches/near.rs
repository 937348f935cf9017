//! The near cache (L1) hit against a bare `moka` get and a Redis hit, in one run.
//!
//! ```text
//! cargo bench --bench near
//! ```
//!
//! One task on a current-thread runtime reads one 200-byte row (`Profile`) in a loop:
//! - `moka`: `moka::sync::Cache<String, Profile>::get`, which clones the row, as any hit that
//!   hands out an owned value must;
//! - `l1`: a `#[cached]` function on a Redis cache with `.local(..)`, answered by its near
//!   cache (key rendering, the wrapper, the near cache's checks and the clone included);
//! - `redis`: the same function on a Redis cache without a near cache (a loopback round trip
//!   and a decode).
//!
//! Reported: nanoseconds per call, the median of 5 rounds, and the ratios. Under
//! `cargo test --benches` it runs a few calls as a smoke test and prints no figures.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cachemacro_runtime::{cached, Cache};
use cachemacro_tests::bench::{measuring, smoke_test_done, Profile};
use cachemacro_tests::RedisServer;

#[cached(ttl = "1h", key = "profile:<id>", cache = cache)]
async fn profile(cache: &Cache, id: u64) -> Profile {
    Profile::load(id)
}

/// The same function, for the near cache: a function's counters live on the first cache that
/// calls it, and one called on two caches looks the other's up by name on every call.
#[cached(ttl = "1h", key = "near:<id>", cache = cache)]
async fn near_profile(cache: &Cache, id: u64) -> Profile {
    Profile::load(id)
}

/// Nanoseconds per call of `call`, over `calls` calls.
async fn per_call<F: std::future::Future<Output = Profile>>(
    calls: u32,
    mut call: impl FnMut() -> F,
) -> f64 {
    let started = Instant::now();
    for _ in 0..calls {
        black_box(call().await);
    }
    started.elapsed().as_nanos() as f64 / f64::from(calls)
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let measure = measuring();
    let (rounds, fast_calls, slow_calls) = if measure {
        (5, 500_000, 20_000)
    } else {
        (1, 100, 10)
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let server = RedisServer::start();
    runtime.block_on(async {
        let near = Cache::builder()
            .local(1_000)
            .redis(&server.url())
            .await
            .expect("a cache");
        let plain = Cache::builder()
            .redis(&server.url())
            .await
            .expect("a cache");
        let moka: moka::sync::Cache<String, Profile> = moka::sync::Cache::new(1_000);
        moka.insert("profile:1".to_owned(), Profile::load(1));
        profile(&plain, 1).await;
        // Until the tracking session is on and the row is in the near cache.
        let deadline = Instant::now() + Duration::from_secs(10);
        while near.stats().l1_hits == 0 {
            near_profile(&near, 1).await;
            assert!(Instant::now() < deadline, "the near cache never served");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (mut moka_ns, mut l1_ns, mut redis_ns) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            moka_ns.push(
                per_call(fast_calls, || {
                    let found = moka.get("profile:1");
                    async move { found.expect("inserted") }
                })
                .await,
            );
            let before = near.stats().l1_hits;
            l1_ns.push(per_call(fast_calls, || near_profile(&near, 1)).await);
            assert_eq!(
                near.stats().l1_hits - before,
                u64::from(fast_calls),
                "every call an L1 hit"
            );
            redis_ns.push(per_call(slow_calls, || profile(&plain, 1)).await);
        }
        if !measure {
            smoke_test_done("near");
            return;
        }
        let (moka_ns, l1_ns, redis_ns) = (median(moka_ns), median(l1_ns), median(redis_ns));
        println!("| read | ns per call (median of {rounds} rounds) |");
        println!("|---|---:|");
        println!("| bare moka get (clone of the row) | {moka_ns:.0} |");
        println!("| near cache (L1) hit through `#[cached]` | {l1_ns:.0} |");
        println!("| Redis hit through `#[cached]` | {redis_ns:.0} |");
        println!(
            "L1 / moka: {:.2}x; Redis / L1: {:.0}x",
            l1_ns / moka_ns,
            redis_ns / l1_ns
        );
    });
}

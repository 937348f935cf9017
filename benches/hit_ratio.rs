//! The hit-path ratio `#[cached]` / raw redis-rs, measured interleaved so that drift of the
//! machine hits both sides alike.
//!
//! ```text
//! cargo bench --bench hit_ratio
//! ```
//!
//! Each round reads one ~200-byte JSON value for a fixed number of calls through a `#[cached]`
//! function, then through a raw `GET` + `serde_json` decode on a `ConnectionManager` with
//! TCP_NODELAY (the cache's own kind of connection) and on one with redis-rs's defaults (what a
//! user writes by hand), with 64 tasks on one Tokio worker; the order rotates between rounds.
//! Reported: each round's ratios, and their medians.
//!
//! Under `cargo test --benches` it runs one short round, as a smoke test, and prints no figures.

use std::time::Instant;

use cachemacro_runtime::{cached, Cache};
use cachemacro_tests::bench::{
    client_runtime, measuring, raw_connection, raw_default_connection, redis_cache,
    smoke_test_done, Profile,
};
use cachemacro_tests::RedisServer;

const TASKS: u64 = 64;

#[cached(ttl = "1h", key = "profile:<id>", cache = cache)]
async fn cached_profile(cache: &Cache, id: u64) -> Profile {
    Profile::load(id)
}

/// Starts the 64 readers `read` makes and returns their calls per second.
async fn calls_per_second(
    calls_per_task: u64,
    read: impl Fn() -> tokio::task::JoinHandle<()>,
) -> f64 {
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS).map(|_| read()).collect();
    for task in tasks {
        task.await.expect("a reader panicked");
    }
    (TASKS * calls_per_task) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let measuring = measuring();
    let (rounds, calls_per_task) = if measuring { (11, 1500) } else { (1, 10) };
    let runtime = client_runtime();
    let server = RedisServer::start();
    runtime.block_on(async {
        let cache = redis_cache(&server.url()).await;
        let mut raw = raw_connection(&server.url()).await;
        let json = serde_json::to_vec(&Profile::load(1)).expect("the value encodes");
        let () = redis::cmd("SET")
            .arg("raw:profile:1")
            .arg(&json)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(cached_profile(&cache, 1).await, Profile::load(1));

        let cached_round = || {
            calls_per_second(calls_per_task, || {
                let cache = cache.clone();
                tokio::spawn(async move {
                    for _ in 0..calls_per_task {
                        std::hint::black_box(cached_profile(&cache, 1).await);
                    }
                })
            })
        };
        let defaults = raw_default_connection(&server.url()).await;
        let raw_round = |connection: redis::aio::ConnectionManager| {
            calls_per_second(calls_per_task, move || {
                let mut raw = connection.clone();
                tokio::spawn(async move {
                    for _ in 0..calls_per_task {
                        let bytes: Vec<u8> = redis::cmd("GET")
                            .arg("raw:profile:1")
                            .query_async(&mut raw)
                            .await
                            .unwrap();
                        std::hint::black_box(serde_json::from_slice::<Profile>(&bytes).unwrap());
                    }
                })
            })
        };
        let (mut to_nodelay, mut to_defaults) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let (mut cached, mut nodelay, mut default) = (0.0, 0.0, 0.0);
            for step in 0..3 {
                match (round + step) % 3 {
                    0 => cached = cached_round().await,
                    1 => nodelay = raw_round(raw.clone()).await,
                    _ => default = raw_round(defaults.clone()).await,
                }
            }
            if measuring {
                println!(
                    "round {round}: #[cached] {cached:.0} calls/s, raw with TCP_NODELAY \
                     {nodelay:.0}, raw with defaults {default:.0}; ratios {:.3} and {:.3}",
                    cached / nodelay,
                    cached / default
                );
            }
            to_nodelay.push(cached / nodelay);
            to_defaults.push(cached / default);
        }
        assert_eq!(cache.stats().loads, 1, "every measured call was a hit");
        if !measuring {
            smoke_test_done("hit_ratio");
            return;
        }
        for (baseline, ratios) in [
            ("raw with TCP_NODELAY", &mut to_nodelay),
            ("raw with redis-rs defaults", &mut to_defaults),
        ] {
            ratios.sort_by(f64::total_cmp);
            println!(
                "median ratio to {baseline} over {rounds} rounds: {:.3} (range {:.3}–{:.3})",
                ratios[ratios.len() / 2],
                ratios[0],
                ratios[ratios.len() - 1]
            );
        }
    });
}

//! Latency of a `#[cached]` call while Redis is down, with the circuit breaker and without it.
//!
//! ```text
//! cargo bench --bench outage
//! ```
//!
//! Two outages of a private `redis-server`: killed (connections refused at once) and frozen with
//! SIGSTOP (nothing answers; every command waits for the 100 ms operation timeout). In each, 16
//! tasks make calls whose body (the "database") takes 1 ms. Reported: p50, p99 and max latency of
//! a call, and how many cache operations failed (refused or timed out) or were skipped.
//!
//! Under `cargo test --benches` it makes a few calls only, as a smoke test, and prints no figures.

use std::time::{Duration, Instant};

use cachemacro_runtime::{cached, Cache};
use cachemacro_tests::bench::{client_runtime, measuring, smoke_test_done};
use cachemacro_tests::RedisServer;

#[cached(ttl = 60, key = "row:<id>", cache = cache)]
async fn row(cache: Cache, id: u64) -> Result<u64, String> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    Ok(id)
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * fraction).round() as usize]
}

async fn calls_while_down(cache: &Cache, calls_per_task: u64) -> Vec<Duration> {
    let tasks: Vec<_> = (0..16u64)
        .map(|task| {
            let cache = cache.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for call in 0..calls_per_task {
                    let id = task * 1000 + call;
                    let started = Instant::now();
                    assert_eq!(row(cache.clone(), id).await, Ok(id));
                    latencies.push(started.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    latencies.sort_unstable();
    latencies
}

fn main() {
    let measuring = measuring();
    let calls_per_task = if measuring { 200 } else { 3 };
    let runtime = client_runtime();
    if measuring {
        println!("16 tasks × {calls_per_task} calls, 1 ms body, 100 ms operation timeout");
        println!("| outage | breaker | p50 | p99 | max | failed ops | skipped ops |");
        println!("|---|---|---:|---:|---:|---:|---:|");
    }
    for outage in ["killed", "frozen"] {
        for with_breaker in [true, false] {
            let mut server = RedisServer::start();
            let (latencies, stats) = runtime.block_on(async {
                let builder = Cache::builder().operation_timeout(Duration::from_millis(100));
                let builder = if with_breaker {
                    builder
                } else {
                    builder.without_circuit_breaker()
                };
                let cache = builder.redis(&server.url()).await.expect("a Redis cache");
                match outage {
                    "killed" => server.kill(),
                    _ => server.freeze(),
                }
                let latencies = calls_while_down(&cache, calls_per_task).await;
                (latencies, cache.stats())
            });
            server.thaw();
            if !measuring {
                continue;
            }
            println!(
                "| {outage} | {} | {:.1?} | {:.1?} | {:.1?} | {} | {} |",
                if with_breaker { "on" } else { "off" },
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99),
                latencies.last().copied().unwrap_or_default(),
                stats.errors,
                stats.breaker_skips,
            );
        }
    }
    if !measuring {
        smoke_test_done("outage");
    }
}

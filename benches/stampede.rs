//! A hot key under load across many expiries, with stampede protection and without it.
//!
//! ```text
//! cargo bench --bench stampede
//! ```
//!
//! 64 tasks read one key on a private `redis-server` for 20 ttl periods. The loader (the
//! "database") takes 20 ms. "protected" is `#[cached]` with its defaults (single flight, fill lock,
//! early refresh); "unprotected" is the textbook cache-aside written by hand: `GET`, and on a miss
//! load and `SET`. Reported: loads per expiry and the p50/p99/max latency of a read.
//!
//! The client runs on one Tokio worker, leaving the second core to `redis-server`. Under
//! `cargo test --benches` it runs two periods only, as a smoke test, and prints no figures.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachemacro_runtime::{cached, Cache};
use cachemacro_tests::bench::{client_runtime, measuring, smoke_test_done};
use cachemacro_tests::RedisServer;

const TASKS: usize = 64;
const TTL: Duration = Duration::from_secs(1);
const LOAD_TIME: Duration = Duration::from_millis(20);

async fn query_database(loads: &AtomicU64, id: u64) -> u64 {
    loads.fetch_add(1, Relaxed);
    tokio::time::sleep(LOAD_TIME).await;
    id * 2
}

#[cached(ttl = "1s", key = "hot:<id>", cache = cache)]
async fn protected_read(cache: Cache, loads: Arc<AtomicU64>, id: u64) -> u64 {
    query_database(&loads, id).await
}

async fn unprotected_read(cache: &Cache, loads: &AtomicU64, id: u64) -> u64 {
    let key = format!("naive:{id}");
    if let Ok(Some(value)) = cache.get::<u64>(&key).await {
        return value;
    }
    let value = query_database(loads, id).await;
    let _ = cache.set(&key, &value, TTL).await;
    value
}

#[derive(Clone, Copy)]
enum Protection {
    On,
    Off,
}

struct Outcome {
    latencies: Vec<Duration>,
    loads: u64,
}

async fn run(cache: &Cache, protection: Protection, periods: u32) -> Outcome {
    let loads = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + TTL * periods;
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let value = match protection {
                        Protection::On => {
                            protected_read(cache.clone(), Arc::clone(&loads), 7).await
                        }
                        Protection::Off => unprotected_read(&cache, &loads, 7).await,
                    };
                    latencies.push(started.elapsed());
                    assert_eq!(value, 14);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("a reader panicked"));
    }
    latencies.sort_unstable();
    Outcome {
        latencies,
        loads: loads.load(Relaxed),
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

fn main() {
    let measuring = measuring();
    let periods = if measuring { 20 } else { 2 };
    let runtime = client_runtime();
    let server = RedisServer::start();
    if measuring {
        println!(
            "{TASKS} tasks, one hot key, ttl {TTL:?}, load {LOAD_TIME:?}, {periods} ttl periods"
        );
        println!("| protection | reads | loads | loads per expiry | p50 | p99 | max |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
    }
    for (name, protection) in [
        ("on (#[cached])", Protection::On),
        ("off (hand-written)", Protection::Off),
    ] {
        let outcome = runtime.block_on(async {
            let cache = Cache::redis(&server.url()).await.expect("a Redis cache");
            run(&cache, protection, periods).await
        });
        assert!(outcome.loads >= 1, "the loader ran");
        if !measuring {
            continue;
        }
        let reads = outcome.latencies.len();
        println!(
            "| {name} | {reads} | {} | {:.1} | {:.0?} | {:.1?} | {:.1?} |",
            outcome.loads,
            outcome.loads as f64 / f64::from(periods),
            percentile(&outcome.latencies, 0.50),
            percentile(&outcome.latencies, 0.99),
            outcome.latencies.last().copied().unwrap_or_default(),
        );
    }
    if !measuring {
        smoke_test_done("stampede");
    }
}

//! The cost of a cache hit through `#[cached]`, against the hand-written code it replaces.
//!
//! ```text
//! cargo bench --bench hit_path      # or scripts/bench.sh
//! ```
//!
//! `redis_hit` compares a hit through a `#[cached]` function on a Redis cache with a raw redis-rs
//! `GET` plus `serde_json` decode of the same value, on a `ConnectionManager` with redis-rs's
//! defaults (`raw_defaults`: what a user writes by hand) and on one with TCP_NODELAY
//! (`raw_nodelay`), at 1 and 64 concurrent tasks. `memory_hit` measures a
//! hit on the embedded cache. Throughput is in calls per second; the tasks share the iteration
//! count on a one-worker Tokio runtime. One worker leaves the second core to `redis-server`: with
//! two workers the client and the server contend for two cores and throughput jumps between two
//! modes (about 220k and 440k calls/s here) from run to run, drowning the difference measured.
//! With one worker the client's CPU is the bottleneck, which is where the wrapper's own cost
//! shows most.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cachemacro_runtime::{cached, Cache};
use cachemacro_tests::bench::{
    client_runtime, raw_connection, raw_default_connection, redis_cache, Profile,
};
use cachemacro_tests::RedisServer;
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, PlottingBackend, Throughput,
};
use redis::aio::ConnectionManager;
use tokio::runtime::Runtime;

const CONCURRENCY: [usize; 2] = [1, 64];
const PROFILE_ID: u64 = 1;
/// Where the raw baseline keeps its copy of the value: plain JSON, no envelope.
const RAW_KEY: &str = "raw:profile:1";

#[cached(ttl = "1h", key = "profile:<id>", cache = cache)]
async fn cached_profile(cache: &Cache, id: u64) -> Profile {
    Profile::load(id)
}

/// What one measured call reads through.
#[derive(Clone)]
enum Reader {
    Cached(Cache),
    RawRedis(ConnectionManager),
}

impl Reader {
    async fn read(&mut self) -> Profile {
        match self {
            Reader::Cached(cache) => cached_profile(cache, PROFILE_ID).await,
            Reader::RawRedis(connection) => {
                let bytes: Vec<u8> = redis::cmd("GET")
                    .arg(RAW_KEY)
                    .query_async(connection)
                    .await
                    .expect("GET succeeds");
                serde_json::from_slice(&bytes).expect("the stored JSON decodes")
            }
        }
    }
}

/// Runs `iterations` reads split over `concurrency` tasks, each with its own clone of `reader`,
/// and returns the wall time from the first spawn to the last completion.
async fn read_concurrently(reader: &Reader, concurrency: usize, iterations: u64) -> Duration {
    let tasks = concurrency as u64;
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let share = iterations / tasks + u64::from(task < iterations % tasks);
            let mut reader = reader.clone();
            tokio::spawn(async move {
                for _ in 0..share {
                    black_box(reader.read().await);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("a benchmark task panicked");
    }
    started.elapsed()
}

/// Stores the entry, then proves the next call is a hit, so the measurement cannot time misses.
async fn fill_and_check_hit(cache: &Cache) {
    let expected = Profile::load(PROFILE_ID);
    assert_eq!(cached_profile(cache, PROFILE_ID).await, expected);
    let before = cache.stats();
    assert_eq!(cached_profile(cache, PROFILE_ID).await, expected);
    let after = cache.stats();
    assert_eq!(
        after.hits,
        before.hits + 1,
        "the second call must hit: {after:?}"
    );
    assert_eq!(after.loads, 1, "only the first call may load: {after:?}");
}

/// After measuring: every measured call was a hit.
fn assert_no_load_since_fill(cache: &Cache) {
    let stats = cache.stats();
    assert_eq!(
        stats.loads, 1,
        "some measured calls missed (timeouts or evictions): {stats:?}"
    );
}

fn bench_readers(
    c: &mut Criterion,
    runtime: &Runtime,
    group_name: &str,
    readers: &[(&str, Reader)],
) {
    let mut group = c.benchmark_group(group_name);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    for concurrency in CONCURRENCY {
        for (name, reader) in readers {
            group.bench_with_input(BenchmarkId::new(*name, concurrency), reader, |b, reader| {
                b.to_async(runtime)
                    .iter_custom(|iterations| read_concurrently(reader, concurrency, iterations));
            });
        }
    }
    group.finish();
}

fn redis_hit(c: &mut Criterion) {
    let server = RedisServer::start();
    let runtime = client_runtime();

    let cache = runtime.block_on(redis_cache(&server.url()));
    runtime.block_on(fill_and_check_hit(&cache));

    let connection = runtime.block_on(async {
        let mut connection = raw_connection(&server.url()).await;
        let json = serde_json::to_vec(&Profile::load(PROFILE_ID)).expect("the value encodes");
        let () = redis::cmd("SET")
            .arg(RAW_KEY)
            .arg(&json)
            .query_async(&mut connection)
            .await
            .expect("SET succeeds");
        println!("value size: {} bytes of JSON", json.len());
        connection
    });
    let defaults = runtime.block_on(raw_default_connection(&server.url()));

    let readers = [
        ("cached", Reader::Cached(cache.clone())),
        ("raw_defaults", Reader::RawRedis(defaults)),
        ("raw_nodelay", Reader::RawRedis(connection)),
    ];
    bench_readers(c, &runtime, "redis_hit", &readers);
    assert_no_load_since_fill(&cache);
}

fn memory_hit(c: &mut Criterion) {
    let runtime = client_runtime();
    let cache = Cache::memory();
    runtime.block_on(fill_and_check_hit(&cache));
    bench_readers(
        c,
        &runtime,
        "memory_hit",
        &[("cached", Reader::Cached(cache.clone()))],
    );
    assert_no_load_since_fill(&cache);
}

criterion_group! {
    name = benches;
    // No plots (criterion is built without plotters, and gnuplot is not wanted either): the
    // figures are criterion's estimates, which scripts/bench.sh reads.
    config = Criterion::default().plotting_backend(PlottingBackend::None);
    targets = redis_hit, memory_hit
}
criterion_main!(benches);

//! A fixed number of cache hits on one thread, for counting the instructions of a hit with
//! callgrind, which counts the same way however busy the machine is.
//!
//! ```text
//! cargo bench --bench hit_instructions --no-run   # prints the binary's path
//! valgrind --tool=callgrind --toggle-collect='*hit_loop*' <binary> --bench memory
//! valgrind --tool=callgrind --toggle-collect='*hit_loop*' <binary> --bench redis
//! callgrind_annotate --inclusive=yes callgrind.out.<pid> | grep hit_loop
//! ```
//!
//! Each `hit_loop_*` function makes [`HITS`] calls of one `#[cached]` function whose value (about
//! 200 bytes of JSON) is already stored, on a current-thread Tokio runtime: its inclusive count
//! divided by [`HITS`] is the instructions per hit. `owned` takes its argument by value (a
//! detached loader, the global cache); `borrowed` takes `cache: &Cache` (a lending loader). The
//! `redis` run starts a private `redis-server`; the server's own work is not counted.
//!
//! Under `cargo test --benches` it runs a few hits on both backends, as a smoke test.

use cachemacro_runtime::{cached, Cache};
use cachemacro_tests::bench::{redis_cache, Profile};
use cachemacro_tests::RedisServer;
use tokio::runtime::Runtime;

/// Hits per loop when measuring.
const HITS: u64 = 10_000;

#[cached(ttl = "1h", key = "owned:<id>")]
async fn owned_profile(id: u64) -> Profile {
    Profile::load(id)
}

#[cached(ttl = "1h", key = "borrowed:<id>", cache = cache)]
async fn borrowed_profile(cache: &Cache, id: u64) -> Profile {
    Profile::load(id)
}

#[inline(never)]
fn hit_loop_owned(runtime: &Runtime, hits: u64) {
    runtime.block_on(async {
        for _ in 0..hits {
            std::hint::black_box(owned_profile(std::hint::black_box(1)).await);
        }
    });
}

#[inline(never)]
fn hit_loop_borrowed(runtime: &Runtime, cache: &Cache, hits: u64) {
    runtime.block_on(async {
        for _ in 0..hits {
            std::hint::black_box(borrowed_profile(cache, std::hint::black_box(1)).await);
        }
    });
}

/// Stores both values, then runs both loops against `cache`.
fn run(runtime: &Runtime, cache: &Cache, hits: u64) {
    cache.install();
    runtime.block_on(async {
        assert_eq!(owned_profile(1).await, Profile::load(1));
        assert_eq!(borrowed_profile(cache, 1).await, Profile::load(1));
    });
    hit_loop_owned(runtime, hits);
    hit_loop_borrowed(runtime, cache, hits);
    assert_eq!(
        cache.stats().loads,
        2,
        "every call after the first two was a hit"
    );
    assert_eq!(cache.stats().hits, 2 * hits);
}

fn main() {
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let hits = if measuring { HITS } else { 10 };
    let backends: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| arg == "memory" || arg == "redis")
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    for backend in ["memory", "redis"] {
        if !backends.is_empty() && !backends.iter().any(|wanted| wanted == backend) {
            continue;
        }
        let server = (backend == "redis").then(RedisServer::start);
        let cache = match &server {
            Some(server) => runtime.block_on(redis_cache(&server.url())),
            None => Cache::memory(),
        };
        run(&runtime, &cache, hits);
        println!("{backend}: {hits} hits of each function");
    }
}

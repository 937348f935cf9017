//! Heap allocations per cache hit, counted by a global allocator, against what the hit cannot
//! avoid: decoding the value (for the embedded cache) and the same reads through the raw redis-rs
//! client plus the decode (for Redis, whose client allocates on its own).
//!
//! ```text
//! cargo test --test hit_allocations -- --nocapture     # prints the table
//! ```
//!
//! Allocations are counted on the measuring thread only, and everything runs on a current-thread
//! Tokio runtime, so the connection's driver task is counted too, on both sides of each
//! comparison, and nothing else is. A reallocation counts as an allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;

use cachemacro_runtime::{cached, Cache};
use cachemacro_tests::bench::{raw_connection, redis_cache, Profile};
use cachemacro_tests::RedisServer;
use redis::aio::ConnectionManager;

/// How many allocations a hit may make beyond its baseline, on average: none of its own (K = 0).
/// The margin only absorbs what redis-rs and Tokio allocate now and then on either side (a few
/// hundredths of an allocation per call here); one more allocation on every hit exceeds it.
const OVER_BASELINE: f64 = 0.25;
/// Hits counted per case, after as many uncounted ones.
const HITS: u32 = 1000;
/// An hour, the entries' ttl, in ms: the raw baselines' `GETEX` restarts the same.
const TTL_MS: u64 = 3_600_000;

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the allocator also runs while this thread's locals are torn down.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            ALLOCATIONS.with(|count| count.set(count.get() + 1));
        }
    });
}

// SAFETY: every call is forwarded to `System` unchanged; counting touches only const-initialized
// thread locals without destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations per call of `call`, over [`HITS`] calls after as many to warm up.
async fn per_call<F, Fut>(mut call: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: Future,
{
    for _ in 0..HITS {
        black_box(call().await);
    }
    ALLOCATIONS.with(|count| count.set(0));
    ARMED.with(|armed| armed.set(true));
    for _ in 0..HITS {
        black_box(call().await);
    }
    ARMED.with(|armed| armed.set(false));
    ALLOCATIONS.with(Cell::get) as f64 / f64::from(HITS)
}

#[cached(ttl = "1h", key = "plain:<id>", cache = cache)]
async fn plain(cache: &Cache, id: u64) -> Profile {
    Profile::load(id)
}

#[cached(ttl = "1h", key = "tagged:<id>", tags = ["org:<org>"], cache = cache)]
async fn tagged(cache: &Cache, org: u64, id: u64) -> Profile {
    let _ = org;
    Profile::load(id)
}

#[cached(ttl = "1h", key = "sliding:<id>", sliding = true, cache = cache)]
async fn sliding(cache: &Cache, id: u64) -> Profile {
    Profile::load(id)
}

/// Its key names the function by its path: `hit_allocations::default_key(1)`.
#[cached(ttl = "1h", cache = cache)]
async fn default_key(cache: &Cache, id: u64) -> Profile {
    Profile::load(id)
}

const ID: u64 = 1;
const ORG: u64 = 7;

/// Allocations per hit of each cached function on `cache`, in the order plain, tagged, sliding,
/// default key; every counted call is checked to be a hit.
async fn cached_cases(cache: &Cache) -> [f64; 4] {
    let expected = Profile::load(ID);
    assert_eq!(plain(cache, ID).await, expected);
    assert_eq!(tagged(cache, ORG, ID).await, expected);
    assert_eq!(sliding(cache, ID).await, expected);
    assert_eq!(default_key(cache, ID).await, expected);
    let loads = cache.stats().loads;
    let hits = cache.stats().hits;
    let counts = [
        per_call(|| plain(cache, ID)).await,
        per_call(|| tagged(cache, ORG, ID)).await,
        per_call(|| sliding(cache, ID)).await,
        per_call(|| default_key(cache, ID)).await,
    ];
    let stats = cache.stats();
    assert_eq!(stats.loads, loads, "a measured call loaded: {stats:?}");
    assert_eq!(
        stats.hits - hits,
        8 * u64::from(HITS),
        "every call hit: {stats:?}"
    );
    counts
}

/// Allocations per raw read plus decode, in the order of [`cached_cases`]: `GET`; `GET` of the
/// value and of an epoch, pipelined; `GETEX` with a ttl.
async fn raw_cases(connection: &mut ConnectionManager) -> [f64; 3] {
    let json = serde_json::to_vec(&Profile::load(ID)).unwrap();
    let () = redis::cmd("SET")
        .arg("raw:profile")
        .arg(&json)
        .query_async(connection)
        .await
        .unwrap();
    let () = redis::cmd("SET")
        .arg("raw:epoch")
        .arg("12345678901234567890")
        .query_async(connection)
        .await
        .unwrap();
    let get = per_call(|| {
        let mut connection = connection.clone();
        async move {
            let bytes: Vec<u8> = redis::cmd("GET")
                .arg("raw:profile")
                .query_async(&mut connection)
                .await
                .unwrap();
            serde_json::from_slice::<Profile>(&bytes).unwrap()
        }
    })
    .await;
    let pipelined = per_call(|| {
        let mut connection = connection.clone();
        async move {
            let (bytes, epoch): (Vec<u8>, Option<Vec<u8>>) = redis::pipe()
                .cmd("GET")
                .arg("raw:profile")
                .cmd("GET")
                .arg("raw:epoch")
                .query_async(&mut connection)
                .await
                .unwrap();
            assert!(epoch.is_some());
            serde_json::from_slice::<Profile>(&bytes).unwrap()
        }
    })
    .await;
    let getex = per_call(|| {
        let mut connection = connection.clone();
        async move {
            let bytes: Vec<u8> = redis::cmd("GETEX")
                .arg("raw:profile")
                .arg("PX")
                .arg(TTL_MS)
                .query_async(&mut connection)
                .await
                .unwrap();
            serde_json::from_slice::<Profile>(&bytes).unwrap()
        }
    })
    .await;
    [get, pipelined, getex]
}

struct Row {
    case: &'static str,
    per_hit: f64,
    baseline: &'static str,
    baseline_per_hit: f64,
}

#[test]
fn a_hit_allocates_no_more_than_its_baseline() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = RedisServer::start();
    let json = serde_json::to_vec(&Profile::load(ID)).unwrap();
    let rows = runtime.block_on(async {
        let decode = per_call(|| async { serde_json::from_slice::<Profile>(&json).unwrap() }).await;
        let memory = cached_cases(&Cache::builder().memory()).await;
        let redis = cached_cases(&redis_cache(&server.url()).await).await;
        let raw = raw_cases(&mut raw_connection(&server.url()).await).await;
        let decoding = "decode alone";
        let cases = [
            ("memory plain", memory[0], decoding, decode),
            ("memory tagged", memory[1], decoding, decode),
            ("memory sliding", memory[2], decoding, decode),
            ("memory default key", memory[3], decoding, decode),
            ("redis plain", redis[0], "raw GET + decode", raw[0]),
            (
                "redis tagged",
                redis[1],
                "raw GET+GET pipe + decode",
                raw[1],
            ),
            ("redis sliding", redis[2], "raw GETEX + decode", raw[2]),
            ("redis default key", redis[3], "raw GET + decode", raw[0]),
        ];
        cases.map(|(case, per_hit, baseline, baseline_per_hit)| Row {
            case,
            per_hit,
            baseline,
            baseline_per_hit,
        })
    });
    println!(
        "{:<18} {:>9}   {:<26} {:>9}",
        "case", "allocs", "baseline", "allocs"
    );
    for row in &rows {
        println!(
            "{:<18} {:>9.2}   {:<26} {:>9.2}",
            row.case, row.per_hit, row.baseline, row.baseline_per_hit
        );
    }
    for row in &rows {
        assert!(
            row.per_hit <= row.baseline_per_hit + OVER_BASELINE,
            "{}: {:.2} allocations per hit, more than {} ({:.2}) + {OVER_BASELINE}",
            row.case,
            row.per_hit,
            row.baseline,
            row.baseline_per_hit,
        );
    }
}

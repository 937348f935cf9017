//! The near cache (L1) against a private `redis-server`: two `Cache` handles, each with its own
//! connections and tracking connection, stand in for two processes. Events are counted, not
//! timed, except where a bound on the propagation delay is the point.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachemacro_runtime::{cached, Cache, ErrorKind};
use cachemacro_tests::RedisServer;

/// The database: one version number per key; a load returns the current one.
#[derive(Default)]
struct Db {
    version: AtomicU64,
    loads: AtomicU64,
}

#[cached(ttl = 60, key = "item:<id>", cache = cache)]
async fn item(cache: &Cache, db: &Db, id: u64) -> u64 {
    db.loads.fetch_add(1, SeqCst);
    db.version.load(SeqCst)
}

#[cached(ttl = 60, key = "slow:<id>", cache = cache)]
async fn slow_item(cache: &Cache, db: &Db, id: u64) -> u64 {
    db.loads.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    db.version.load(SeqCst)
}

#[cached(ttl = 60, key = "member:<id>", tags = ["org:<org>"], cache = cache)]
async fn member(cache: &Cache, db: &Db, id: u64, org: u64) -> u64 {
    db.loads.fetch_add(1, SeqCst);
    db.version.load(SeqCst)
}

/// How long after an invalidation returned in one process the other may still serve the old
/// value in these tests: a generous bound on a loaded machine (the measured figure is in
/// `propagation_delay`).
const ALLOWED: Duration = Duration::from_millis(200);

async fn near_on(server: &RedisServer) -> Cache {
    Cache::builder()
        .key_prefix("near:")
        .local(10_000)
        .operation_timeout(Duration::from_secs(1))
        .connect_timeout(Duration::from_millis(200))
        .redis(&server.url())
        .await
        .expect("a cache")
}

/// Calls `item` on `cache` until the near cache answers, so that it holds the entry.
async fn warm(cache: &Cache, db: &Db, id: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let before = cache.stats().l1_hits;
        let value = item(cache, db, id).await;
        if cache.stats().l1_hits > before {
            return value;
        }
        assert!(Instant::now() < deadline, "the near cache never served");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_in_one_process_stops_the_other_serving_the_old_value() {
    let server = RedisServer::start();
    let (a, b) = (near_on(&server).await, near_on(&server).await);
    let db = Db::default();
    db.version.store(1, SeqCst);
    assert_eq!(warm(&b, &db, 7).await, 1);
    db.version.store(2, SeqCst);
    a.delete("item:7").await.expect("invalidated");
    let invalidated = Instant::now();
    let mut old_reads = 0;
    while item(&b, &db, 7).await == 1 {
        old_reads += 1;
        assert!(
            invalidated.elapsed() < ALLOWED,
            "still old after {:?}",
            invalidated.elapsed()
        );
        tokio::task::yield_now().await;
    }
    for _ in 0..1000 {
        assert_eq!(item(&b, &db, 7).await, 2, "never older after a newer one");
    }
    let stats = b.stats();
    assert!(stats.l1_hits > 900, "{stats:?}");
    assert!(stats.l1_invalidations >= 1, "{stats:?}");
    println!("old reads before the push: {old_reads}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_in_one_process_replaces_the_value_in_the_other() {
    let server = RedisServer::start();
    let (a, b) = (near_on(&server).await, near_on(&server).await);
    let db = Db::default();
    db.version.store(1, SeqCst);
    assert_eq!(warm(&b, &db, 3).await, 1);
    a.set("item:3", &5u64, Duration::from_secs(60))
        .await
        .expect("set");
    let written = Instant::now();
    while item(&b, &db, 3).await != 5 {
        assert!(written.elapsed() < ALLOWED);
        tokio::task::yield_now().await;
    }
    assert_eq!(warm(&b, &db, 3).await, 5, "served from L1 again, new");
}

/// Readers on B, a writer and invalidator on A: no read returns a version whose invalidation
/// returned more than [`ALLOWED`] before the read started, and no read in B returns a version
/// older than one B already returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_readers_never_read_stale_beyond_the_delay_nor_go_back() {
    let server = RedisServer::start();
    let (a, b) = (near_on(&server).await, near_on(&server).await);
    let db = Arc::new(Db::default());
    // When each version's predecessor was invalidated: `committed[v]` is when `v` became the
    // only version a read may return (after `ALLOWED`).
    let committed: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let observed = Arc::new(AtomicU64::new(0));
    let stale = Arc::new(AtomicU64::new(0));
    let went_back = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (b, db, committed, observed, stale, went_back, reads, stop) = (
            b.clone(),
            db.clone(),
            committed.clone(),
            observed.clone(),
            stale.clone(),
            went_back.clone(),
            reads.clone(),
            stop.clone(),
        );
        readers.push(tokio::spawn(async move {
            while !stop.load(SeqCst) {
                let started = Instant::now();
                let seen_before = observed.load(SeqCst);
                let must = committed
                    .lock()
                    .unwrap()
                    .iter()
                    .rev()
                    .find(|(_, at)| *at + ALLOWED <= started)
                    .map_or(0, |(version, _)| *version);
                let value = item(&b, &db, 1).await;
                reads.fetch_add(1, SeqCst);
                if value < must {
                    stale.fetch_add(1, SeqCst);
                }
                if value < seen_before {
                    went_back.fetch_add(1, SeqCst);
                }
                observed.fetch_max(value, SeqCst);
                // An L1 hit completes without yielding: let the writer and the tracking task run.
                tokio::task::yield_now().await;
            }
        }));
    }
    for version in 1..=300u64 {
        db.version.store(version, SeqCst);
        a.delete("item:1").await.expect("invalidated");
        committed.lock().unwrap().push((version, Instant::now()));
        if version % 3 == 0 {
            // A's own reads and fills race B's too.
            item(&a, &db, 1).await;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    stop.store(true, SeqCst);
    for reader in readers {
        reader.await.unwrap();
    }
    let stats = b.stats();
    println!("reads {}, {stats:?}", reads.load(SeqCst));
    assert_eq!(stale.load(SeqCst), 0, "stale reads beyond {ALLOWED:?}");
    assert_eq!(
        went_back.load(SeqCst),
        0,
        "reads older than one already seen"
    );
    assert!(stats.l1_hits > 0, "the near cache served: {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_redis_restarts_the_pre_outage_value_is_never_served() {
    let mut server = RedisServer::start();
    let b = near_on(&server).await;
    let db = Db::default();
    db.version.store(1, SeqCst);
    assert_eq!(warm(&b, &db, 9).await, 1);
    server.kill();
    db.version.store(2, SeqCst);
    // While Redis is down the near cache must stop serving: a call loads (version 2).
    let down = Instant::now();
    while item(&b, &db, 9).await == 1 {
        assert!(
            down.elapsed() < ALLOWED,
            "L1 still served during the outage"
        );
        tokio::task::yield_now().await;
    }
    server.restart();
    // Another client writes the new value after the restart.
    let writer = Cache::builder()
        .key_prefix("near:")
        .redis(&server.url())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while writer
        .set("item:9", &3u64, Duration::from_secs(60))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "Redis never came back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    db.version.store(3, SeqCst);
    let hits_before = b.stats().l1_hits;
    let mut old = 0;
    while b.stats().l1_hits < hits_before + 100 {
        assert!(
            Instant::now() < deadline,
            "the near cache never served again"
        );
        if item(&b, &db, 9).await == 1 {
            old += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(old, 0, "the pre-outage value was served");
    assert_eq!(item(&b, &db, 9).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_invalidated_in_one_process_drops_its_entries_in_the_other() {
    let server = RedisServer::start();
    let (a, b) = (near_on(&server).await, near_on(&server).await);
    let db = Db::default();
    db.version.store(1, SeqCst);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let before = b.stats().l1_hits;
        assert_eq!(member(&b, &db, 1, 4).await, 1);
        if b.stats().l1_hits > before {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    db.version.store(2, SeqCst);
    a.invalidate_tag("org:4").await.expect("invalidated");
    let invalidated = Instant::now();
    while member(&b, &db, 1, 4).await == 1 {
        assert!(invalidated.elapsed() < ALLOWED);
        tokio::task::yield_now().await;
    }
    for _ in 0..100 {
        assert_eq!(member(&b, &db, 1, 4).await, 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_callers_on_a_cold_key_make_one_load_then_hit_l1() {
    let server = RedisServer::start();
    let b = near_on(&server).await;
    let db = Arc::new(Db::default());
    db.version.store(1, SeqCst);
    let callers: Vec<_> = (0..200)
        .map(|_| {
            let (b, db) = (b.clone(), db.clone());
            tokio::spawn(async move { slow_item(&b, &db, 1).await })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), 1);
    }
    assert_eq!(db.loads.load(SeqCst), 1);
    assert!(b.stats().l1_misses >= 200, "each cold caller missed L1");
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.stats().l1_hits == 0 {
        slow_item(&b, &db, 1).await;
        assert!(Instant::now() < deadline);
    }
    let before = b.stats();
    for _ in 0..200 {
        assert_eq!(slow_item(&b, &db, 1).await, 1);
    }
    let after = b.stats();
    assert_eq!(after.l1_hits - before.l1_hits, 200, "{after:?}");
    assert_eq!(after.hits - before.hits, 200, "L1 hits are hits");
    assert_eq!(db.loads.load(SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_by_default_and_refused_on_a_cluster() {
    let server = RedisServer::start();
    let plain = Cache::builder()
        .key_prefix("near:")
        .redis(&server.url())
        .await
        .unwrap();
    let db = Db::default();
    for _ in 0..10 {
        item(&plain, &db, 1).await;
    }
    let stats = plain.stats();
    assert_eq!((stats.l1_hits, stats.l1_misses), (0, 0));
    let refused = Cache::builder()
        .local(100)
        .redis_cluster([server.url()])
        .await
        .expect_err("refused");
    assert_eq!(refused.kind(), ErrorKind::InvalidConfig);
}

/// How long after `delete` returns in A the entry leaves B's near cache: p50 and p99 over
/// `CACHEMACRO_NEAR_WRITES` writes (1,000 by default; the README's figure is over 10,000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propagation_delay() {
    let writes: usize = std::env::var("CACHEMACRO_NEAR_WRITES")
        .ok()
        .and_then(|writes| writes.parse().ok())
        .unwrap_or(1_000);
    let server = RedisServer::start();
    let (a, b) = (near_on(&server).await, near_on(&server).await);
    let db = Db::default();
    let mut delays = Vec::with_capacity(writes);
    for version in 1..=writes as u64 {
        db.version.store(version, SeqCst);
        // A fills Redis; B reads it into its near cache.
        item(&a, &db, 1).await;
        let mut seen = warm(&b, &db, 1).await;
        while seen != version {
            a.delete("item:1").await.unwrap();
            item(&a, &db, 1).await;
            seen = warm(&b, &db, 1).await;
        }
        assert_eq!(warm(&b, &db, 1).await, version);
        let before = b.stats().l1_invalidations;
        a.delete("item:1").await.unwrap();
        let returned = Instant::now();
        while b.stats().l1_invalidations == before {
            assert!(returned.elapsed() < Duration::from_secs(5), "no push");
            std::hint::spin_loop();
        }
        delays.push(returned.elapsed());
    }
    delays.sort();
    let at = |q: f64| delays[((delays.len() as f64 * q) as usize).min(delays.len() - 1)];
    println!(
        "propagation over {writes} writes: p50 {:?}, p99 {:?}, max {:?}",
        at(0.50),
        at(0.99),
        at(1.0)
    );
}

//! The cache on a real Redis Sentinel deployment (a primary, a replica, three sentinels:
//! `cachemacro_tests::RedisSentinel`): it finds the master through the sentinels, and follows a
//! failover under load without an error or a stale value reaching a caller.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachemacro_runtime::{cached, Cache, ErrorKind};
use cachemacro_tests::redis_sentinel::MASTER_NAME;
use cachemacro_tests::redis_server::connect;
use cachemacro_tests::RedisSentinel;

/// The database stand-in: a version per row and a count of reads.
#[derive(Default)]
struct Db {
    rows: Mutex<HashMap<String, u64>>,
    reads: AtomicUsize,
}

impl Db {
    fn write(&self, id: &str) -> u64 {
        let mut rows = self.rows.lock().unwrap();
        let version = rows.entry(id.to_owned()).or_insert(0);
        *version += 1;
        *version
    }

    fn read(&self, id: &str) -> u64 {
        self.reads.fetch_add(1, SeqCst);
        *self.rows.lock().unwrap().get(id).unwrap_or(&0)
    }

    fn reads(&self) -> usize {
        self.reads.load(SeqCst)
    }
}

#[derive(Debug, PartialEq)]
struct Unavailable;

/// Rows read under load; a write bumps a row's version in the `Db`.
const ROWS: u64 = 200;
/// Tags: each row carries `group:<id % GROUPS>`.
const GROUPS: u64 = 10;

#[cached(ttl = 60, key = "row:<id>", tags = ["group:<group>"], cache = cache)]
async fn row(cache: &Cache, db: &Db, id: &str, group: &str) -> Result<u64, Unavailable> {
    Ok(db.read(id))
}

async fn sentinel_cache(deployment: &RedisSentinel, master: &str) -> Cache {
    Cache::builder()
        .operation_timeout(Duration::from_millis(100))
        .connect_timeout(Duration::from_secs(2))
        .redis_sentinel(deployment.sentinel_urls(), master)
        .await
        .unwrap()
}

/// Whether `id` is served from the cache: a call after a filling call runs no load.
async fn hits(cache: &Cache, db: &Db, id: u64) -> bool {
    let (id, group) = (id.to_string(), (id % GROUPS).to_string());
    let _ = row(cache, db, &id, &group).await;
    let reads = db.reads();
    let _ = row(cache, db, &id, &group).await;
    db.reads() == reads
}

/// The cache finds the master through the sentinels: a miss, then hits, and the entry is on the
/// primary, in the database the master URL names. Malformed input is refused up front.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_works_through_the_sentinels() {
    let deployment = RedisSentinel::start();
    let cache = sentinel_cache(&deployment, &format!("redis://{MASTER_NAME}/3")).await;
    let db = Db::default();
    for _ in 0..3 {
        assert_eq!(row(&cache, &db, "1", "1").await, Ok(0));
    }
    assert_eq!(db.reads(), 1, "a miss, then hits");
    assert_eq!(cache.stats().errors, 0);

    let primary = deployment
        .master_port()
        .expect("a sentinel names the master");
    assert_eq!(primary, deployment.servers()[0].port());
    let mut raw = connect(&format!("redis://127.0.0.1:{primary}/3")).await;
    let stored: bool = redis::cmd("EXISTS")
        .arg("row:1")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(stored, "the entry is in the master's database 3");

    for (sentinels, master) in [(vec![], MASTER_NAME), (vec!["redis://[::1"], MASTER_NAME)] {
        let refused = Cache::redis_sentinel(sentinels, master)
            .await
            .expect_err("malformed");
        assert_eq!(refused.kind(), ErrorKind::InvalidUrl);
    }
}

/// What a load run saw.
#[derive(Debug, Default)]
struct Seen {
    /// Calls that returned.
    calls: AtomicU64,
    /// Calls that returned an error: none may.
    errors: AtomicU64,
    /// Calls that returned an older version than a write whose invalidation had returned before
    /// they started: none may.
    stale: AtomicU64,
    /// Writes whose invalidation returned `Ok`.
    acknowledged: AtomicU64,
    /// Writes whose invalidation failed (queued for replay, so not acknowledged).
    unacknowledged: AtomicU64,
}

/// Runs 16 readers and one writer until `stop` is set. A reader takes the highest version
/// acknowledged for a row before its call starts, and counts a call that returns less as stale.
/// The writer bumps a row's version in the database, then invalidates the row's key (even
/// writes) or its group's tag (odd writes); once that returns `Ok`, the version is acknowledged.
fn load(
    cache: &Cache,
    db: &Arc<Db>,
    stop: &Arc<AtomicBool>,
    seen: &Arc<Seen>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let acknowledged: Arc<Vec<AtomicU64>> =
        Arc::new((0..ROWS).map(|_| AtomicU64::new(0)).collect());
    let mut tasks = Vec::new();
    for reader in 0..16u64 {
        let (cache, db, stop, seen) = (
            cache.clone(),
            Arc::clone(db),
            Arc::clone(stop),
            Arc::clone(seen),
        );
        let acknowledged = Arc::clone(&acknowledged);
        tasks.push(tokio::spawn(async move {
            let mut next = reader;
            while !stop.load(SeqCst) {
                next = (next * 31 + 17) % ROWS;
                let floor = acknowledged[next as usize].load(SeqCst);
                let id = next.to_string();
                let group = (next % GROUPS).to_string();
                match row(&cache, &db, &id, &group).await {
                    Ok(version) if version < floor => {
                        seen.stale.fetch_add(1, SeqCst);
                    }
                    Ok(_) => {}
                    Err(Unavailable) => {
                        seen.errors.fetch_add(1, SeqCst);
                    }
                }
                seen.calls.fetch_add(1, SeqCst);
                // A call that skips the cache (breaker open) never suspends: let the rest run.
                tokio::task::yield_now().await;
            }
        }));
    }
    let (cache, db, stop, seen) = (
        cache.clone(),
        Arc::clone(db),
        Arc::clone(stop),
        Arc::clone(seen),
    );
    tasks.push(tokio::spawn(async move {
        let mut write = 0u64;
        while !stop.load(SeqCst) {
            write += 1;
            let row = (write * 7) % ROWS;
            let id = row.to_string();
            let group = (row % GROUPS).to_string();
            let version = db.write(&id);
            let invalidated = if write & 1 == 0 {
                invalidate_row(&cache, &db, &id, &group).await
            } else {
                cache.invalidate_tag(&format!("group:{group}")).await
            };
            match invalidated {
                Ok(()) => {
                    acknowledged[row as usize].fetch_max(version, SeqCst);
                    seen.acknowledged.fetch_add(1, SeqCst);
                }
                Err(_) => {
                    seen.unacknowledged.fetch_add(1, SeqCst);
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }));
    tasks
}

/// The primary is killed with SIGKILL under load; the sentinels promote the replica. No caller
/// sees an error or a value older than an acknowledged write, before, during or after; once the
/// replica is master, the cache reconnects to it through the sentinels and rows are cached
/// again, on the new master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_killed_under_load_fails_over_without_errors_or_stale_values() {
    let mut deployment = RedisSentinel::start();
    let cache = sentinel_cache(&deployment, MASTER_NAME).await;
    let db = Arc::new(Db::default());
    let (stop, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(Seen::default()));
    let tasks = load(&cache, &db, &stop, &seen);

    let primary = deployment
        .master_port()
        .expect("a sentinel names the master");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls_before = seen.calls.load(SeqCst);
    let hits_before = cache.stats().hits;
    assert!(hits_before > 0, "rows were cached before the kill");
    deployment.kill(primary);
    let killed = Instant::now();
    let (deployment, promoted) = tokio::task::spawn_blocking(move || {
        let promoted = deployment.wait_for_failover(primary, Duration::from_secs(30));
        (deployment, promoted)
    })
    .await
    .unwrap();
    let failed_over = killed.elapsed();
    assert_ne!(promoted, primary);
    assert_eq!(promoted, deployment.servers()[1].port(), "the replica");
    let calls_during = seen.calls.load(SeqCst) - calls_before;

    // Load goes on over the new master until it caches again, or for at most 10 s.
    let resumed = loop {
        let hits = cache.stats().hits;
        tokio::time::sleep(Duration::from_millis(20)).await;
        if cache.stats().hits > hits {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < failed_over + Duration::from_secs(10),
            "caching never resumed on the new master"
        );
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    // A row read twice now costs one load: it is cached on the new master.
    assert!(hits(&cache, &db, ROWS + 1).await, "a new row is cached");
    let mut raw = connect(&format!("redis://127.0.0.1:{promoted}/")).await;
    let on_new_master: bool = redis::cmd("EXISTS")
        .arg(format!("row:{}", ROWS + 1))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(on_new_master, "the entry is on the promoted replica");

    let stats = cache.stats();
    eprintln!(
        "failover in {failed_over:?}, hits again {resumed:?} after the kill; {calls_during} calls \
         during the failover; {seen:?}; {stats:?}"
    );
    assert!(calls_during > 0, "calls went on during the failover");
    assert_eq!(seen.errors.load(SeqCst), 0, "callers saw errors");
    assert_eq!(seen.stale.load(SeqCst), 0, "callers saw stale values");
    assert!(seen.acknowledged.load(SeqCst) > 0);
}

/// `SENTINEL FAILOVER` under load: the replica is promoted while the primary still runs, then
/// the primary is made a replica of it, so the cache's connection may outlive the failover and
/// meet `READONLY` replies, or be closed by the sentinel's `CLIENT KILL`; either way it
/// reconnects through the sentinels. No caller sees an error, and rows are cached on the new
/// master. Stale values are counted, not asserted: an invalidation that the old primary
/// acknowledged after the replica was promoted is lost when it becomes a replica, as Sentinel's
/// asynchronous replication allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_failover_under_load_is_followed_without_errors() {
    let deployment = RedisSentinel::start();
    let cache = sentinel_cache(&deployment, MASTER_NAME).await;
    let db = Arc::new(Db::default());
    let (stop, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(Seen::default()));
    let tasks = load(&cache, &db, &stop, &seen);

    let primary = deployment
        .master_port()
        .expect("a sentinel names the master");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let asked = Instant::now();
    let (deployment, promoted, failed_over) = tokio::task::spawn_blocking(move || {
        deployment.fail_over();
        let promoted = deployment.wait_for_failover(primary, Duration::from_secs(30));
        let failed_over = asked.elapsed();
        deployment.wait_for_demotion(primary, Duration::from_secs(30));
        (deployment, promoted, failed_over)
    })
    .await
    .unwrap();
    let demoted = asked.elapsed();
    assert_eq!(promoted, deployment.servers()[1].port(), "the replica");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let resumed = loop {
        if hits(&cache, &db, ROWS + 1).await {
            break asked.elapsed();
        }
        assert!(
            asked.elapsed() < demoted + Duration::from_secs(10),
            "caching never resumed on the new master"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut raw = connect(&format!("redis://127.0.0.1:{promoted}/")).await;
    let on_new_master: bool = redis::cmd("EXISTS")
        .arg(format!("row:{}", ROWS + 1))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(on_new_master, "the entry is on the promoted replica");
    let stats = cache.stats();
    eprintln!(
        "manual failover in {failed_over:?}, old primary demoted {demoted:?} and cached again \
         {resumed:?} after it was asked for; {seen:?}; {stats:?}"
    );
    assert_eq!(seen.errors.load(SeqCst), 0, "callers saw errors");
    assert!(seen.acknowledged.load(SeqCst) > 0);
}

//! The cache on a real Redis Sentinel deployment (a primary, a replica, three sentinels:
//! `cachemacro_tests::RedisSentinel`): it finds the master through the sentinels, and follows a
//! failover under load without an error or a stale value reaching a caller.

#[path = "common/failover.rs"]
mod failover;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachemacro_runtime::{Cache, ErrorKind};
use cachemacro_tests::redis_sentinel::MASTER_NAME;
use cachemacro_tests::redis_server::connect;
use cachemacro_tests::RedisSentinel;
use failover::{all_hit, load, row, Rows, Seen, ROWS};

async fn sentinel_cache(deployment: &RedisSentinel, master: &str) -> Cache {
    Cache::builder()
        .operation_timeout(Duration::from_millis(100))
        .connect_timeout(Duration::from_secs(2))
        .redis_sentinel(deployment.sentinel_urls(), master)
        .await
        .unwrap()
}

/// The cache finds the master through the sentinels: a miss, then hits, and the entry is on the
/// primary, in the database the master URL names. Malformed input is refused up front.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_works_through_the_sentinels() {
    let deployment = RedisSentinel::start();
    let cache = sentinel_cache(&deployment, &format!("redis://{MASTER_NAME}/3")).await;
    let db = Rows::default();
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

/// The primary is killed with SIGKILL under load; the sentinels promote the replica. No caller
/// sees an error or a value older than an acknowledged write, before, during or after; once the
/// replica is master, the cache reconnects to it through the sentinels and rows are cached
/// again, on the new master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_killed_under_load_fails_over_without_errors_or_stale_values() {
    let mut deployment = RedisSentinel::start();
    let cache = sentinel_cache(&deployment, MASTER_NAME).await;
    let db = Arc::new(Rows::default());
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
    assert!(
        all_hit(&cache, &db, &[ROWS + 1]).await,
        "a new row is cached"
    );
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
    let db = Arc::new(Rows::default());
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
        if all_hit(&cache, &db, &[ROWS + 1]).await {
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

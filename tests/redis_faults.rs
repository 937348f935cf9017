//! Failure is not an outage: Redis killed, restarted, frozen, or unreachable for invalidations.
//! Every test runs a bounded load against a private `redis-server` and counts what callers got.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachemacro_runtime::{cached, Cache, Error};
use cachemacro_tests::RedisServer;

#[cached(ttl = 60, key = "square:<n>", cache = cache)]
async fn square(cache: Cache, loads: Arc<AtomicU64>, n: u64) -> Result<u64, String> {
    loads.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(2)).await;
    Ok(n * n)
}

async fn cache_on(server: &RedisServer) -> Cache {
    Cache::builder()
        .operation_timeout(Duration::from_millis(100))
        .connect_timeout(Duration::from_millis(100))
        .redis(&server.url())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_load_and_restarted_costs_callers_nothing() {
    let mut server = RedisServer::start();
    let cache = cache_on(&server).await;
    let loads = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(4);
    let callers: Vec<_> = (0..64u64)
        .map(|task| {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            tokio::spawn(async move {
                let mut calls = 0u64;
                while Instant::now() < deadline {
                    let n = (task + calls) % 16;
                    // Any cache fault that reached a caller would show up here.
                    assert_eq!(
                        square(cache.clone(), Arc::clone(&loads), n).await,
                        Ok(n * n)
                    );
                    calls += 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                calls
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let errors_while_down = cache.stats().errors + cache.stats().breaker_skips;
    server.restart();
    let restarted = Instant::now();
    let hits_at_restart = cache.stats().hits;
    while cache.stats().hits == hits_at_restart {
        assert!(
            restarted.elapsed() < Duration::from_secs(3),
            "no hit after the restart"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let back_after = restarted.elapsed();

    let mut calls = 0;
    for caller in callers {
        calls += caller.await.expect("no caller saw an error or panicked");
    }
    let stats = cache.stats();
    assert!(errors_while_down > 0, "the outage was noticed: {stats:?}");
    assert!(
        stats.breaker_trips >= 1,
        "the breaker opened during the outage: {stats:?}"
    );
    assert!(
        !stats.breaker_open,
        "and closed once Redis was back: {stats:?}"
    );
    assert!(
        calls > 1000,
        "the load kept running through the outage: {calls} calls"
    );
    println!("hits again {back_after:?} after the restart; {stats:?}");
    assert!(
        back_after < Duration::from_secs(1),
        "hits resumed {back_after:?} after the restart"
    );
}

#[tokio::test]
async fn a_frozen_server_opens_the_breaker_and_callers_stop_waiting() {
    let server = RedisServer::start();
    // A cool-down longer than the test, so no probe adds a timeout while it counts.
    let cache = Cache::builder()
        .operation_timeout(Duration::from_millis(100))
        .circuit_breaker(5, Duration::from_secs(60))
        .redis(&server.url())
        .await
        .unwrap();
    let loads = Arc::new(AtomicU64::new(0));
    square(cache.clone(), Arc::clone(&loads), 1).await.unwrap();

    server.freeze();
    let before = cache.stats();
    let mut slowest = Duration::ZERO;
    for n in 0..10 {
        let started = Instant::now();
        assert_eq!(
            square(cache.clone(), Arc::clone(&loads), n).await,
            Ok(n * n)
        );
        slowest = slowest.max(started.elapsed());
    }
    let opened = cache.stats();
    assert!(
        opened.breaker_open,
        "five timeouts opened the breaker: {opened:?}"
    );
    assert_eq!(
        opened.errors - before.errors,
        5,
        "one timed-out read per call until it opened: {opened:?}"
    );

    for n in 0..50 {
        assert_eq!(
            square(cache.clone(), Arc::clone(&loads), n).await,
            Ok(n * n)
        );
    }
    let after = cache.stats();
    server.thaw();
    assert_eq!(
        after.errors, opened.errors,
        "no call waited for a timeout any more: {after:?}"
    );
    assert!(
        after.breaker_skips >= 50,
        "the reads were skipped: {after:?}"
    );
    // A bound, not a benchmark: each call paid at most one 100 ms timeout plus its 2 ms load.
    assert!(
        slowest < Duration::from_millis(800),
        "slowest call {slowest:?}"
    );
}

#[tokio::test]
async fn invalidations_that_fail_are_replayed_when_redis_answers() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .operation_timeout(Duration::from_millis(500))
        .without_circuit_breaker()
        .redis(&server.url())
        .await
        .unwrap();
    cache
        .set("doomed", &1u8, Duration::from_secs(60))
        .await
        .unwrap();

    server.freeze();
    assert!(cache.delete("doomed").await.unwrap_err().is_timeout());
    assert_eq!(cache.stats().invalidations_queued, 1);
    server.thaw();

    for _ in 0..100 {
        if cache.stats().invalidations_replayed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cache.stats().invalidations_replayed, 1);
    assert_eq!(
        cache.get::<u8>("doomed").await.unwrap(),
        None,
        "the replay removed it"
    );
}

#[tokio::test]
async fn a_full_retry_queue_drops_the_oldest_and_counts_it() {
    let mut server = RedisServer::start();
    let cache = cache_on(&server).await;
    server.kill();
    for key in 0..10_001 {
        assert!(cache.delete(&format!("k{key}")).await.is_err());
    }
    let stats = cache.stats();
    assert_eq!(stats.invalidations_queued, 10_001);
    assert_eq!(stats.invalidations_lost, 1);
}

/// An application error that can carry a cache error, for `on_cache_error = "fail"`.
#[derive(Debug, PartialEq)]
enum AppError {
    Cache(String),
}

impl From<Error> for AppError {
    fn from(error: Error) -> Self {
        AppError::Cache(format!("{:?}", error.kind()))
    }
}

#[cached(ttl = 60, key = "strict:<n>", cache = cache, on_cache_error = "fail")]
async fn strict(cache: &Cache, n: u64) -> Result<u64, AppError> {
    Ok(n)
}

#[cached(ttl = 60, key = "lenient:<n>", cache = cache)]
async fn lenient(cache: &Cache, n: u64) -> Result<u64, AppError> {
    Ok(n)
}

#[tokio::test]
async fn on_cache_error_fail_returns_the_fault_per_function_and_per_cache() {
    let mut server = RedisServer::start();
    // Generous: a timeout on a busy machine before the kill would be returned as an error.
    let cache = Cache::builder()
        .operation_timeout(Duration::from_secs(1))
        .redis(&server.url())
        .await
        .unwrap();
    assert_eq!(strict(&cache, 1).await, Ok(1));
    server.kill();
    assert!(
        matches!(strict(&cache, 2).await, Err(AppError::Cache(_))),
        "the fault is the function's error"
    );
    assert_eq!(
        lenient(&cache, 2).await,
        Ok(2),
        "other functions still fail open"
    );

    let failing_cache = Cache::builder()
        .operation_timeout(Duration::from_millis(100))
        .on_cache_error(cachemacro_runtime::OnCacheError::Fail)
        .redis(&server.url())
        .await
        .unwrap();
    assert!(
        lenient(&failing_cache, 3).await.is_err(),
        "the cache-wide setting applies"
    );
}

#[tokio::test]
async fn garbage_written_by_another_client_is_reloaded_and_overwritten() {
    let server = RedisServer::start();
    // Generous: this test counts loads, and a timed-out read on a busy machine would add one.
    let cache = Cache::builder()
        .operation_timeout(Duration::from_secs(2))
        .redis(&server.url())
        .await
        .unwrap();
    let loads = Arc::new(AtomicU64::new(0));
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let () = redis::cmd("SET")
        .arg("square:7")
        .arg(&b"\xff\x00not an entry"[..])
        .query_async(&mut raw)
        .await
        .unwrap();

    assert_eq!(square(cache.clone(), Arc::clone(&loads), 7).await, Ok(49));
    assert_eq!(square(cache.clone(), Arc::clone(&loads), 7).await, Ok(49));
    let stats = cache.stats();
    assert_eq!(
        (stats.decode_errors, stats.loads, stats.hits),
        (1, 1, 1),
        "{stats:?}"
    );
    let stored: Vec<u8> = redis::cmd("GET")
        .arg("square:7")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(stored.starts_with(b"cm"), "overwritten with a valid entry");
}

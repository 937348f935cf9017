//! Failure is not an outage: Redis killed, restarted, frozen, or unreachable for invalidations.
//! Every test runs a bounded load against a private `redis-server` and counts what callers got.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachemacro_runtime::backend::{Backend, RedisBackend};
use cachemacro_runtime::{cache_invalidate, cache_put, cached, Cache, Error, OnCacheError};
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
    // A killed server refuses at once, so no timeout is needed to notice the outage; a generous
    // one keeps a busy machine's slow replies from reopening the breaker after the restart.
    let cache = Cache::builder()
        .operation_timeout(Duration::from_secs(1))
        .connect_timeout(Duration::from_secs(1))
        .redis(&server.url())
        .await
        .unwrap();
    let loads = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // The callers run until told to stop, however long each phase takes on this machine.
    let give_up = Instant::now() + Duration::from_secs(30);
    let callers: Vec<_> = (0..64u64)
        .map(|task| {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            let (calls, stop) = (Arc::clone(&calls), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut made = 0u64;
                while !stop.load(SeqCst) && Instant::now() < give_up {
                    let n = (task + made) % 16;
                    // Any cache fault that reached a caller would show up here.
                    assert_eq!(
                        square(cache.clone(), Arc::clone(&loads), n).await,
                        Ok(n * n)
                    );
                    made += 1;
                    calls.fetch_add(1, SeqCst);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();

    // Killed mid-load: once the callers are hitting the cache.
    wait_until("the first hits", || cache.stats().hits > 0).await;
    server.kill();
    let calls_at_kill = calls.load(SeqCst);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let calls_while_down = calls.load(SeqCst) - calls_at_kill;
    let errors_while_down = cache.stats().errors + cache.stats().breaker_skips;
    server.restart();
    let restarted = Instant::now();
    let hits_at_restart = cache.stats().hits;
    wait_until("a hit after the restart", || {
        cache.stats().hits > hits_at_restart
    })
    .await;
    let back_after = restarted.elapsed();
    // The breaker's 250 ms cool-down and the reconnect backoff's 500 ms cap make this well under
    // a second on an idle machine; a backoff that grew without bound would take far longer.
    assert!(
        back_after < Duration::from_secs(3),
        "hits resumed {back_after:?} after the restart"
    );
    // The load goes on against the restarted server before it stops.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, SeqCst);

    for caller in callers {
        caller.await.expect("no caller saw an error or panicked");
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
    // Callers held up by the outage would have completed next to none in its second.
    assert!(
        calls_while_down >= 64,
        "the load kept running through the outage: {calls_while_down} calls while down"
    );
    println!("hits again {back_after:?} after the restart; {stats:?}");
}

/// Under the cache, the connection: while the server is gone every command fails at once,
/// however many there are, and one attempt at a time tries to reconnect; once the server is back,
/// the connection is remade in the background and the next command succeeds. During the outage a
/// listener that accepts and never answers holds the server's port, so that each attempt lasts
/// its whole connect timeout and the attempts open at once can be counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_fails_fast_and_is_remade_by_one_attempt_at_a_time() {
    let mut server = RedisServer::start();
    let connect_timeout = Duration::from_secs(1);
    // No breaker, so that every command reaches the connection; an operation timeout far beyond
    // the connect timeout, so that a command waiting for an attempt would show.
    let backend = RedisBackend::new(&server.url(), Duration::from_secs(10), connect_timeout)
        .unwrap()
        .with_circuit_breaker(None);
    assert!(backend.warm_up(Duration::from_secs(10)).await);
    let value: Arc<[u8]> = Arc::from(&b"value"[..]);
    backend
        .set("key", value, Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(
        backend.get("key").await.unwrap().as_deref(),
        Some(&b"value"[..])
    );

    server.kill();
    let silent = tokio::net::TcpListener::bind(("127.0.0.1", server.port()))
        .await
        .expect("the killed server's port");
    let (accepted, open, most_open) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let acceptor = {
        let (accepted, open, most_open) = (accepted.clone(), open.clone(), most_open.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = silent.accept().await {
                accepted.fetch_add(1, SeqCst);
                most_open.fetch_max(open.fetch_add(1, SeqCst) + 1, SeqCst);
                let open = Arc::clone(&open);
                tokio::spawn(async move {
                    use tokio::io::AsyncReadExt;
                    let mut buffer = [0; 256];
                    while matches!(socket.read(&mut buffer).await, Ok(read) if read > 0) {}
                    open.fetch_sub(1, SeqCst);
                });
            }
        })
    };

    let down_until = Instant::now() + 2 * connect_timeout;
    let (mut calls, mut slowest) = (0, Duration::ZERO);
    while Instant::now() < down_until {
        let wave: Vec<_> = (0..64)
            .map(|_| {
                let backend = backend.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    let result = backend.get("key").await;
                    (result, started.elapsed())
                })
            })
            .collect();
        for call in wave {
            let (result, took) = call.await.unwrap();
            let error = result.expect_err("the server is down");
            assert!(error.is_unavailable(), "{error:?}");
            slowest = slowest.max(took);
            calls += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Far below the connect timeout, which a command waiting for an attempt would have paid.
    assert!(
        slowest < connect_timeout / 2,
        "a command waited {slowest:?} for a server that was down"
    );
    assert!(
        accepted.load(SeqCst) >= 1,
        "no attempt to reconnect reached the port"
    );
    assert_eq!(
        most_open.load(SeqCst),
        1,
        "attempts to reconnect ran at once ({} in all, for {calls} failed commands)",
        accepted.load(SeqCst)
    );

    acceptor.abort();
    let _ = acceptor.await;
    server.restart();
    // Nobody calls until the connection is back: the reconnect does not need callers.
    let admin = server.connection().await;
    let clients = || {
        let mut admin = admin.clone();
        async move {
            let list: String = redis::cmd("CLIENT")
                .arg("LIST")
                .query_async(&mut admin)
                .await
                .unwrap();
            list.lines().count()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while clients().await < 2 {
        assert!(Instant::now() < deadline, "no reconnect within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Connected: the handshake that follows takes one round trip.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        backend.get("key").await.expect("reconnected"),
        None,
        "the restarted server is empty"
    );
    for _ in 0..10 {
        backend.get("key").await.expect("reconnected");
    }
    assert_eq!(
        clients().await,
        2,
        "one connection of the backend's, and ours"
    );
}

/// Polls `condition` until it holds; the deadline is far beyond what a busy machine needs.
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "no {what} within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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
    // On a busy machine a warm-up command may itself time out, and a failure left counted
    // would open the breaker one call early below: warm up until a call ran without one.
    let mut clean = false;
    for _ in 0..50 {
        let errors = cache.stats().errors;
        square(cache.clone(), Arc::clone(&loads), 1).await.unwrap();
        if cache.stats().errors == errors && !cache.stats().breaker_open {
            clean = true;
            break;
        }
    }
    assert!(clean, "no call without a timeout: {:?}", cache.stats());

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
    // A bound, not a benchmark: each call paid at most one 100 ms timeout plus its 2 ms load,
    // and a call that hung on the frozen server would never return.
    assert!(slowest < Duration::from_secs(2), "slowest call {slowest:?}");
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
    // Written and checked without the cache's 500 ms timeout, which a busy machine could exceed
    // outside the freeze: only the delete has to go through the cache.
    let mut raw = server.connection().await;
    let () = redis::cmd("SET")
        .arg("doomed")
        .arg(1)
        .query_async(&mut raw)
        .await
        .unwrap();

    server.freeze();
    assert!(cache.delete("doomed").await.unwrap_err().is_timeout());
    assert_eq!(cache.stats().invalidations_queued, 1);
    server.thaw();

    let deadline = Instant::now() + Duration::from_secs(10);
    while cache.stats().invalidations_replayed == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cache.stats().invalidations_replayed, 1);
    let exists: bool = redis::cmd("EXISTS")
        .arg("doomed")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(!exists, "the replay removed it");
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

#[cached(ttl = 60, key = "forgiving:<n>", cache = cache, on_cache_error = "ignore")]
async fn forgiving(cache: &Cache, n: u64) -> Result<u64, AppError> {
    Ok(n)
}

#[cache_put(key = "strict:<n>", cache = cache, on_cache_error = "fail")]
async fn put_strict(cache: &Cache, n: u64) -> Result<u64, AppError> {
    Ok(n)
}

#[cache_put(key = "lenient:<n>", cache = cache)]
async fn put_lenient(cache: &Cache, n: u64) -> Result<u64, AppError> {
    Ok(n)
}

#[cache_put(key = "forgiving:<n>", cache = cache, on_cache_error = "ignore")]
async fn put_forgiving(cache: &Cache, n: u64) -> Result<u64, AppError> {
    Ok(n)
}

#[cache_invalidate(keys = ["strict:<n>"], cache = cache, on_cache_error = "fail")]
async fn drop_strict(cache: &Cache, n: u64) -> Result<u64, AppError> {
    Ok(n)
}

#[cache_invalidate(keys = ["lenient:<n>"], cache = cache)]
async fn drop_lenient(cache: &Cache, n: u64) -> Result<u64, AppError> {
    Ok(n)
}

#[cache_invalidate(keys = ["forgiving:<n>"], cache = cache, on_cache_error = "ignore")]
async fn drop_forgiving(cache: &Cache, n: u64) -> Result<u64, AppError> {
    Ok(n)
}

/// A return type that cannot carry a cache error.
#[cache_put(key = "plain:<n>", cache = cache)]
async fn put_plain(cache: &Cache, n: u64) -> Option<u64> {
    Some(n)
}

#[tokio::test]
async fn on_cache_error_applies_to_every_write_path_and_ignore_overrides_the_cache() {
    let mut server = RedisServer::start();
    let url = server.url();
    server.kill();
    let timeout = Duration::from_millis(100);
    let lenient_cache = Cache::builder()
        .operation_timeout(timeout)
        .connect_timeout(timeout)
        .redis(&url)
        .await
        .unwrap();
    let failing_cache = Cache::builder()
        .operation_timeout(timeout)
        .connect_timeout(timeout)
        .on_cache_error(OnCacheError::Fail)
        .redis(&url)
        .await
        .unwrap();

    // Per function, on a cache that ignores faults.
    let cache = &lenient_cache;
    assert!(matches!(
        put_strict(cache, 1).await,
        Err(AppError::Cache(_))
    ));
    assert!(matches!(
        drop_strict(cache, 1).await,
        Err(AppError::Cache(_))
    ));
    assert_eq!(put_lenient(cache, 1).await, Ok(1));
    assert_eq!(drop_lenient(cache, 1).await, Ok(1));

    // Per cache, unless the function says `ignore`, and only where the error fits.
    let cache = &failing_cache;
    assert!(matches!(
        put_lenient(cache, 2).await,
        Err(AppError::Cache(_))
    ));
    assert!(matches!(
        drop_lenient(cache, 2).await,
        Err(AppError::Cache(_))
    ));
    assert_eq!(forgiving(cache, 2).await, Ok(2));
    assert_eq!(put_forgiving(cache, 2).await, Ok(2));
    assert_eq!(drop_forgiving(cache, 2).await, Ok(2));
    assert_eq!(put_plain(cache, 2).await, Some(2));
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
    let mut raw = server.connection().await;
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

//! Redis absent, killed, restarted, frozen or misaddressed: a `#[cached]` fn keeps answering with
//! its loader's result, and the cache is used again once the server is back.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use cachemacro_runtime::{cached, Cache, ErrorKind};
use cachemacro_tests::redis_server::free_port;
use cachemacro_tests::RedisServer;

#[cached(ttl = 60, key = "square:<n>", cache = cache)]
async fn square(cache: &Cache, loads: &AtomicUsize, n: u64) -> Result<u64, String> {
    loads.fetch_add(1, SeqCst);
    Ok(n * n)
}

async fn cache_for(url: &str) -> Cache {
    Cache::builder()
        .operation_timeout(Duration::from_millis(200))
        .connect_timeout(Duration::from_millis(200))
        .redis(url)
        .await
        .expect("a well-formed URL is accepted whether or not a server answers")
}

/// Calls `square(3)` until one call is a hit, at most `attempts` times.
async fn until_a_hit(cache: &Cache, loads: &AtomicUsize, attempts: usize) -> bool {
    for _ in 0..attempts {
        let hits = cache.stats().hits;
        assert_eq!(square(cache, loads, 3).await, Ok(9));
        if cache.stats().hits > hits {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_server_absent_at_start_is_used_once_it_appears() {
    let port = free_port();
    let cache = cache_for(&format!("redis://127.0.0.1:{port}/")).await;
    let loads = AtomicUsize::new(0);
    assert_eq!(square(&cache, &loads, 3).await, Ok(9));
    assert_eq!(square(&cache, &loads, 3).await, Ok(9));
    assert_eq!(loads.load(SeqCst), 2, "without a server every call loads");
    assert!(
        cache.stats().errors >= 2,
        "the failed cache operations are counted"
    );

    let _server = RedisServer::start_on(port);
    assert!(
        until_a_hit(&cache, &loads, 100).await,
        "the cache never came back"
    );
}

#[tokio::test]
async fn a_killed_and_restarted_server_costs_no_errors() {
    let mut server = RedisServer::start();
    let cache = cache_for(&server.url()).await;
    let loads = AtomicUsize::new(0);
    assert!(until_a_hit(&cache, &loads, 100).await);

    server.kill();
    for _ in 0..20 {
        assert_eq!(square(&cache, &loads, 3).await, Ok(9));
    }
    let errors_while_down = cache.stats().errors;
    assert!(errors_while_down > 0);

    server.restart();
    assert!(
        until_a_hit(&cache, &loads, 100).await,
        "the cache never came back"
    );
}

#[tokio::test]
async fn a_frozen_server_costs_at_most_the_operation_timeout() {
    let server = RedisServer::start();
    let cache = cache_for(&server.url()).await;
    let loads = AtomicUsize::new(0);
    assert!(until_a_hit(&cache, &loads, 100).await);

    server.freeze();
    let before = cache.stats();
    let started = Instant::now();
    assert_eq!(square(&cache, &loads, 4).await, Ok(16));
    let elapsed = started.elapsed();
    let after = cache.stats();
    server.thaw();

    assert_eq!(after.loads, before.loads + 1, "the loader answered");
    assert_eq!(
        after.errors,
        before.errors + 1,
        "only the read was tried: once it timed out, the call spent no more cache operations"
    );
    // A bound, not a benchmark: one timeout of 200 ms, far below a hung call.
    assert!(
        elapsed < Duration::from_secs(3),
        "the call waited {elapsed:?}"
    );
}

#[tokio::test]
async fn only_a_malformed_url_is_an_error_and_it_hides_the_password() {
    let error = Cache::redis("redis://:hunter2@127.0.0.1:notaport/")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidUrl);
    assert!(!error.to_string().contains("hunter2"));
    assert!(!format!("{error:?}").contains("hunter2"));

    let error = Cache::redis("http://example").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidUrl);
}

#[tokio::test]
async fn a_password_in_the_url_works_and_stays_out_of_debug_output() {
    let server = RedisServer::start_with_password("s3cret-pass");
    let cache = cache_for(&server.url()).await;
    let loads = AtomicUsize::new(0);
    assert!(until_a_hit(&cache, &loads, 100).await);
    assert!(!format!("{cache:?}").contains("s3cret-pass"));
}

//! TTL profiles: looked up at run time, set by the builder, overridden by the environment.
//! One test in its own binary, since it changes the process environment.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use cachemacro_runtime::{cached, Cache};
use cachemacro_tests::RedisServer;

#[cached(ttl = 3600, ttl_profile = "product_price", key = "price:<id>", cache = cache)]
async fn price(cache: &Cache, loads: &AtomicUsize, id: u64) -> u64 {
    loads.fetch_add(1, SeqCst);
    id * 100
}

#[cached(ttl = "300ms", ttl_profile = "unconfigured", key = "stock:<id>", cache = cache)]
async fn stock(cache: &Cache, loads: &AtomicUsize, id: u64) -> u64 {
    loads.fetch_add(1, SeqCst);
    id
}

/// Calls `price(1)`, waits 400 ms, calls it again: how many loads that took.
async fn loads_across_400ms(cache: &Cache) -> usize {
    let loads = AtomicUsize::new(0);
    price(cache, &loads, 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    price(cache, &loads, 1).await;
    loads.load(SeqCst)
}

#[tokio::test]
async fn profiles_come_from_the_environment_then_the_builder_then_the_function() {
    std::env::remove_var("CACHEMACRO_TTL_PRODUCT_PRICE");
    assert_eq!(
        loads_across_400ms(&Cache::memory()).await,
        1,
        "the function's 1 h ttl"
    );

    let from_builder = Cache::builder()
        .ttl_profile("product_price", Duration::from_millis(200))
        .memory();
    assert_eq!(
        loads_across_400ms(&from_builder).await,
        2,
        "the builder's 200 ms"
    );

    std::env::set_var("CACHEMACRO_TTL_PRODUCT_PRICE", "200ms");
    let server = RedisServer::start();
    for cache in [
        Cache::builder()
            .ttl_profile("product_price", Duration::from_secs(3600))
            .memory(),
        Cache::builder()
            .ttl_profile("product_price", Duration::from_secs(3600))
            .operation_timeout(Duration::from_secs(2))
            .redis(&server.url())
            .await
            .unwrap(),
    ] {
        assert_eq!(
            loads_across_400ms(&cache).await,
            2,
            "the environment overrides: {cache:?}"
        );

        let loads = AtomicUsize::new(0);
        stock(&cache, &loads, 1).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        stock(&cache, &loads, 1).await;
        assert_eq!(
            loads.load(SeqCst),
            2,
            "an unknown profile falls back to the fn's ttl"
        );
    }
    std::env::remove_var("CACHEMACRO_TTL_PRODUCT_PRICE");
}

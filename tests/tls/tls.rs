//! `rediss://`: the cache over TLS (feature `tls`), against a TLS-only `redis-server`.
//!
//! Its own package (see Cargo.toml beside it): `cargo test -p cachemacro-tls-tests`, or any
//! `cargo test --workspace`.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use cachemacro_runtime::{cached, Cache};
use cachemacro_tests::RedisServer;

#[cached(ttl = 60, key = "secure:<id>", cache = cache)]
async fn secure_read(cache: &Cache, loads: &AtomicUsize, id: u64) -> u64 {
    loads.fetch_add(1, SeqCst);
    id
}

#[tokio::test]
async fn a_tls_server_caches_like_any_other() {
    let server = RedisServer::start_tls();
    // Generous: this test counts hits, and a timed-out read on a busy machine would be a miss.
    let cache = Cache::builder()
        .operation_timeout(std::time::Duration::from_secs(2))
        .redis(&server.url())
        .await
        .unwrap();
    let loads = AtomicUsize::new(0);
    assert_eq!(secure_read(&cache, &loads, 5).await, 5);
    assert_eq!(secure_read(&cache, &loads, 5).await, 5);
    let stats = cache.stats();
    assert_eq!(
        (loads.load(SeqCst), stats.hits, stats.errors),
        (1, 1, 0),
        "{stats:?}"
    );

    // The same server through a plain connection: the handshake fails, the caller is served.
    let plain = Cache::redis(
        &server
            .url()
            .replace("rediss://", "redis://")
            .replace("#insecure", ""),
    )
    .await
    .unwrap();
    assert_eq!(secure_read(&plain, &loads, 6).await, 6);
    assert!(plain.stats().errors > 0);
}

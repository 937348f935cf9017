//! `Cache::from_env` picks Redis when `REDIS_URL` is set and memory otherwise.
//! One test in its own binary, since it changes the process environment.

use std::time::Duration;

use cachemacro_runtime::Cache;
use cachemacro_tests::RedisServer;

#[tokio::test]
async fn redis_url_selects_the_backend() {
    std::env::remove_var("REDIS_URL");
    let memory = Cache::from_env().await.unwrap();
    assert!(format!("{memory:?}").contains("memory"));

    let server = RedisServer::start();
    std::env::set_var("REDIS_URL", server.url());
    // `Cache::from_env` is this with the defaults, whose 100 ms operation timeout a busy machine
    // can exceed on the write below.
    let redis = Cache::builder()
        .operation_timeout(Duration::from_secs(2))
        .from_env()
        .await
        .unwrap();
    assert!(format!("{redis:?}").contains("redis"));
    redis
        .set("seen", &1u8, Duration::from_secs(60))
        .await
        .unwrap();

    let mut raw = server.connection().await;
    let stored: Option<Vec<u8>> = redis::cmd("GET")
        .arg("seen")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(stored.is_some(), "the entry landed in the real server");
}

//! `Cache::from_env` picks a Redis Cluster when `REDIS_CLUSTER_NODES` is set, Redis Sentinel
//! when `REDIS_SENTINELS` and `REDIS_SENTINEL_MASTER` are, Redis when `REDIS_URL` is, and memory
//! otherwise.
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

    cluster_nodes_select_a_cluster().await;
    sentinel_variables_go_together().await;
}

/// `REDIS_CLUSTER_NODES` (node URLs separated by commas) selects a cluster; with `REDIS_URL` set
/// too, which one was meant cannot be told, and it is an error. Runs after the test above, in
/// the same test, since both change the process environment.
async fn cluster_nodes_select_a_cluster() {
    let cluster = cachemacro_tests::RedisCluster::start();
    std::env::set_var("REDIS_CLUSTER_NODES", cluster.urls().join(","));
    let both = Cache::from_env().await.expect_err("both variables set");
    assert_eq!(both.kind(), cachemacro_runtime::ErrorKind::InvalidUrl);

    std::env::remove_var("REDIS_URL");
    let cache = Cache::builder()
        .operation_timeout(Duration::from_secs(2))
        .from_env()
        .await
        .unwrap();
    // Keys of many slots, so of every master: each write lands, each read finds it.
    for id in 0..32u8 {
        let key = format!("seen:{id}");
        cache.set(&key, &id, Duration::from_secs(60)).await.unwrap();
        assert_eq!(cache.get::<u8>(&key).await.unwrap(), Some(id));
    }
    std::env::remove_var("REDIS_CLUSTER_NODES");
}

/// `REDIS_SENTINELS` needs `REDIS_SENTINEL_MASTER` and the other way round, and neither goes
/// with `REDIS_URL` or `REDIS_CLUSTER_NODES`. (`tests/sentinel.rs` checks a cache on sentinels.)
async fn sentinel_variables_go_together() {
    let refused = || async {
        let error = Cache::from_env().await.expect_err("refused");
        assert_eq!(error.kind(), cachemacro_runtime::ErrorKind::InvalidUrl);
    };
    std::env::set_var("REDIS_SENTINELS", "redis://127.0.0.1:1");
    refused().await;
    std::env::remove_var("REDIS_SENTINELS");
    std::env::set_var("REDIS_SENTINEL_MASTER", "mymaster");
    refused().await;
    std::env::set_var("REDIS_SENTINELS", "redis://127.0.0.1:1");
    for other in ["REDIS_URL", "REDIS_CLUSTER_NODES"] {
        std::env::set_var(other, "redis://127.0.0.1:1");
        refused().await;
        std::env::remove_var(other);
    }
    std::env::remove_var("REDIS_SENTINELS");
    std::env::remove_var("REDIS_SENTINEL_MASTER");
}

//! Per-function statistics and metrics: each cached function's calls are counted under its
//! name (`name = "..."`, or else its path), on `Cache::function_stats` and through the `metrics`
//! facade, read here as a Prometheus scrape renders them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::OnceLock;
use std::time::Duration;

use cachemacro_runtime::{cached, metric_names, Cache, FunctionStats};
use cachemacro_tests::redis_server::{free_port, RedisServer};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// This test's module path, which default names start with.
const MODULE: &str = module_path!();

/// The process's recorder, installed before any cache call of a test that reads it: a metric
/// handle taken before a recorder exists stays a no-op.
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).expect("the only recorder");
        handle
    })
}

/// The value of the sample of `metric` whose labels include every one of `labels`, in a scrape.
fn sample(scrape: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let rest = line.strip_prefix(metric)?;
        let (labels_text, value) = rest.strip_prefix('{')?.split_once("} ")?;
        labels
            .iter()
            .all(|(name, value)| labels_text.contains(&format!("{name}=\"{value}\"")))
            .then(|| value.trim().parse().ok())?
    })
}

static PLAIN_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = cache, key = "plain:<id>")]
async fn plain(cache: &Cache, id: u64) -> u64 {
    PLAIN_LOADS.fetch_add(1, SeqCst);
    id
}

#[cached(cache = cache, key = "named:<id>", name = "users.get")]
async fn named(cache: &Cache, id: u64) -> u64 {
    id * 2
}

fn stats_of(cache: &Cache, function: &str) -> FunctionStats {
    let all: HashMap<String, FunctionStats> = cache.function_stats();
    *all.get(function)
        .unwrap_or_else(|| panic!("no stats for {function}: {:?}", all.keys()))
}

#[tokio::test]
async fn each_function_is_counted_under_its_name_or_its_path() {
    let cache = Cache::memory();
    assert!(cache.function_stats().is_empty(), "none called yet");
    for _ in 0..3 {
        plain(&cache, 1).await;
    }
    named(&cache, 1).await;
    named(&cache, 2).await;

    let plain_stats = stats_of(&cache, &format!("{MODULE}::plain"));
    assert_eq!((plain_stats.hits, plain_stats.misses), (2, 1));
    assert_eq!(plain_stats.loads, 1);
    let named_stats = stats_of(&cache, "users.get");
    assert_eq!((named_stats.hits, named_stats.misses), (0, 2));
    assert_eq!(named_stats.loads, 2);
    assert_eq!(cache.function_stats().len(), 2);

    // The cache's own counters hold them all.
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (2, 3));
}

#[tokio::test]
async fn a_function_used_on_two_caches_is_counted_on_each() {
    let first = Cache::memory();
    let second = Cache::memory();
    named(&first, 7).await;
    named(&first, 7).await;
    named(&second, 7).await;
    let on_first = stats_of(&first, "users.get");
    let on_second = stats_of(&second, "users.get");
    assert_eq!((on_first.hits, on_first.misses), (1, 1));
    assert_eq!((on_second.hits, on_second.misses), (0, 1));
}

struct Repo {
    cache: Cache,
}

impl Repo {
    #[cached(cache = self.cache, key = "repo:<id>")]
    async fn get(&self, id: u64) -> u64 {
        id + 1
    }
}

#[tokio::test]
async fn a_method_is_named_by_its_type() {
    let repo = Repo {
        cache: Cache::memory(),
    };
    repo.get(1).await;
    let stats = stats_of(&repo.cache, &format!("{MODULE}::Repo::get"));
    assert_eq!(stats.misses, 1);
}

#[cached(cache = cache, name = "orders.total", version = 2)]
async fn total(cache: &Cache, order: u64) -> u64 {
    order * 10
}

#[tokio::test]
async fn a_name_is_the_default_keys_identity() {
    let cache = Cache::memory();
    total(&cache, 4).await;
    assert_eq!(
        cache.get::<u64>("orders.total(4)@v2").await.unwrap(),
        Some(40),
        "the name stands for the function's path"
    );
    invalidate_total(&cache, 4).await.unwrap();
    assert_eq!(cache.get::<u64>("orders.total(4)@v2").await.unwrap(), None);
}

#[cached(cache = cache, key = "exported:<id>", name = "exported")]
async fn exported(cache: &Cache, id: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(2)).await;
    id
}

#[tokio::test]
async fn metrics_are_exported_by_function_and_cache() {
    let scrape = recorder();
    let cache = Cache::builder().name("metrics-test").memory();
    for _ in 0..3 {
        exported(&cache, 1).await;
    }
    exported(&cache, 2).await;
    let rendered = scrape.render();
    let labels = [("fn", "exported"), ("cache", "metrics-test")];
    assert_eq!(
        sample(&rendered, metric_names::HITS, &labels),
        Some(2.0),
        "{rendered}"
    );
    assert_eq!(sample(&rendered, metric_names::MISSES, &labels), Some(2.0));
    assert_eq!(sample(&rendered, metric_names::LOADS, &labels), Some(2.0));
    let load_count = format!("{}_count", metric_names::LOAD_SECONDS);
    assert_eq!(sample(&rendered, &load_count, &labels), Some(2.0));
    let load_sum = format!("{}_sum", metric_names::LOAD_SECONDS);
    let took = sample(&rendered, &load_sum, &labels).expect("load time recorded");
    assert!(took >= 0.004, "two loads of at least 2 ms each: {took}");
    assert!(
        !rendered.contains("exported:1"),
        "keys are never labels: {rendered}"
    );
}

#[cached(cache = cache, key = "unreachable:<id>", name = "unreachable")]
async fn unreachable(cache: &Cache, id: u64) -> u64 {
    id
}

#[tokio::test]
async fn failed_cache_operations_are_counted_by_kind() {
    let scrape = recorder();
    let port = free_port();
    let cache = Cache::builder()
        .name("errors-test")
        .without_circuit_breaker()
        .connect_timeout(Duration::from_millis(100))
        .redis(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap();
    assert_eq!(unreachable(&cache, 1).await, 1, "the caller never fails");
    assert_eq!(unreachable(&cache, 1).await, 1);
    let stats = stats_of(&cache, "unreachable");
    assert_eq!(stats.loads, 2, "no entry to hit");
    assert!(stats.errors >= 2, "each call's read failed: {stats:?}");
    let rendered = scrape.render();
    let errors = sample(
        &rendered,
        metric_names::ERRORS,
        &[
            ("fn", "unreachable"),
            ("cache", "errors-test"),
            ("kind", "connection"),
        ],
    );
    assert_eq!(errors, Some(stats.errors as f64), "{rendered}");
}

#[cached(cache = cache, key = "seen:<id>")]
async fn seen(cache: &Cache, id: u64) -> u64 {
    id
}

#[tokio::test]
async fn server_stats_are_redis_own_counters() {
    assert_eq!(Cache::memory().server_stats().await.unwrap(), None);

    let server = RedisServer::start();
    let cache = Cache::builder().redis(&server.url()).await.unwrap();
    let before = cache.server_stats().await.unwrap().expect("a Redis cache");
    assert!(!before.version.is_empty());
    assert!(before.connected_clients >= 1);
    seen(&cache, 1).await;
    seen(&cache, 1).await;
    let after = cache.server_stats().await.unwrap().unwrap();
    assert!(
        after.keyspace_hits > before.keyspace_hits,
        "the second call read its entry: {before:?} → {after:?}"
    );
    assert!(
        after.keyspace_misses > before.keyspace_misses,
        "the first did not"
    );
    assert!(after.keys.get("db0").copied().unwrap_or(0) >= 1);
    assert!(after.used_memory > 0);
}

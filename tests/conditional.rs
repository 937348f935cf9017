//! Conditional caching: `unless` keeps some results out of the cache, `condition` sends some
//! calls past it. Loads are counted; entries are read back by key.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use cachemacro_runtime::{cached, Cache};
use cachemacro_tests::redis_server::RedisServer;

/// A function's loads, one counter per test.
#[derive(Default)]
struct Loads(AtomicUsize);

impl Loads {
    fn add(&self) {
        self.0.fetch_add(1, SeqCst);
    }

    fn count(&self) -> usize {
        self.0.load(SeqCst)
    }
}

#[cached(cache = cache, key = "items:<shelf>", unless = |items| items.is_empty())]
async fn items(cache: &Cache, loads: &Loads, shelf: u64) -> Vec<u64> {
    loads.add();
    (0..shelf).collect()
}

async fn unless_keeps_matching_values_out(cache: &Cache) {
    let loads = Loads::default();
    assert!(items(cache, &loads, 0).await.is_empty());
    assert!(items(cache, &loads, 0).await.is_empty());
    assert_eq!(loads.count(), 2, "an empty list is loaded each time");
    assert_eq!(cache.get::<Vec<u64>>("items:0").await.unwrap(), None);

    assert_eq!(items(cache, &loads, 3).await, [0, 1, 2]);
    assert_eq!(items(cache, &loads, 3).await, [0, 1, 2]);
    assert_eq!(loads.count(), 3, "a full one is cached");
    assert_eq!(
        cache.get::<Vec<u64>>("items:3").await.unwrap(),
        Some(vec![0, 1, 2])
    );
}

#[tokio::test]
async fn unless_keeps_matching_values_out_of_the_embedded_cache() {
    unless_keeps_matching_values_out(&Cache::memory()).await;
}

#[tokio::test]
async fn unless_keeps_matching_values_out_of_redis() {
    let server = RedisServer::start();
    let cache = Cache::builder().redis(&server.url()).await.unwrap();
    unless_keeps_matching_values_out(&cache).await;
}

#[cached(cache = cache, key = "price:<id>", unless = is_free)]
async fn price(cache: &Cache, loads: &Loads, id: u64) -> Result<u64, String> {
    loads.add();
    match id {
        0 => Err("no such product".to_owned()),
        id => Ok(id % 2 * 100),
    }
}

fn is_free(price: &u64) -> bool {
    *price == 0
}

#[tokio::test]
async fn unless_on_a_result_is_asked_about_ok_values() {
    let cache = Cache::memory();
    let loads = Loads::default();
    assert_eq!(price(&cache, &loads, 1).await, Ok(100));
    assert_eq!(price(&cache, &loads, 1).await, Ok(100));
    assert_eq!(loads.count(), 1);
    assert_eq!(price(&cache, &loads, 2).await, Ok(0));
    assert_eq!(price(&cache, &loads, 2).await, Ok(0));
    assert_eq!(loads.count(), 3, "a free price is not cached");
    assert!(price(&cache, &loads, 0).await.is_err());
    assert!(price(&cache, &loads, 0).await.is_err());
    assert_eq!(loads.count(), 5, "errors never are");
}

#[cached(cache = cache, key = "nick:<id>", negative_ttl = "1m", unless = |nick: &String| nick.starts_with("tmp"))]
async fn nick(cache: &Cache, loads: &Loads, id: u64) -> Option<String> {
    loads.add();
    match id {
        0 => None,
        1 => Some("ada".to_owned()),
        _ => Some("tmp-guest".to_owned()),
    }
}

#[tokio::test]
async fn unless_on_an_option_leaves_none_to_the_negative_ttl() {
    let cache = Cache::memory();
    let loads = Loads::default();
    for id in [0, 1, 2] {
        nick(&cache, &loads, id).await;
        nick(&cache, &loads, id).await;
    }
    // `None` is cached (negative ttl), `Some("ada")` is, `Some("tmp-guest")` is not.
    assert_eq!(loads.count(), 4);
}

#[cached(cache = cache, key = "slow:<id>", unless = |value| *value == 0)]
async fn slow(cache: &Cache, loads: Arc<Loads>, id: u64) -> u64 {
    loads.add();
    tokio::time::sleep(Duration::from_millis(50)).await;
    id
}

#[tokio::test]
async fn callers_waiting_on_a_load_get_a_value_that_is_not_stored() {
    let cache = Cache::memory();
    let loads = Arc::new(Loads::default());
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let cache = cache.clone();
            let loads = Arc::clone(&loads);
            tokio::spawn(async move { slow(&cache, loads, 0).await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 0);
    }
    assert_eq!(loads.count(), 1, "the single flight still shares the load");
    assert_eq!(cache.get::<u64>("slow:0").await.unwrap(), None);
}

#[cached(cache = cache, key = "user:<id>", condition = id != 0 && !*admin)]
async fn user(cache: &Cache, loads: &Loads, id: u64, admin: &bool) -> String {
    loads.add();
    format!("user {id}")
}

#[tokio::test]
async fn condition_false_sends_the_call_past_the_cache() {
    let cache = Cache::memory();
    let loads = Loads::default();
    assert_eq!(user(&cache, &loads, 1, &false).await, "user 1");
    assert_eq!(user(&cache, &loads, 1, &false).await, "user 1");
    assert_eq!(loads.count(), 1);

    assert_eq!(user(&cache, &loads, 0, &false).await, "user 0");
    assert_eq!(user(&cache, &loads, 0, &false).await, "user 0");
    assert_eq!(loads.count(), 3, "id 0 is never cached");
    assert_eq!(cache.get::<String>("user:0").await.unwrap(), None);

    // Bypassed calls do not read either: the cached entry of id 1 is not what they return.
    cache
        .set("user:1", &"stale".to_owned(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(user(&cache, &loads, 1, &true).await, "user 1");
    assert_eq!(loads.count(), 4);
    let stats = cache.stats();
    assert_eq!(
        (stats.hits, stats.misses),
        (1, 1),
        "bypassed calls are neither hits nor misses"
    );
}

#[cached(cache = cache, key = "both:<id>", condition = id % 2 == 1, unless = |value| *value > 100)]
async fn both(cache: &Cache, loads: &Loads, id: u64) -> u64 {
    loads.add();
    id * 100
}

#[cached(cache = cache, key = "after:<id>")]
async fn after(cache: &Cache, loads: &Loads, id: u64) -> u64 {
    loads.add();
    id
}

#[tokio::test(flavor = "current_thread")]
async fn a_bypassed_unless_leaves_nothing_for_the_next_load() {
    let cache = Cache::memory();
    let loads = Loads::default();
    // Bypassed, and its value matches `unless`: the mark it leaves must not reach `after`.
    assert_eq!(both(&cache, &loads, 2).await, 200);
    assert_eq!(after(&cache, &loads, 5).await, 5);
    assert_eq!(cache.get::<u64>("after:5").await.unwrap(), Some(5));
    assert_eq!(after(&cache, &loads, 5).await, 5);
    assert_eq!(loads.count(), 2);

    assert_eq!(both(&cache, &loads, 1).await, 100);
    assert_eq!(both(&cache, &loads, 1).await, 100);
    assert_eq!(loads.count(), 3, "odd ids within the limit are cached");
    assert_eq!(both(&cache, &loads, 3).await, 300);
    assert_eq!(both(&cache, &loads, 3).await, 300);
    assert_eq!(loads.count(), 5, "above it they are not");
}

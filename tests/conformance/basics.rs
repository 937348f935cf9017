//! Storage, cache-aside, keys, negative caching and bad entries.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use cachemacro_runtime::backend::Backend;
use cachemacro_runtime::{cached, envelope, Cache};
use serde::{Deserialize, Serialize};

use crate::SharedStore;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

pub async fn backend_get_of_a_missing_key_is_none<B: Backend>(_: &Cache, backend: &B) {
    assert!(backend.get("absent").await.unwrap().is_none());
}

pub async fn backend_set_then_get_round_trips<B: Backend>(_: &Cache, backend: &B) {
    backend
        .set("k", b"v1"[..].into(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(backend.get("k").await.unwrap().unwrap().as_ref(), b"v1");
    backend
        .set("k", b"v2"[..].into(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(backend.get("k").await.unwrap().unwrap().as_ref(), b"v2");
}

pub async fn backend_delete_reports_presence<B: Backend>(_: &Cache, backend: &B) {
    backend
        .set("k", b"v"[..].into(), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(backend.delete("k").await.unwrap());
    assert!(!backend.delete("k").await.unwrap());
    assert!(backend.get("k").await.unwrap().is_none());
}

pub async fn backend_drops_entries_after_their_ttl<B: Backend>(_: &Cache, backend: &B) {
    let ttl = Duration::from_millis(500);
    let before_set = Instant::now();
    backend.set("short", b"v"[..].into(), ttl).await.unwrap();
    backend
        .set("long", b"v"[..].into(), Duration::from_secs(60))
        .await
        .unwrap();
    let present = backend.get("short").await.unwrap().is_some();
    // The entry cannot have expired before `before_set + ttl`; a busy machine may only get to
    // this read later, and then it proves nothing either way.
    if before_set.elapsed() < ttl {
        assert!(present, "short was gone before its ttl");
    }
    wait_until_absent(backend, "short", before_set + ttl).await;
    assert!(backend.get("long").await.unwrap().is_some());
}

/// Polls until `key` is gone: it must be, some time after `expiry`; how long after is left
/// generous, since the test checks expiry, not how promptly a loaded machine gets to see it.
async fn wait_until_absent<B: Backend>(backend: &B, key: &str, expiry: Instant) {
    let deadline = expiry + Duration::from_secs(10);
    while backend.get(key).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "{key} outlived its ttl");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cached(ttl = 60, key = "user:<id>", cache = cache)]
async fn load_user(cache: &Cache, loads: &AtomicUsize, id: u64) -> User {
    loads.fetch_add(1, SeqCst);
    User {
        id,
        name: format!("user {id}"),
    }
}

pub async fn first_call_loads_and_second_hits<B: Backend>(cache: &Cache, _: &B) {
    let loads = AtomicUsize::new(0);
    let first = load_user(cache, &loads, 7).await;
    let second = load_user(cache, &loads, 7).await;
    assert_eq!(first, second);
    assert_eq!(loads.load(SeqCst), 1);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.loads), (1, 1, 1));
    assert_eq!(stats.hit_rate(), 0.5);
}

pub async fn different_arguments_get_different_entries<B: Backend>(cache: &Cache, _: &B) {
    let loads = AtomicUsize::new(0);
    assert_eq!(load_user(cache, &loads, 1).await.id, 1);
    assert_eq!(load_user(cache, &loads, 2).await.id, 2);
    assert_eq!(load_user(cache, &loads, 1).await.id, 1);
    assert_eq!(loads.load(SeqCst), 2);
}

#[cached(ttl = 60, key = "pair:<a>:<b>", cache = cache)]
async fn join_pair(cache: &Cache, a: &str, b: &str) -> String {
    format!("{a}|{b}")
}

pub async fn separators_inside_arguments_never_collide<B: Backend>(cache: &Cache, _: &B) {
    assert_eq!(join_pair(cache, "1:2", "3").await, "1:2|3");
    assert_eq!(join_pair(cache, "1", "2:3").await, "1|2:3");
    assert_eq!(cache.stats().loads, 2);
}

#[cached(ttl = 60, key = "flaky:<id>", cache = cache)]
async fn flaky_lookup(cache: &Cache, fail: bool, id: u64) -> Result<u64, String> {
    if fail {
        Err(format!("database refused {id}"))
    } else {
        Ok(id * 10)
    }
}

pub async fn errors_are_returned_and_not_cached<B: Backend>(cache: &Cache, _: &B) {
    assert_eq!(
        flaky_lookup(cache, true, 3).await,
        Err("database refused 3".to_owned())
    );
    assert_eq!(flaky_lookup(cache, false, 3).await, Ok(30));
    assert_eq!(
        flaky_lookup(cache, true, 3).await,
        Ok(30),
        "the Ok value is now cached"
    );
    assert_eq!(cache.stats().loads, 2);
}

#[cached(ttl = 60, key = "maybe:<id>", cache = cache)]
async fn find_user(cache: &Cache, loads: &AtomicUsize, id: u64) -> Option<User> {
    loads.fetch_add(1, SeqCst);
    (id < 100).then(|| User {
        id,
        name: "found".into(),
    })
}

#[cached(ttl = 60, key = "maybe-uncached:<id>", cache = cache, cache_none = false)]
async fn find_user_without_negative_caching(
    cache: &Cache,
    loads: &AtomicUsize,
    id: u64,
) -> Option<User> {
    loads.fetch_add(1, SeqCst);
    (id < 100).then(|| User {
        id,
        name: "found".into(),
    })
}

pub async fn none_is_cached_unless_turned_off<B: Backend>(cache: &Cache, _: &B) {
    let loads = AtomicUsize::new(0);
    assert_eq!(find_user(cache, &loads, 500).await, None);
    assert_eq!(find_user(cache, &loads, 500).await, None);
    assert_eq!(
        loads.load(SeqCst),
        1,
        "None is cached against repeated misses"
    );
    assert!(find_user(cache, &loads, 5).await.is_some());
    assert!(find_user(cache, &loads, 5).await.is_some());
    assert_eq!(loads.load(SeqCst), 2);

    let loads = AtomicUsize::new(0);
    assert_eq!(
        find_user_without_negative_caching(cache, &loads, 500).await,
        None
    );
    assert_eq!(
        find_user_without_negative_caching(cache, &loads, 500).await,
        None
    );
    assert_eq!(loads.load(SeqCst), 2);
}

#[cached(ttl = 60, key = "shape:<id>", cache = cache)]
async fn shape_as_text(cache: &Cache, id: u64) -> String {
    format!("text {id}")
}

pub async fn undecodable_entries_are_misses_that_get_overwritten<B: Backend>(
    cache: &Cache,
    backend: &B,
) {
    let valid = envelope::encode(&"older", Duration::from_secs(60), Duration::ZERO).unwrap();
    let mut newer_format = valid.clone();
    newer_format[2] += 1;
    let wrong_type = envelope::encode(&[1, 2, 3], Duration::from_secs(60), Duration::ZERO).unwrap();
    let bad_entries: [&[u8]; 5] = [
        b"garbage",
        b"",
        &valid[..valid.len() - 2],
        &newer_format,
        &wrong_type,
    ];
    for (id, bad) in bad_entries.into_iter().enumerate() {
        let id = id as u64;
        backend
            .set(&format!("shape:{id}"), bad.into(), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(shape_as_text(cache, id).await, format!("text {id}"));
        assert_eq!(shape_as_text(cache, id).await, format!("text {id}"));
        let stored = backend.get(&format!("shape:{id}")).await.unwrap().unwrap();
        let stored = envelope::decode(stored.as_ref()).unwrap();
        assert_eq!(stored.value::<String>().unwrap(), format!("text {id}"));
    }
    let stats = cache.stats();
    assert_eq!(stats.decode_errors, 5);
    assert_eq!(stats.loads, 5, "each bad entry was reloaded once, then hit");
    assert_eq!(stats.hits, 5);
}

pub async fn logically_expired_entries_are_misses<B: Backend>(cache: &Cache, backend: &B) {
    let expired = envelope::encode(&"stale", Duration::ZERO, Duration::ZERO).unwrap();
    backend
        .set("shape:42", expired.into(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(shape_as_text(cache, 42).await, "text 42");
    assert_eq!(cache.stats().loads, 1);
}

pub async fn keys_carry_the_cache_prefix<B: Backend + SharedStore>(_: &Cache, backend: &B) {
    let prefixed = backend.cache_with_prefix("tenant-a:");
    let loads = AtomicUsize::new(0);
    load_user(&prefixed, &loads, 9).await;
    assert!(backend.get("tenant-a:user:9").await.unwrap().is_some());
    assert!(backend.get("user:9").await.unwrap().is_none());

    prefixed
        .set("manual", &5u32, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(backend.get("tenant-a:manual").await.unwrap().is_some());
}

pub async fn get_set_delete_by_hand<B: Backend>(cache: &Cache, backend: &B) {
    let user = User {
        id: 1,
        name: "Ada".into(),
    };
    assert_eq!(cache.get::<User>("by-hand").await.unwrap(), None);
    cache
        .set("by-hand", &user, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(cache.get::<User>("by-hand").await.unwrap(), Some(user));
    cache.delete("by-hand").await.unwrap();
    assert_eq!(cache.get::<User>("by-hand").await.unwrap(), None);

    backend
        .set("by-hand", b"garbage"[..].into(), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(cache.get::<User>("by-hand").await.unwrap_err().is_decode());
}

pub async fn get_with_loads_once<B: Backend>(cache: &Cache, _: &B) {
    let loads = AtomicUsize::new(0);
    for _ in 0..3 {
        let value = cache
            .get_with("answer", Duration::from_secs(60), || async {
                loads.fetch_add(1, SeqCst);
                42u32
            })
            .await;
        assert_eq!(value, 42);
    }
    assert_eq!(loads.load(SeqCst), 1);
    let failed: Result<u32, &str> = cache
        .try_get_with("question", Duration::from_secs(60), || async { Err("no") })
        .await;
    assert_eq!(failed, Err("no"));
    assert_eq!(cache.get::<u32>("question").await.unwrap(), None);
}

#[cached(ttl = 60, key = "big:<size>", cache = cache)]
async fn blob(cache: &Cache, loads: &AtomicUsize, size: usize) -> String {
    loads.fetch_add(1, SeqCst);
    "x".repeat(size)
}

pub async fn values_over_max_value_size_are_returned_but_not_stored<B: Backend + SharedStore>(
    _: &Cache,
    backend: &B,
) {
    let cache = backend.cache_with_max_value_size(1024);
    let loads = AtomicUsize::new(0);
    assert_eq!(blob(&cache, &loads, 4096).await.len(), 4096);
    assert_eq!(blob(&cache, &loads, 4096).await.len(), 4096);
    assert_eq!(
        loads.load(SeqCst),
        2,
        "too large to store, so loaded each time"
    );
    assert_eq!(cache.stats().oversized, 2);
    assert!(backend.get("big:4096").await.unwrap().is_none());

    assert_eq!(blob(&cache, &loads, 100).await.len(), 100);
    assert_eq!(blob(&cache, &loads, 100).await.len(), 100);
    assert_eq!(loads.load(SeqCst), 3, "small values are cached as usual");
}

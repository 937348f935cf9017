//! Stampede protection: single flight, the fill lock, early refresh and stale-while-revalidate.
//! Loads are counted, never timed.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachemacro_runtime::backend::{Backend, Begin, FillKeys};
use cachemacro_runtime::{cached, Cache};

use crate::SharedStore;

fn fill_keys() -> FillKeys {
    FillKeys {
        entry: "k".into(),
        version: "{k}#v".into(),
        lock: "{k}#lock".into(),
    }
}

fn locking(token: &str, ttl: Duration) -> Begin<'_> {
    Begin {
        lock: Some((token, ttl)),
        tags: &[],
        epoch_ttl: Duration::from_secs(60),
    }
}

pub async fn backend_fill_lock_is_exclusive_and_token_checked<B: Backend>(_: &Cache, backend: &B) {
    let ttl = Duration::from_secs(60);
    let keys = fill_keys();
    let first = backend
        .begin_fill(&keys, locking("token-a", ttl))
        .await
        .unwrap();
    assert!(first.locked);
    let second = backend
        .begin_fill(&keys, locking("token-b", ttl))
        .await
        .unwrap();
    assert!(!second.locked);
    assert_eq!(
        second.version, first.version,
        "one version per key while it lives"
    );
    backend
        .finish_fill(&keys, first.version, &[], None, Some("token-b"))
        .await
        .unwrap();
    let stranger = backend
        .begin_fill(&keys, locking("token-b", ttl))
        .await
        .unwrap();
    assert!(!stranger.locked, "a stranger's token frees nothing");
    backend.unlock(&keys.lock, "token-b").await.unwrap();
    assert!(
        !backend
            .begin_fill(&keys, locking("token-b", ttl))
            .await
            .unwrap()
            .locked
    );
    backend
        .finish_fill(&keys, first.version, &[], None, Some("token-a"))
        .await
        .unwrap();
    assert!(
        backend
            .begin_fill(&keys, locking("token-b", ttl))
            .await
            .unwrap()
            .locked
    );
}

pub async fn backend_fill_lock_of_a_dead_holder_expires<B: Backend>(_: &Cache, backend: &B) {
    let short = Duration::from_millis(50);
    let keys = fill_keys();
    let dead = backend
        .begin_fill(&keys, locking("dead", short))
        .await
        .unwrap();
    assert!(dead.locked);
    for _ in 0..100 {
        let next = backend
            .begin_fill(&keys, locking("next", Duration::from_secs(60)))
            .await
            .unwrap();
        if next.locked {
            backend
                .finish_fill(&keys, dead.version, &[], None, Some("dead"))
                .await
                .unwrap();
            let third = backend
                .begin_fill(&keys, locking("third", Duration::from_secs(60)))
                .await
                .unwrap();
            assert!(!third.locked, "the late holder freed nobody else's lock");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the lock never expired");
}

#[cached(ttl = 60, key = "cold:<id>", cache = cache)]
async fn slow_cold_read(cache: &Cache, loads: &AtomicUsize, id: u64) -> Result<String, String> {
    loads.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(format!("row {id}"))
}

pub async fn a_thousand_callers_on_a_cold_key_load_once<B: Backend>(cache: &Cache, _: &B) {
    let loads = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            tokio::spawn(async move { slow_cold_read(&cache, &loads, 3).await })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), Ok("row 3".to_owned()));
    }
    assert_eq!(loads.load(SeqCst), 1);
    let stats = cache.stats();
    assert_eq!(stats.loads, 1);
    assert_eq!(stats.coalesced, 999);
}

#[cached(ttl = 60, key = "failing:<id>", cache = cache)]
async fn failing_read(cache: &Cache, loads: &AtomicUsize, id: u64) -> Result<u64, String> {
    loads.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    Err(format!("database down for {id}"))
}

pub async fn waiters_of_a_failed_load_get_its_error<B: Backend>(cache: &Cache, _: &B) {
    let loads = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            tokio::spawn(async move { failing_read(&cache, &loads, 1).await })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), Err("database down for 1".to_owned()));
    }
    assert_eq!(
        loads.load(SeqCst),
        1,
        "the error was shared, not reloaded per waiter"
    );
    assert_eq!(cache.stats().coalesced, 49);
    assert_eq!(
        failing_read(cache, &loads, 1).await,
        Err("database down for 1".to_owned())
    );
    assert_eq!(loads.load(SeqCst), 2, "the error was not cached");
}

/// The same entry as [`read_behind_a_lock`], from a process configured with a long lock.
#[cached(ttl = 60, key = "held:<id>", cache = cache, lock_timeout = "1h")]
async fn hang_holding_the_lock(
    cache: &Cache,
    started: &AtomicBool,
    id: u64,
) -> Result<String, String> {
    started.store(true, SeqCst);
    std::future::pending::<()>().await;
    Ok(format!("never {id}"))
}

#[cached(ttl = 60, key = "held:<id>", cache = cache, lock_timeout = "300ms")]
async fn read_behind_a_lock(cache: &Cache, id: u64) -> Result<String, String> {
    Ok(format!("row {id}"))
}

pub async fn waiters_never_wait_past_lock_timeout<B: SharedStore>(cache: &Cache, backend: &B) {
    let holder_cache = backend.cache_with_prefix("");
    let holder_started = Arc::new(AtomicBool::new(false));
    let holder = {
        let started = Arc::clone(&holder_started);
        tokio::spawn(async move { hang_holding_the_lock(&holder_cache, &started, 5).await })
    };
    while !holder_started.load(SeqCst) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let started = Instant::now();
    let value = read_behind_a_lock(cache, 5).await;
    let waited = started.elapsed();
    holder.abort();

    assert_eq!(value, Ok("row 5".to_owned()));
    let stats = cache.stats();
    assert_eq!(
        (stats.lock_waits, stats.lock_timeouts, stats.loads),
        (1, 1, 1)
    );
    // A bound, not a benchmark: the 300 ms lock timeout, far from "forever".
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
}

pub async fn a_second_process_waits_for_the_first_ones_fill<B: SharedStore>(
    cache: &Cache,
    backend: &B,
) {
    let other_process = backend.cache_with_prefix("");
    let first = {
        let cache = cache.clone();
        tokio::spawn(async move { slow_shared_read(&cache, 9).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = slow_shared_read(&other_process, 9).await;
    assert_eq!(first.await.unwrap(), second);
    assert_eq!(cache.stats().loads + other_process.stats().loads, 1);
    assert_eq!(other_process.stats().lock_waits, 1);
}

#[cached(ttl = 60, key = "shared:<id>", cache = cache)]
async fn slow_shared_read(cache: &Cache, id: u64) -> String {
    tokio::time::sleep(Duration::from_millis(300)).await;
    format!("row {id}")
}

#[cached(ttl = "500ms", key = "hot:<id>", cache = cache)]
async fn hot_read(cache: Cache, loads: Arc<AtomicUsize>, id: u64) -> u64 {
    loads.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(20)).await;
    id
}

pub async fn a_hot_key_is_refreshed_early_in_the_background<B: Backend>(cache: &Cache, _: &B) {
    const PERIODS: u32 = 10;
    let id = 1000;
    let all_loads = Arc::new(AtomicUsize::new(0));
    assert_eq!(
        hot_read(cache.clone(), Arc::clone(&all_loads), id).await,
        id
    );
    let deadline = Instant::now() + Duration::from_millis(500) * PERIODS;
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let (cache, all_loads) = (cache.clone(), Arc::clone(&all_loads));
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    assert_eq!(
                        hot_read(cache.clone(), Arc::clone(&all_loads), id).await,
                        id
                    );
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        })
        .collect();
    for reader in readers {
        reader.await.unwrap();
    }
    let stats = cache.stats();
    let loads = all_loads.load(SeqCst);
    assert_eq!(
        stats.loads, 1,
        "after the first fill no caller ran the loader: {stats:?}"
    );
    assert_eq!(
        stats.misses, 1,
        "no reader ever found the key missing: {stats:?}"
    );
    assert!(
        (PERIODS as usize / 2..=2 * PERIODS as usize + 1).contains(&loads),
        "about one load per ttl period, got {loads}: {stats:?}"
    );
    assert_eq!(stats.early_refreshes as usize, loads - 1);
}

#[cached(ttl = "300ms", stale = "1s", early_refresh = false, key = "fail-safe:<id>", cache = cache)]
async fn fail_safe_read(cache: Cache, failing: Arc<AtomicBool>, id: u64) -> Result<String, String> {
    if failing.load(SeqCst) {
        Err("database down".to_owned())
    } else {
        Ok(format!("row {id}"))
    }
}

pub async fn stale_values_are_served_while_the_loader_fails<B: Backend>(cache: &Cache, _: &B) {
    let failing = Arc::new(AtomicBool::new(false));
    let read = || fail_safe_read(cache.clone(), Arc::clone(&failing), 1);
    assert_eq!(read().await, Ok("row 1".to_owned()));
    failing.store(true, SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;

    assert_eq!(
        read().await,
        Ok("row 1".to_owned()),
        "stale inside the window"
    );
    wait_for(|| cache.stats().refresh_failures == 1).await;
    assert_eq!(
        read().await,
        Ok("row 1".to_owned()),
        "still stale after a failed refresh"
    );
    let stats = cache.stats();
    assert_eq!(stats.stale_hits, 2);
    assert_eq!(
        stats.loads, 1,
        "stale hits never made a caller wait for the loader"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        read().await,
        Err("database down".to_owned()),
        "the window is over"
    );
}

pub async fn a_stale_hit_refreshes_in_the_background<B: Backend>(cache: &Cache, _: &B) {
    let failing = Arc::new(AtomicBool::new(false));
    let read = || fail_safe_read(cache.clone(), Arc::clone(&failing), 2);
    assert_eq!(read().await, Ok("row 2".to_owned()));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(read().await, Ok("row 2".to_owned()));
    wait_for(|| cache.stats().stale_refreshes == 1).await;
    // Once the refresh has landed, the entry is fresh again: a read is a plain hit.
    for _ in 0..100 {
        let stale_hits = cache.stats().stale_hits;
        read().await.unwrap();
        if cache.stats().stale_hits == stale_hits {
            assert_eq!(cache.stats().loads, 1, "the refresh ran in the background");
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the background refresh never replaced the stale entry: {:?}",
        cache.stats()
    );
}

async fn wait_for(condition: impl Fn() -> bool) {
    for _ in 0..300 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached in 3 s");
}

#[cached(ttl = 60, key = "unlocked:<id>", cache = cache, lock = false)]
async fn unlocked_read(cache: &Cache, loads: &AtomicUsize, id: u64) -> String {
    loads.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    format!("row {id}")
}

pub async fn without_the_lock_each_process_loads<B: SharedStore>(cache: &Cache, backend: &B) {
    let other_process = backend.cache_with_prefix("");
    let loads = Arc::new(AtomicUsize::new(0));
    let first = {
        let (cache, loads) = (cache.clone(), Arc::clone(&loads));
        tokio::spawn(async move { unlocked_read(&cache, &loads, 4).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(unlocked_read(&other_process, &loads, 4).await, "row 4");
    assert_eq!(first.await.unwrap(), "row 4");
    assert_eq!(
        loads.load(SeqCst),
        2,
        "lock = false: no waiting across processes"
    );
    assert_eq!(other_process.stats().lock_waits, 0);
}

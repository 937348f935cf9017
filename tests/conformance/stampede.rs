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
async fn slow_cold_read(
    cache: &Cache,
    loads: &AtomicUsize,
    waiters: u64,
    id: u64,
) -> Result<String, String> {
    loads.fetch_add(1, SeqCst);
    hold_until_joined(cache, waiters).await;
    Ok(format!("row {id}"))
}

/// Holds a load until `waiters` callers have joined it (or far longer than that takes), so the
/// callers coalesce because the load is in flight, not because they were quick enough to arrive
/// before a fixed load time ran out. Callers that do not join never count: then the load goes
/// on after the deadline and the counts tell.
async fn hold_until_joined(cache: &Cache, waiters: u64) {
    reached_within(Duration::from_secs(10), || {
        cache.stats().coalesced >= waiters
    })
    .await;
}

pub async fn a_thousand_callers_on_a_cold_key_load_once<B: Backend>(cache: &Cache, _: &B) {
    let loads = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            tokio::spawn(async move { slow_cold_read(&cache, &loads, 999, 3).await })
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
async fn failing_read(
    cache: &Cache,
    loads: &AtomicUsize,
    waiters: u64,
    id: u64,
) -> Result<u64, String> {
    loads.fetch_add(1, SeqCst);
    hold_until_joined(cache, waiters).await;
    Err(format!("database down for {id}"))
}

pub async fn waiters_of_a_failed_load_get_its_error<B: Backend>(cache: &Cache, _: &B) {
    let loads = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            tokio::spawn(async move { failing_read(&cache, &loads, 49, 1).await })
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
        failing_read(cache, &loads, 0, 1).await,
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

/// A load that waits to be let go: it counts the callers that entered it, and returns once
/// `open` is set, or after a deadline far longer than any test waits for it.
#[derive(Default)]
struct Gate {
    entered: AtomicUsize,
    open: AtomicBool,
}

impl Gate {
    async fn pass(&self) {
        self.entered.fetch_add(1, SeqCst);
        reached_within(Duration::from_secs(10), || self.open.load(SeqCst)).await;
    }

    fn entered(&self) -> usize {
        self.entered.load(SeqCst)
    }
}

pub async fn a_second_process_waits_for_the_first_ones_fill<B: SharedStore>(
    cache: &Cache,
    backend: &B,
) {
    let other_process = backend.cache_with_prefix("");
    let gate = Arc::new(Gate::default());
    let first = {
        let (cache, gate) = (cache.clone(), Arc::clone(&gate));
        tokio::spawn(async move { gated_shared_read(&cache, &gate, 9).await })
    };
    // The first process is inside its load, so it holds the fill lock; its load goes on until
    // the second process has found the lock taken.
    wait_for(|| gate.entered() == 1).await;
    let second = {
        let (cache, gate) = (other_process.clone(), Arc::clone(&gate));
        tokio::spawn(async move { gated_shared_read(&cache, &gate, 9).await })
    };
    wait_for(|| other_process.stats().lock_waits == 1).await;
    gate.open.store(true, SeqCst);
    assert_eq!(first.await.unwrap(), second.await.unwrap());
    assert_eq!(gate.entered(), 1, "one load across the two processes");
    assert_eq!(cache.stats().loads + other_process.stats().loads, 1);
    assert_eq!(other_process.stats().lock_waits, 1);
}

#[cached(ttl = 60, key = "shared:<id>", cache = cache)]
async fn gated_shared_read(cache: &Cache, gate: &Gate, id: u64) -> String {
    gate.pass().await;
    format!("row {id}")
}

const HOT_TTL: Duration = Duration::from_secs(1);
const HOT_READERS: u64 = 50;

#[cached(ttl = "1s", key = "hot:<id>", cache = cache)]
async fn hot_read(cache: Cache, loads: Arc<AtomicUsize>, id: u64) -> u64 {
    loads.fetch_add(1, SeqCst);
    // XFetch starts a refresh earlier the longer the load takes: about 300 ms ahead for 50 ms,
    // room for a busy machine to get the refresh stored before the entry expires.
    tokio::time::sleep(Duration::from_millis(50)).await;
    id
}

pub async fn a_hot_key_is_refreshed_early_in_the_background<B: Backend>(cache: &Cache, _: &B) {
    const PERIODS: u32 = 5;
    let id = 1000;
    let all_loads = Arc::new(AtomicUsize::new(0));
    assert_eq!(
        hot_read(cache.clone(), Arc::clone(&all_loads), id).await,
        id
    );
    let deadline = Instant::now() + HOT_TTL * PERIODS;
    let readers: Vec<_> = (0..HOT_READERS)
        .map(|_| {
            let (cache, all_loads) = (cache.clone(), Arc::clone(&all_loads));
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    assert_eq!(
                        hot_read(cache.clone(), Arc::clone(&all_loads), id).await,
                        id
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();
    for reader in readers {
        reader.await.unwrap();
    }
    let stats = cache.stats();
    let loads = all_loads.load(SeqCst);
    // A refresh that started in time can still land after the expiry when a busy machine stalls
    // it: that period, each reader finds the key missing at most once, and one of them may load.
    // A few such periods are the machine's; with early refresh broken, every period is one.
    let late_periods = (stats.early_refreshes / 3).max(1);
    assert!(
        stats.loads - 1 <= late_periods,
        "after the first fill callers ran the loader only when a refresh was late: {stats:?}"
    );
    assert!(
        stats.misses - 1 <= late_periods * HOT_READERS,
        "readers found the key missing only when a refresh was late: {stats:?}"
    );
    assert!(
        (PERIODS as usize / 2..=3 * PERIODS as usize + 1).contains(&loads),
        "about one load per ttl period, got {loads}: {stats:?}"
    );
    assert!(
        loads as u64 <= stats.loads + stats.early_refreshes,
        "each refresh loaded once: {loads} loads, {stats:?}"
    );
}

const FAIL_SAFE_TTL: Duration = Duration::from_millis(300);
const FAIL_SAFE_STALE: Duration = Duration::from_secs(2);

#[cached(ttl = "300ms", stale = "2s", early_refresh = false, key = "fail-safe:<id>", cache = cache)]
async fn fail_safe_read(cache: Cache, failing: Arc<AtomicBool>, id: u64) -> Result<String, String> {
    if failing.load(SeqCst) {
        Err("database down".to_owned())
    } else {
        Ok(format!("row {id}"))
    }
}

/// Reads `fail_safe_read(id)` once, storing its entry, and sleeps until the entry is past its
/// ttl. Returns when that read ended: the entry was written by then, so its stale window is over
/// `ttl + stale` later. The window cannot end sooner than that after the read began, so the
/// checks inside it have the whole stale window of margin for a busy machine.
async fn fill_then_let_expire(cache: &Cache, failing: &Arc<AtomicBool>, id: u64) -> Instant {
    let row = fail_safe_read(cache.clone(), Arc::clone(failing), id).await;
    assert_eq!(row, Ok(format!("row {id}")));
    let written_by = Instant::now();
    tokio::time::sleep(FAIL_SAFE_TTL + Duration::from_millis(20)).await;
    written_by
}

pub async fn stale_values_are_served_while_the_loader_fails<B: Backend>(cache: &Cache, _: &B) {
    let failing = Arc::new(AtomicBool::new(false));
    let read = || fail_safe_read(cache.clone(), Arc::clone(&failing), 1);
    let written_by = fill_then_let_expire(cache, &failing, 1).await;
    failing.store(true, SeqCst);

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

    // The failed refreshes stored nothing, so the first entry's window is the one that ends.
    let window_over = written_by + FAIL_SAFE_TTL + FAIL_SAFE_STALE + Duration::from_millis(20);
    tokio::time::sleep_until(window_over.into()).await;
    assert_eq!(
        read().await,
        Err("database down".to_owned()),
        "the window is over"
    );
}

pub async fn a_stale_hit_refreshes_in_the_background<B: Backend>(cache: &Cache, _: &B) {
    let failing = Arc::new(AtomicBool::new(false));
    let read = || fail_safe_read(cache.clone(), Arc::clone(&failing), 2);
    fill_then_let_expire(cache, &failing, 2).await;
    assert_eq!(read().await, Ok("row 2".to_owned()));
    wait_for(|| cache.stats().stale_refreshes == 1).await;
    // Once the refresh has landed, the entry is fresh again: a read is a plain hit. A busy
    // machine may read only after the refreshed entry's ttl too; that read is stale again and
    // starts another refresh, so poll until a read lands inside a fresh period.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
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

/// Polls `condition` until it holds, with a deadline far beyond what a busy machine needs.
async fn wait_for(condition: impl Fn() -> bool) {
    assert!(
        reached_within(Duration::from_secs(10), condition).await,
        "condition not reached in 10 s"
    );
}

/// Polls `condition` every millisecond until it holds (`true`) or `within` has passed (`false`).
async fn reached_within(within: Duration, condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !condition() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}

#[cached(ttl = 60, key = "unlocked:<id>", cache = cache, lock = false)]
async fn unlocked_read(cache: &Cache, loads: &AtomicUsize, gate: &Gate, id: u64) -> String {
    loads.fetch_add(1, SeqCst);
    gate.pass().await;
    format!("row {id}")
}

pub async fn without_the_lock_each_process_loads<B: SharedStore>(cache: &Cache, backend: &B) {
    let other_process = backend.cache_with_prefix("");
    let loads = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Gate::default());
    let first = {
        let (cache, loads, gate) = (cache.clone(), Arc::clone(&loads), Arc::clone(&gate));
        tokio::spawn(async move { unlocked_read(&cache, &loads, &gate, 4).await })
    };
    // The second process arrives while the first is loading, and both loads are held until both
    // are running: with a lock the second would wait instead, and never enter.
    wait_for(|| gate.entered() == 1).await;
    let second = {
        let (cache, loads, gate) = (other_process.clone(), Arc::clone(&loads), Arc::clone(&gate));
        tokio::spawn(async move { unlocked_read(&cache, &loads, &gate, 4).await })
    };
    reached_within(Duration::from_secs(10), || gate.entered() == 2).await;
    gate.open.store(true, SeqCst);
    assert_eq!(second.await.unwrap(), "row 4");
    assert_eq!(first.await.unwrap(), "row 4");
    assert_eq!(
        loads.load(SeqCst),
        2,
        "lock = false: no waiting across processes"
    );
    assert_eq!(other_process.stats().lock_waits, 0);
}

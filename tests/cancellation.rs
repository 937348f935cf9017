//! Cancellation, panics and half-done requests: what a caller that goes away, a loader that
//! panics, a circuit-breaker probe that is dropped or a lock request that runs on the server
//! after its client gave up must leave behind. Each test drives one such event and then counts
//! what the next callers get: their loads, the cache's counters, its log lines. Time is measured
//! only where the promise is about time, against bounds far from the failure they rule out (a
//! left-over fill lock costs the whole 5 s `lock_timeout`; these tests allow 2 s).
//!
//! Two caches over one store stand for two processes: two handles on a `MemoryBackend` clone, or
//! two connections to one private `redis-server`.

#[path = "common/logs.rs"]
mod logs;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachemacro_runtime::backend::{Backend, MemoryBackend, RedisBackend};
use cachemacro_runtime::{cache_invalidate, cached, Cache};
use cachemacro_tests::RedisServer;
use logs::CapturedLogs;
use tokio::sync::{oneshot, Notify};

/// How long an answering load takes: "about one load time" below means a small multiple of it.
const LOAD: Duration = Duration::from_millis(200);

/// The bound for "at once": far below the 5 s default `lock_timeout` a left-over lock would cost,
/// and far above one load on a busy machine.
const AT_ONCE: Duration = Duration::from_secs(2);

/// What the database stand-in does on one read.
#[derive(Debug, Clone, Copy)]
enum Query {
    /// Answers after [`LOAD`].
    Answers,
    /// Signals that it started, then never answers: a stuck connection.
    Hangs,
    /// Panics at once: a driver bug.
    Panics,
    /// Signals that it started, then panics when the test releases it.
    PanicsWhenReleased,
}

/// The database stand-in: counts its reads and lets a test hold one mid-load.
#[derive(Default)]
struct Database {
    reads: AtomicUsize,
    /// Signalled by a read that blocks, once it has started.
    started: Notify,
    /// Lets a [`Query::PanicsWhenReleased`] read go on to its panic.
    release: Notify,
}

impl Database {
    async fn read(&self, query: Query, id: u64) -> u64 {
        self.reads.fetch_add(1, SeqCst);
        match query {
            Query::Answers => tokio::time::sleep(LOAD).await,
            Query::Hangs => {
                self.started.notify_one();
                std::future::pending::<()>().await;
            }
            Query::Panics => panic!("the database driver panicked"),
            Query::PanicsWhenReleased => {
                self.started.notify_one();
                self.release.notified().await;
                panic!("the database driver panicked");
            }
        }
        id * 10
    }

    fn reads(&self) -> usize {
        self.reads.load(SeqCst)
    }
}

/// Default options: fill lock on, `lock_timeout` 5 s.
#[cached(ttl = 60, key = "row:<id>", cache = cache)]
async fn row(cache: &Cache, db: &Database, query: Query, id: u64) -> u64 {
    db.read(query, id).await
}

#[cached(ttl = 60, key = "hedged:<id>", cache = cache, lock_timeout = "300ms")]
async fn hedged_row(cache: &Cache, db: &Database, query: Query, id: u64) -> u64 {
    db.read(query, id).await
}

/// Two handles on one embedded store.
fn memory_pair() -> (Cache, Cache) {
    let backend = MemoryBackend::new(16 * 1024 * 1024);
    (
        Cache::builder().memory_backend(backend.clone()),
        Cache::builder().memory_backend(backend),
    )
}

/// A handle with its own connection to `server`. The operation timeout is generous: these tests
/// check what callers wait for, and a command timing out on a busy machine would change the path
/// taken (a load without the lock) rather than show a defect.
async fn redis_cache(server: &RedisServer) -> Cache {
    Cache::builder()
        .operation_timeout(Duration::from_secs(1))
        .redis(&server.url())
        .await
        .expect("a well-formed URL")
}

/// Waits for `done`, checking often, for at most 10 s: for a state the test needs before its next
/// step, never for time to pass.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// How the leader of a load goes away.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Gone {
    /// Its caller drops the call's future mid-load, as a timeout or a `select!` does.
    Cancelled,
    /// Its loader panics.
    Panicked,
}

/// A leader holds the fill lock mid-load while a follower in its process and a caller in another
/// process wait for it; then it goes away. Both must be answered about one load later.
///
/// Before the fix the fill ticket was a plain value: a leader dropped or unwound mid-load left its
/// lock in the store until the lock's ttl ran out. Its follower started over and found that
/// lock, and both it and the other process waited about 5 s, until the lock expired or their
/// `lock_timeout` ran out, whichever came first.
async fn a_leader_that_goes_away_frees_the_lock_at_once(here: Cache, there: Cache, gone: Gone) {
    let db = Arc::new(Database::default());
    let (cancel, cancelled) = oneshot::channel::<()>();
    let leader = {
        let (cache, db) = (here.clone(), Arc::clone(&db));
        tokio::spawn(async move {
            match gone {
                // Dropped by a `select!` on a signal rather than by a timer, so that the drop
                // comes exactly when the waiters are known to wait, however slow the machine.
                Gone::Cancelled => tokio::select! {
                    _ = row(&cache, &db, Query::Hangs, 1) => panic!("a hung load answered"),
                    _ = cancelled => {}
                },
                Gone::Panicked => {
                    row(&cache, &db, Query::PanicsWhenReleased, 1).await;
                }
            }
        })
    };
    db.started.notified().await;

    let follower = {
        let (cache, db) = (here.clone(), Arc::clone(&db));
        tokio::spawn(async move { row(&cache, &db, Query::Answers, 1).await })
    };
    let other_process = {
        let (cache, db) = (there.clone(), Arc::clone(&db));
        tokio::spawn(async move { row(&cache, &db, Query::Answers, 1).await })
    };
    wait_until(
        "the follower joined the load and the other process met the lock",
        || here.stats().coalesced == 1 && there.stats().lock_waits == 1,
    )
    .await;

    let left = Instant::now();
    match gone {
        Gone::Cancelled => cancel.send(()).expect("the leader is still running"),
        Gone::Panicked => db.release.notify_one(),
    }
    let ended = leader.await;
    match gone {
        Gone::Cancelled => ended.expect("the leader task ends when its call is dropped"),
        Gone::Panicked => assert!(ended.expect_err("the loader panicked").is_panic()),
    }
    assert_eq!(follower.await.unwrap(), 10);
    assert_eq!(other_process.await.unwrap(), 10);
    let took = left.elapsed();

    let (stats_here, stats_there) = (here.stats(), there.stats());
    assert_eq!(
        stats_here.lock_timeouts + stats_there.lock_timeouts,
        0,
        "nobody waited out the lock: {stats_here:?} {stats_there:?}"
    );
    assert_eq!(
        db.reads(),
        2,
        "the abandoned load, then one load for both waiters"
    );
    assert_eq!(stats_here.loads + stats_there.loads, 2);
    match gone {
        Gone::Cancelled => assert_eq!(stats_here.loads_cancelled, 1, "{stats_here:?}"),
        Gone::Panicked => assert_eq!(stats_here.loads_panicked, 1, "{stats_here:?}"),
    }
    assert!(
        took < AT_ONCE,
        "the waiters were answered {took:?} after the leader went away"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_cancelled_leader_frees_the_fill_lock_at_once() {
    let (here, there) = memory_pair();
    a_leader_that_goes_away_frees_the_lock_at_once(here, there, Gone::Cancelled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_panicking_leader_frees_the_fill_lock_at_once() {
    let (here, there) = memory_pair();
    a_leader_that_goes_away_frees_the_lock_at_once(here, there, Gone::Panicked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_cancelled_leader_frees_the_fill_lock_at_once() {
    let server = RedisServer::start();
    let (here, there) = (redis_cache(&server).await, redis_cache(&server).await);
    a_leader_that_goes_away_frees_the_lock_at_once(here, there, Gone::Cancelled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_panicking_leader_frees_the_fill_lock_at_once() {
    let server = RedisServer::start();
    let (here, there) = (redis_cache(&server).await, redis_cache(&server).await);
    a_leader_that_goes_away_frees_the_lock_at_once(here, there, Gone::Panicked).await;
}

/// A hedged request: the first call is stuck in its load, and is still alive but never answers;
/// a second call for the same key, started 50 ms later, must answer after `lock_timeout` (300 ms)
/// plus one load.
///
/// Before the fix a follower waited for its leader's landing without a bound: the second call
/// joined the stuck first one and the hedge never answered at all.
async fn a_hedged_call_answers_while_the_first_is_stuck(cache: &Cache) {
    let db = Database::default();
    let mut first = Box::pin(hedged_row(cache, &db, Query::Hangs, 7));
    let hedge = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        // On a slow machine the first call may not have reached its load within 50 ms; the
        // scenario is a hedge behind a call that is loading.
        db.started.notified().await;
        hedged_row(cache, &db, Query::Answers, 7).await
    };
    let started = Instant::now();
    let answered = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::select! {
            value = &mut first => value,
            value = hedge => value,
        }
    })
    .await;
    let took = started.elapsed();
    let value = answered.expect("the hedge never answered: it waited for the stuck first call");

    assert_eq!(value, 70);
    assert_eq!(db.reads(), 2, "the stuck load and the hedge's own");
    let stats = cache.stats();
    assert_eq!(
        (stats.coalesced, stats.lock_timeouts, stats.loads),
        (1, 1, 2),
        "the hedge joined the first load, gave up after lock_timeout and loaded: {stats:?}"
    );
    assert!(took < AT_ONCE, "the hedge answered after {took:?}");

    // The first call was alive, unanswered, all along; dropping it now is its cancellation.
    drop(first);
    assert_eq!(cache.stats().loads_cancelled, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_a_hedged_call_answers_while_the_first_is_stuck() {
    let (cache, _) = memory_pair();
    a_hedged_call_answers_while_the_first_is_stuck(&cache).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_hedged_call_answers_while_the_first_is_stuck() {
    let server = RedisServer::start();
    let cache = redis_cache(&server).await;
    a_hedged_call_answers_while_the_first_is_stuck(&cache).await;
}

/// The loads of a scripted run are counted exactly: started, cancelled mid-load, panicked.
///
/// Before the fix `loads` was counted when a load finished, so a cancelled or panicking loader
/// was not counted at all (`loads` would be 2 here, not 4), and neither kind had a counter.
async fn loads_started_cancelled_and_panicked_are_counted(cache: &Cache) {
    let db = Arc::new(Database::default());

    assert_eq!(row(cache, &db, Query::Answers, 1).await, 10);
    assert_eq!(row(cache, &db, Query::Answers, 1).await, 10, "a hit");

    // The caller gives up as soon as the load is under way.
    tokio::select! {
        _ = row(cache, &db, Query::Hangs, 2) => panic!("a hung load answered"),
        _ = db.started.notified() => {}
    }

    let panicked = {
        let (cache, db) = (cache.clone(), Arc::clone(&db));
        tokio::spawn(async move { row(&cache, &db, Query::Panics, 3).await })
    };
    assert!(panicked.await.expect_err("the loader panicked").is_panic());

    // The cancelled load stored nothing: its key loads again.
    assert_eq!(row(cache, &db, Query::Answers, 2).await, 20);

    let stats = cache.stats();
    assert_eq!(db.reads(), 4);
    assert_eq!(
        (
            stats.loads,
            stats.loads_cancelled,
            stats.loads_panicked,
            stats.hits,
            stats.misses
        ),
        (4, 1, 1, 1, 4),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_loads_started_cancelled_and_panicked_are_counted() {
    let (cache, _) = memory_pair();
    loads_started_cancelled_and_panicked_are_counted(&cache).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_loads_started_cancelled_and_panicked_are_counted() {
    let server = RedisServer::start();
    let cache = redis_cache(&server).await;
    loads_started_cancelled_and_panicked_are_counted(&cache).await;
}

/// A body with no `.await`: a call whose reads the open breaker skips completes in its first
/// poll, so a call still pending after one poll is one whose command was sent.
#[cached(ttl = 60, key = "square:<n>", tags = ["squares"], cache = cache)]
async fn square(cache: &Cache, loads: &AtomicUsize, n: u64) -> u64 {
    loads.fetch_add(1, SeqCst);
    n * n
}

/// Redis stops answering, the breaker opens, an invalidation is queued, and the call that carries
/// the breaker's probe is cancelled in flight; then Redis is restarted on its port. Caching must
/// resume within a bounded number of calls, and the queued invalidation be replayed.
///
/// Before the fix the probe was a flag set on admission and cleared only by the probe's outcome:
/// a probe whose command was dropped before it answered left the flag set, every later command
/// was skipped as "probe in flight", and the breaker never closed again. No call ever reached
/// Redis again: no hit, and the queued invalidation was never replayed.
#[tokio::test]
async fn a_cancelled_breaker_probe_does_not_keep_the_breaker_open() {
    const COOL_DOWN: Duration = Duration::from_millis(100);
    let mut server = RedisServer::start();
    let cache = Cache::builder()
        .operation_timeout(Duration::from_millis(100))
        .connect_timeout(Duration::from_millis(100))
        .circuit_breaker(3, COOL_DOWN)
        .redis(&server.url())
        .await
        .unwrap();
    let loads = AtomicUsize::new(0);
    assert_eq!(square(&cache, &loads, 4).await, 16);
    assert_eq!(square(&cache, &loads, 4).await, 16);
    assert_eq!(cache.stats().hits, 1);

    // Frozen rather than killed: commands to a killed server fail at once (connection refused),
    // so a probe is seldom in flight long enough to be cancelled; to a frozen one each waits for
    // an answer, as they do on a server that hangs before its supervisor restarts it.
    server.freeze();
    let mut calls = 0;
    while !cache.stats().breaker_open {
        calls += 1;
        assert!(calls <= 20, "the breaker never opened: {:?}", cache.stats());
        assert_eq!(square(&cache, &loads, 4).await, 16);
    }
    assert!(cache.invalidate_tag("squares").await.is_err());
    assert_eq!(cache.stats().invalidations_queued, 1);

    // The replay of the queued invalidation competes for the probe; try until a call gets it.
    let mut probe_cancelled = false;
    for _ in 0..50 {
        tokio::time::sleep(COOL_DOWN + Duration::from_millis(20)).await;
        assert!(cache.stats().breaker_open, "a frozen server closed nothing");
        let errors = cache.stats().errors;
        if tokio::time::timeout(Duration::ZERO, square(&cache, &loads, 4))
            .await
            .is_err()
        {
            assert_eq!(
                cache.stats().errors,
                errors,
                "the probe was dropped, not failed"
            );
            probe_cancelled = true;
            break;
        }
    }
    assert!(probe_cancelled, "no call ever carried the probe");

    server.restart();
    let hits = cache.stats().hits;
    let mut calls = 0;
    while cache.stats().hits == hits {
        calls += 1;
        assert!(
            calls <= 200,
            "caching never resumed after the restart: {:?}",
            cache.stats()
        );
        assert_eq!(square(&cache, &loads, 4).await, 16);
        // Lets the cool-down pass between calls: the bound is on calls, not on time.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = cache.stats();
    assert!(!stats.breaker_open, "{stats:?}");
    assert!(stats.breaker_trips >= 1, "{stats:?}");
    wait_until("the queued invalidation was replayed", || {
        cache.stats().invalidations_replayed == 1
    })
    .await;
}

#[cached(ttl = 60, key = "paused:<id>", cache = cache)]
async fn paused_row(cache: &Cache, loads: &AtomicUsize, id: u64) -> u64 {
    loads.fetch_add(1, SeqCst);
    id
}

/// A lock request that times out on the client but runs on the server later must not hold up
/// the next caller for the lock's ttl. `CLIENT PAUSE 300 WRITE` stalls the script that takes the
/// lock (reads still answer): the call times out after its 50 ms operation timeout and loads
/// without the lock; 300 ms later the server runs the script and takes the lock for no one.
///
/// Before the fix nobody freed that lock: the next miss on the key, in any process, found it and
/// waited about 5 s, until it expired, for a value that never came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_taken_after_its_request_timed_out_is_freed() {
    let server = RedisServer::start();
    let first = Cache::builder()
        .operation_timeout(Duration::from_millis(50))
        .redis(&server.url())
        .await
        .unwrap();
    let loads = AtomicUsize::new(0);
    // Scripts are cached server-wide. One not cached yet would answer NOSCRIPT after the pause and
    // take no lock at all, and the scenario would prove nothing: run the fill scripts and the
    // unlock script once first.
    assert_eq!(paused_row(&first, &loads, 0).await, 0);
    let warm_up = RedisBackend::new(
        &server.url(),
        Duration::from_secs(1),
        Duration::from_secs(1),
    )
    .expect("a well-formed URL");
    warm_up
        .unlock("warm-up#lock", "no-token")
        .await
        .expect("the unlock script runs");

    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(5)));
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("the server answers");
    let () = redis::cmd("CLIENT")
        .arg(&["PAUSE", "300", "WRITE"])
        .query_async(&mut raw)
        .await
        .expect("CLIENT PAUSE");
    assert_eq!(paused_row(&first, &loads, 1).await, 1);
    let stats = first.stats();
    assert!(stats.errors >= 1, "the lock request timed out: {stats:?}");
    assert_eq!(loads.load(SeqCst), 2, "the call loaded without the lock");

    // A write from another client is held until the pause ends, after the commands queued before
    // it: when it answers, the stalled lock script has run.
    let () = redis::cmd("SET")
        .arg(&["pause-over", "1"])
        .query_async(&mut raw)
        .await
        .expect("SET after the pause");

    let second = redis_cache(&server).await;
    let started = Instant::now();
    assert_eq!(paused_row(&second, &loads, 1).await, 1);
    let took = started.elapsed();
    let stats = second.stats();
    assert_eq!(
        (stats.lock_waits, stats.lock_timeouts, stats.loads),
        (0, 0, 1),
        "the second process met a left-over lock: {stats:?}"
    );
    assert_eq!(loads.load(SeqCst), 3);
    assert!(took < AT_ONCE, "the second process answered after {took:?}");
}

#[cache_invalidate(keys = ["item:<id>"], cache = cache)]
async fn remove_item(cache: &Cache, id: u64) -> u64 {
    id
}

/// The `suppressed=N` field of a log line.
fn suppressed(line: &str) -> u64 {
    let (_, after) = line
        .split_once("suppressed=")
        .unwrap_or_else(|| panic!("no suppressed count in {line:?}"));
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().expect("a count")
}

const INVALIDATION_FAILED: &str = "invalidation failed; queued for retry";

/// During an outage, thousands of failed invalidations from `Cache::delete` and
/// `#[cache_invalidate]` (one call site in the runtime) log one `WARN` line; ten seconds later
/// the next failure logs the next line, with the count of those left out in between.
///
/// Before the fix each failed invalidation logged its own `WARN` line: 3,000 lines here, a log
/// flooded at the rate of the traffic for as long as Redis was down.
///
/// The throttle is per call site and per process, so no other test in this file invalidates by
/// key: its failures would spend this call site's budget and change the count.
#[tokio::test]
async fn failed_invalidations_during_an_outage_log_one_warning_per_ten_seconds() {
    const DELETES: u64 = 2_000;
    const INVALIDATIONS: u64 = 1_000;
    let mut server = RedisServer::start();
    let cache = Cache::builder()
        .operation_timeout(Duration::from_millis(50))
        .connect_timeout(Duration::from_millis(50))
        .redis(&server.url())
        .await
        .unwrap();
    server.kill();
    let logs = CapturedLogs::start();

    assert!(cache.delete("item:0").await.is_err());
    let first_line_by = Instant::now();
    for id in 1..DELETES {
        assert!(cache.delete(&format!("item:{id}")).await.is_err());
    }
    for id in 0..INVALIDATIONS {
        assert_eq!(remove_item(&cache, id).await, id);
    }
    let lines = logs.warnings(INVALIDATION_FAILED);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(suppressed(&lines[0]), 0);
    assert!(
        cache.stats().invalidations_queued >= DELETES,
        "every failed invalidation was queued: {:?}",
        cache.stats()
    );

    // The promise is about time: the next line may come ten seconds after the first.
    tokio::time::sleep_until((first_line_by + Duration::from_millis(10_100)).into()).await;
    assert!(cache.delete("item:last").await.is_err());
    let lines = logs.warnings(INVALIDATION_FAILED);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!(
        suppressed(&lines[1]),
        DELETES + INVALIDATIONS - 1,
        "the second line counts every failure left out since the first: {}",
        lines[1]
    );
}

#[cached(ttl = "1h", key = "left:<id>", tags = ["pair:<id>"], cache = cache)]
async fn left(cache: &Cache, db: &AtomicUsize, id: u64) -> usize {
    let _ = id;
    db.load(SeqCst)
}

#[cached(ttl = "1h", key = "right:<id>", cache = cache)]
async fn right(cache: &Cache, db: &AtomicUsize, id: u64) -> usize {
    let _ = id;
    db.load(SeqCst)
}

/// Writes the row, tells the test the database has changed, then invalidates two keys and a
/// tag: three cache operations, each a round trip on Redis.
#[cache_invalidate(keys = ["left:<id>", "right:<id>"], tags = ["pair:<id>"], cache = cache)]
async fn write_pair(cache: &Cache, db: &AtomicUsize, written: &Notify, id: u64) -> u64 {
    db.fetch_add(1, SeqCst);
    written.notify_one();
    id
}

/// A write whose caller goes away right after its database write, while its invalidations are
/// under way: the invalidations still complete, so the old entries do not outlive the write.
///
/// Before the fix the invalidations ran in the caller's future: dropped after the first `DEL`
/// was sent, the second key and the tag kept their old entries for their whole ttl (an hour).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_dropped_after_its_database_write_still_invalidates() {
    let server = RedisServer::start();
    let cache = redis_cache(&server).await;
    let db = AtomicUsize::new(0);
    assert_eq!(
        (left(&cache, &db, 1).await, right(&cache, &db, 1).await),
        (0, 0)
    );
    // On a loaded machine the invalidations may all finish before the caller is dropped: then
    // the write is simply made again, until one is dropped mid-way.
    let mut dropped = false;
    for _ in 0..20 {
        let written = Notify::new();
        tokio::select! {
            biased;
            _ = write_pair(&cache, &db, &written, 1) => continue,
            () = written.notified() => {}
        }
        dropped = true;
        break;
    }
    assert!(dropped, "no write was dropped mid-way in 20 attempts");
    let version = db.load(SeqCst);
    assert!(version >= 1, "the database write happened");
    // The dropped call's invalidations finish in a task of their own; wait for them by their
    // effect, never for a fixed time.
    let db = &db;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = (left(&cache, db, 1).await, right(&cache, db, 1).await);
        if seen == (version, version) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the old entries outlived the write: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

//! What the fill guard, the tag epochs and the single flight promise together: a call that
//! starts after an invalidation or a write has returned never gets what the data was before it,
//! whatever loads were in flight, however the calls race, and however long a sliding entry lives;
//! and a failed load leaves nothing behind.
//!
//! Each case names the defect of the earlier design (integer versions bumped by invalidations,
//! per-tag indexes of keys, loads joined by any later caller) that it would have caught.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachemacro_runtime::backend::{Backend, VERSION_TTL};
use cachemacro_runtime::{cache_invalidate, cache_put, cached, Cache};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// The database stand-in: a version number per row, a count of reads, a switch that makes queries
/// fail, and a gate that holds reads after they read their row.
#[derive(Default)]
pub struct Db {
    rows: Mutex<HashMap<u64, u64>>,
    reads: AtomicUsize,
    last_read: Mutex<Option<Instant>>,
    failing: AtomicBool,
    gate: Mutex<Option<Arc<Semaphore>>>,
    /// How many times a query gives other tasks a turn after its read (at least once).
    turns: AtomicUsize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Unavailable;

impl Db {
    fn with(rows: &[(u64, u64)]) -> Arc<Self> {
        let db = Db::default();
        db.rows.lock().unwrap().extend(rows.iter().copied());
        Arc::new(db)
    }

    fn write(&self, id: u64, version: u64) {
        self.rows.lock().unwrap().insert(id, version);
    }

    async fn read(&self, id: u64) -> Option<u64> {
        self.reads.fetch_add(1, SeqCst);
        *self.last_read.lock().unwrap() = Some(Instant::now());
        let row = self.rows.lock().unwrap().get(&id).copied();
        let gate = self.gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.acquire().await.unwrap().forget();
        }
        // A real query gives other tasks a turn between its read and the caller's store: so
        // races between loads and invalidations happen here too, not only across threads.
        for _ in 0..self.turns.load(SeqCst).max(1) {
            tokio::task::yield_now().await;
        }
        row
    }

    async fn query(&self, id: u64) -> Result<u64, Unavailable> {
        if self.failing.load(SeqCst) {
            self.reads.fetch_add(1, SeqCst);
            tokio::task::yield_now().await;
            return Err(Unavailable);
        }
        self.read(id).await.ok_or(Unavailable)
    }

    fn reads(&self) -> usize {
        self.reads.load(SeqCst)
    }

    /// How long ago the last read was: the age of the value a cache holds.
    fn since_last_read(&self) -> Duration {
        self.last_read.lock().unwrap().expect("a read").elapsed()
    }

    /// From now on, each read waits for a permit of the returned gate after reading its row.
    fn hold(&self) -> Arc<Semaphore> {
        let gate = Arc::new(Semaphore::new(0));
        *self.gate.lock().unwrap() = Some(Arc::clone(&gate));
        gate
    }

    /// Lets the held read go, and no longer holds reads.
    fn release(&self, gate: &Semaphore) {
        *self.gate.lock().unwrap() = None;
        gate.add_permits(1);
    }
}

/// Polls `condition` until it holds; a condition still false after 10 s is a failure.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

const SHELF: [u64; 3] = [1, 2, 3];

#[cached(ttl = 60, key = "item:<id>", tags = ["shelf:<shelf>"], cache = cache)]
async fn get_item(cache: &Cache, db: &Db, id: u64, shelf: u64) -> Option<u64> {
    db.read(id).await
}

#[cached(ttl = 60, key = "plain:<id>", cache = cache)]
async fn get_plain(cache: &Cache, db: &Db, id: u64) -> Option<u64> {
    db.read(id).await
}

#[cache_invalidate(keys = ["item:<id>"], cache = cache)]
async fn update_item(cache: &Cache, db: &Db, id: u64, version: u64) {
    db.write(id, version);
}

/// A write-through whose write commits but which reports a failure all the same (a timeout after
/// the commit, say): on `Err` the cache removes the key instead of storing.
#[cache_put(ttl = 60, key = "item:<id>", tags = ["shelf:<shelf>"], cache = cache)]
async fn save_item_then_fail(
    cache: &Cache,
    db: &Db,
    id: u64,
    shelf: u64,
    version: u64,
) -> Result<Option<u64>, Unavailable> {
    db.write(id, version);
    Err(Unavailable)
}

#[cache_invalidate(tags = ["shelf:<shelf>"], cache = cache)]
async fn restock(cache: &Cache, db: &Db, shelf: u64, version: u64) {
    for id in SHELF {
        db.write(id, version);
    }
}

/// Which call reads row 1 in the read-your-invalidations cases.
#[derive(Clone, Copy)]
enum Reader {
    Item,
    RefreshItem,
    Plain,
}

impl Reader {
    async fn call(self, cache: &Cache, db: &Db) -> Option<u64> {
        match self {
            Reader::Item => get_item(cache, db, 1, 7).await,
            Reader::RefreshItem => refresh_get_item(cache, db, 1, 7).await,
            Reader::Plain => get_plain(cache, db, 1).await,
        }
    }

    fn spawn(self, cache: &Cache, db: &Arc<Db>) -> JoinHandle<Option<u64>> {
        let (cache, db) = (cache.clone(), Arc::clone(db));
        tokio::spawn(async move { self.call(&cache, &db).await })
    }

    /// The plain read of the function this reader reaches.
    fn plain(self) -> Self {
        match self {
            Reader::RefreshItem => Reader::Item,
            reader => reader,
        }
    }
}

/// Calls that are waiting for another's load: in this process, or on its fill lock.
fn waits(cache: &Cache) -> u64 {
    let stats = cache.stats();
    stats.coalesced + stats.lock_waits
}

/// A load of row 1 (version 1) is held after its read; `change` writes the row and returns; then
/// a call through `reader` starts, and only once it is waiting for that held load (or is done)
/// is the load let go. The call must return `expected`, never version 1; the held load must not
/// store; and a read after all of it must still return `expected`.
async fn a_call_after(
    cache: &Cache,
    reader: Reader,
    change: impl AsyncFnOnce(&Cache, &Db),
    expected: Option<u64>,
) {
    let db = Db::with(&[(1, 1)]);
    let gate = db.hold();
    let held = reader.plain().spawn(cache, &db);
    until("the held load read its row", || db.reads() == 1).await;

    change(cache, db.as_ref()).await;
    let waits_before = waits(cache);
    let after = reader.spawn(cache, &db);
    until(
        "the later call waits for the held load, or is served",
        || after.is_finished() || waits(cache) > waits_before,
    )
    .await;
    db.release(&gate);

    assert_eq!(
        after.await.unwrap(),
        expected,
        "a call that started after the change returned got what the data was before it"
    );
    assert_eq!(
        held.await.unwrap(),
        Some(1),
        "the held load's own caller gets what it read"
    );
    assert_eq!(
        cache.stats().fills_discarded,
        1,
        "the held load stored nothing"
    );
    assert_eq!(reader.plain().call(cache, &db).await, expected);
}

/// Earlier design: the call after the invalidation joined the held load in this process's single
/// flight and returned version 1.
pub async fn a_call_after_cache_invalidate_never_joins_an_older_load<B: Backend>(
    cache: &Cache,
    _: &B,
) {
    a_call_after(
        cache,
        Reader::Item,
        async |cache, db| update_item(cache, db, 1, 2).await,
        Some(2),
    )
    .await;
}

/// Earlier design: as for `#[cache_invalidate]`: a failed write-through removes the key the same
/// way, and the call after it joined the held load. (A write-through that stores its value is
/// read back as a hit in either design.)
pub async fn a_call_after_a_failed_write_through_never_joins_an_older_load<B: Backend>(
    cache: &Cache,
    _: &B,
) {
    a_call_after(
        cache,
        Reader::Item,
        async |cache, db| {
            let saved = save_item_then_fail(cache, db, 1, 7, 2).await;
            assert_eq!(saved, Err(Unavailable));
        },
        Some(2),
    )
    .await;
}

/// Earlier design: the call after `Cache::delete` joined the held load and returned version 1.
pub async fn a_call_after_delete_never_joins_an_older_load<B: Backend>(cache: &Cache, _: &B) {
    a_call_after(
        cache,
        Reader::Item,
        async |cache, db| {
            db.write(1, 2);
            cache.delete("item:1").await.unwrap();
        },
        Some(2),
    )
    .await;
}

/// `Cache::set` voids older fills like a write-through. Earlier design: `set` was a raw write that
/// left the version alone, so the held load, released after it, overwrote the new value with
/// version 1, and every read after that returned it.
pub async fn set_voids_an_older_fill<B: Backend>(cache: &Cache, _: &B) {
    a_call_after(
        cache,
        Reader::Plain,
        async |cache, db| {
            db.write(1, 2);
            let ttl = Duration::from_secs(60);
            cache.set("plain:1", &Some(2u64), ttl).await.unwrap();
        },
        Some(2),
    )
    .await;
    assert_eq!(
        cache.get::<Option<u64>>("plain:1").await.unwrap(),
        Some(Some(2)),
        "what `set` stored is still there"
    );
}

/// `refresh_get_item` after a write: it invalidates the key, then calls `get_item`. Earlier
/// design: that call joined the held load and the refresh returned version 1.
pub async fn refresh_after_a_write_never_returns_an_older_load<B: Backend>(cache: &Cache, _: &B) {
    a_call_after(
        cache,
        Reader::RefreshItem,
        async |_, db| db.write(1, 2),
        Some(2),
    )
    .await;
}

/// `refresh_get_item` after a write and the invalidation of its tag. Earlier design: neither
/// invalidation kept the refresh's call from joining the held load.
pub async fn refresh_after_an_invalidation_never_returns_an_older_load<B: Backend>(
    cache: &Cache,
    _: &B,
) {
    a_call_after(
        cache,
        Reader::RefreshItem,
        async |cache, db| {
            db.write(1, 2);
            cache.invalidate_tag("shelf:7").await.unwrap();
        },
        Some(2),
    )
    .await;
}

/// Rounds of a tag-invalidating write while two tasks keep reading the shelf. After each write
/// returns, a read of one item (each in turn) must see it, and no racing read may return a
/// version older than the last one acknowledged before it started. Earlier design: reads joined
/// loads that began before the write, and `invalidate_tag` could drop from the tag's index a key
/// whose fill registered it again meanwhile, leaving that entry out of every later invalidation.
pub async fn tag_invalidations_racing_reads_never_leave_an_older_version<B: Backend>(
    cache: &Cache,
    _: &B,
) {
    // A round costs microseconds on the embedded store, whose races need thousands of rounds to
    // meet; on Redis, where each costs round trips, 200.
    let rounds = if crate::on_redis() { 200 } else { 5000 };
    let db = Db::with(&SHELF.map(|id| (id, 0)));
    // Slow loads: each is likely still in flight when the next write comes.
    db.turns.store(50, SeqCst);
    let acknowledged = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (cache, db) = (cache.clone(), Arc::clone(&db));
            let (acknowledged, done) = (Arc::clone(&acknowledged), Arc::clone(&done));
            tokio::spawn(async move {
                let (mut reads, mut stale) = (0u64, Vec::new());
                while !done.load(SeqCst) {
                    for id in SHELF {
                        let floor = acknowledged.load(SeqCst);
                        let got = get_item(&cache, &db, id, 7).await;
                        if got < Some(floor) {
                            stale.push((id, floor, got));
                        }
                        reads += 1;
                    }
                    // A hit on the embedded store never suspends: without this, readers that
                    // only hit would hold both workers and starve the writer.
                    tokio::task::yield_now().await;
                }
                (reads, stale)
            })
        })
        .collect();

    let mut stale_after_write = Vec::new();
    for version in 1..=rounds {
        restock(cache, &db, 7, version).await;
        acknowledged.store(version, SeqCst);
        let id = SHELF[version as usize % SHELF.len()];
        let got = get_item(cache, &db, id, 7).await;
        if got != Some(version) {
            stale_after_write.push((id, version, got));
        }
    }
    done.store(true, SeqCst);
    let (mut racing_reads, mut racing_stale) = (0, Vec::new());
    for reader in readers {
        let (reads, stale) = reader.await.unwrap();
        racing_reads += reads;
        racing_stale.extend(stale);
    }
    assert!(
        stale_after_write.is_empty(),
        "{} reads after a write returned missed it; (item, written, got): {:?}",
        stale_after_write.len(),
        &stale_after_write[..stale_after_write.len().min(10)]
    );
    assert!(
        racing_stale.is_empty(),
        "{} of {racing_reads} racing reads returned an older version than acknowledged before \
         they started; (item, acknowledged, got): {:?}",
        racing_stale.len(),
        &racing_stale[..racing_stale.len().min(10)]
    );
    assert!(racing_reads > 0);
}

#[cached(
    ttl = "500ms",
    lock_timeout = "100ms",
    sliding = true,
    key = "session:<id>",
    tags = ["user:<user>"],
    cache = cache
)]
async fn session(cache: &Cache, db: &Db, id: u64, user: u64) -> Option<u64> {
    db.read(id).await
}

/// Earlier design: the tag's index scored the key with the expiry known at fill time (ttl plus
/// lock timeout, 600 ms here) and expired with it, so an entry kept alive by reads past that was
/// beyond `invalidate_tag`'s reach and kept serving version 1.
pub async fn invalidate_tag_reaches_a_sliding_entry_read_past_its_ttl<B: Backend>(
    cache: &Cache,
    _: &B,
) {
    let db = Db::with(&[(1, 1)]);
    keep_alive_past("session", &db, Duration::from_millis(1250), async || {
        assert_eq!(session(cache, &db, 1, 3).await, Some(1));
    })
    .await;
    db.write(1, 2);
    cache.invalidate_tag("user:3").await.unwrap();
    assert_eq!(session(cache, &db, 1, 3).await, Some(2));
}

/// Reads through `read` every 50 ms until the value served was loaded more than `age` ago: the
/// entry lived that long through reads alone. A pause longer than the ttl (a busy machine) lets
/// the entry expire and reload, which only restarts the wait.
async fn keep_alive_past(what: &str, db: &Db, age: Duration, mut read: impl AsyncFnMut()) {
    let deadline = Instant::now() + Duration::from_secs(30);
    read().await;
    while db.since_last_read() <= age {
        assert!(Instant::now() < deadline, "{what} never lived {age:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        read().await;
    }
}

#[cached(
    ttl = "1h",
    negative_ttl = "400ms",
    sliding = true,
    key = "profile:<id>",
    cache = cache
)]
async fn profile(cache: &Cache, db: &Db, id: u64) -> Option<u64> {
    db.read(id).await
}

/// A sliding read restarts an entry at the function's ttl; a cached `None` must go back to its
/// own. Earlier design: the first sliding read stored the `None` again for the positive ttl (an
/// hour here), so a row created afterwards stayed invisible for that hour.
pub async fn a_sliding_none_lives_its_negative_ttl<B: Backend>(cache: &Cache, _: &B) {
    let db = Db::with(&[]);
    // The second read must be a sliding hit for the check to mean anything: repeated until it
    // comes within the negative ttl of the first (a busy machine may pause longer).
    loop {
        assert_eq!(profile(cache, &db, 1).await, None);
        let stored = Instant::now();
        let reads = db.reads();
        assert_eq!(profile(cache, &db, 1).await, None);
        if db.reads() == reads {
            break;
        }
        assert!(
            stored.elapsed() > Duration::from_millis(400),
            "a None loaded again within its negative ttl"
        );
    }
    db.write(1, 1);
    // Three negative ttls without a read: far past 400 ms, far short of the hour.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        profile(cache, &db, 1).await,
        Some(1),
        "the cached None outlived its negative ttl"
    );
}

#[cached(ttl = "500ms", sliding = true, key = "visit:<id>", cache = cache)]
async fn visit(cache: &Cache, db: &Db, id: u64) -> Option<u64> {
    db.read(id).await
}

/// Earlier design: `Cache::get` judged every entry by the logical expiry written at fill time, so
/// a sliding entry kept alive by reads was `None` to it after one ttl.
pub async fn get_returns_a_live_sliding_entry_past_its_logical_expiry<B: Backend>(
    cache: &Cache,
    _: &B,
) {
    let ttl = Duration::from_millis(500);
    let db = Db::with(&[(1, 1)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        keep_alive_past("visit", &db, 2 * ttl, async || {
            assert_eq!(visit(cache, &db, 1).await, Some(1));
        })
        .await;
        let last_visit = Instant::now();
        let got = cache.get::<Option<u64>>("visit:1").await.unwrap();
        if last_visit.elapsed() < ttl {
            assert_eq!(got, Some(Some(1)), "a live sliding entry");
            break;
        }
        // Paused longer than the ttl since the last read: the entry may have expired.
        assert!(Instant::now() < deadline, "never read within its ttl");
    }
}

#[cached(ttl = 60, sliding = true, key = "token:<id>", cache = cache)]
async fn token(cache: &Cache, db: &Db, id: u64) -> Option<u64> {
    db.read(id).await
}

#[cached(ttl = 30, sliding = true, key = "token:<id>", cache = cache)]
async fn token_brief(cache: &Cache, db: &Db, id: u64) -> Option<u64> {
    db.read(id).await
}

#[cache_invalidate(keys = ["token:<id>"], cache = cache)]
async fn rotate_token(cache: &Cache, db: &Db, id: u64, version: u64) {
    db.write(id, version);
}

#[cache_put(ttl = 60, key = "token:<id>", cache = cache)]
async fn reissue_token(cache: &Cache, db: &Db, id: u64, version: u64) -> Option<u64> {
    db.write(id, version);
    Some(version)
}

/// A writer on a thread of its own cycles through `#[cache_invalidate]`, `#[cache_put]`,
/// `Cache::delete` and `Cache::set` while a task on a runtime worker keeps reading the key
/// through two sliding functions, with ttls of 60 s and 30 s. No read may return a version older
/// than one acknowledged before it started. Earlier design: the embedded store's sliding read
/// fetched an entry and, when it was not yet sliding or had another ttl (so here on every read),
/// stored it back in a second step, so an invalidation or write between the two was undone and
/// the revived entry kept being served.
pub async fn sliding_reads_racing_writes_never_revive_an_entry<B: Backend>(cache: &Cache, _: &B) {
    // Fewer on Redis, where each costs round trips.
    let rounds: u64 = if crate::on_redis() { 1000 } else { 2000 };
    let db = Db::with(&[(1, 0)]);
    let acknowledged = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (cache, db) = (cache.clone(), Arc::clone(&db));
        let (acknowledged, reads, done) = (
            Arc::clone(&acknowledged),
            Arc::clone(&reads),
            Arc::clone(&done),
        );
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            runtime.block_on(async move {
                for version in 1..=rounds {
                    match version % 4 {
                        0 => rotate_token(&cache, &db, 1, version).await,
                        1 => {
                            reissue_token(&cache, &db, 1, version).await;
                        }
                        2 => {
                            db.write(1, version);
                            cache.delete("token:1").await.unwrap();
                        }
                        _ => {
                            db.write(1, version);
                            let ttl = Duration::from_secs(60);
                            cache.set("token:1", &Some(version), ttl).await.unwrap();
                        }
                    }
                    acknowledged.store(version, SeqCst);
                    // Gives the reader time to finish a read before the next write, so that
                    // writes meet reads of the entries that the reader's fills and the writes
                    // left, not only misses. Bounded, not waited for: on a busy machine the
                    // reader may not run for a while, and a round without its read is merely
                    // less likely to meet one.
                    let target = reads.load(SeqCst) + 1;
                    let pause = Instant::now();
                    while reads.load(SeqCst) < target
                        && pause.elapsed() < Duration::from_micros(100)
                    {
                        std::hint::spin_loop();
                    }
                }
                done.store(true, SeqCst);
            })
        })
    };
    let reader = {
        let (cache, db, reads) = (cache.clone(), Arc::clone(&db), Arc::clone(&reads));
        tokio::spawn(async move {
            let mut stale = Vec::new();
            let mut brief = false;
            while !done.load(SeqCst) {
                brief = !brief;
                let floor = acknowledged.load(SeqCst);
                let got = if brief {
                    token_brief(&cache, &db, 1).await
                } else {
                    token(&cache, &db, 1).await
                };
                if got < Some(floor) {
                    stale.push((floor, got));
                }
                reads.fetch_add(1, SeqCst);
                // A hit on the embedded store never suspends: let the worker run other tasks.
                tokio::task::yield_now().await;
            }
            stale
        })
    };
    writer.await.unwrap();
    let stale = reader.await.unwrap();
    assert!(
        stale.is_empty(),
        "{} reads returned an older version than acknowledged before they started; \
         (acknowledged, got): {:?}",
        stale.len(),
        &stale[..stale.len().min(10)]
    );
    assert!(reads.load(SeqCst) > 0);
    assert_eq!(
        token(cache, &db, 1).await,
        Some(rounds),
        "the last write is what stays"
    );
}

#[cached(ttl = 60, key = "report:<id>", tags = ["shelf:<shelf>"], cache = cache)]
async fn report(cache: &Cache, db: &Db, id: u64, shelf: u64) -> Result<u64, Unavailable> {
    db.query(id).await
}

/// Each key of the store behind the running case, with its type and remaining ttl in ms
/// (`-1`: none); `None` on the embedded store.
async fn redis_keys() -> Option<BTreeMap<String, (String, i64)>> {
    let mut redis = crate::raw_redis().await?;
    let names: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut redis)
        .await
        .unwrap();
    let mut keys = BTreeMap::new();
    for name in names {
        let kind: String = redis::cmd("TYPE")
            .arg(&name)
            .query_async(&mut redis)
            .await
            .unwrap();
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&name)
            .query_async(&mut redis)
            .await
            .unwrap();
        keys.insert(name, (kind, ttl));
    }
    Some(keys)
}

/// Failed loads of tagged keys, alone and with 16 concurrent callers, repeated: each later call
/// runs the body again (no error or lock is left for it to find), and what the store holds
/// afterwards is one epoch per tag and, per key, at most a version that expires within
/// `VERSION_TTL`, the same after every round, and not added to by invalidating the tag. Earlier
/// design: each failed load added its key to the tag's index (a sorted set growing with the
/// number of failed keys), and `invalidate_tag` then created a version for every one of them.
pub async fn failed_tagged_loads_leave_nothing_readable_or_growing<B: Backend>(
    cache: &Cache,
    _: &B,
) {
    const KEYS: u64 = 20;
    let db = Db::with(&(1..=KEYS).map(|id| (id, 1)).collect::<Vec<_>>());
    db.failing.store(true, SeqCst);

    let callers: Vec<_> = (0..16)
        .map(|_| {
            let (cache, db) = (cache.clone(), Arc::clone(&db));
            tokio::spawn(async move { report(&cache, &db, 1, 7).await })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), Err(Unavailable));
    }

    let mut first_round = None;
    for round in 0..3 {
        let reads = db.reads();
        for id in 1..=KEYS {
            assert_eq!(report(cache, &db, id, 7).await, Err(Unavailable));
        }
        assert_eq!(
            db.reads() - reads,
            KEYS as usize,
            "round {round}: every call ran the body"
        );
        if let Some(keys) = redis_keys().await {
            let names: BTreeSet<String> = keys.keys().cloned().collect();
            let first = first_round.get_or_insert_with(|| names.clone());
            assert_eq!(&names, first, "round {round} left other keys than round 0");
            check_failed_load_leftovers(&keys, KEYS as usize);
        }
    }
    let stats = cache.stats();
    assert_eq!(
        (stats.lock_waits, stats.lock_timeouts),
        (0, 0),
        "no failed load left its fill lock"
    );
    for id in 1..=KEYS {
        let key = format!("report:{id}");
        assert_eq!(cache.get::<u64>(&key).await.unwrap(), None, "{key}");
    }

    let before = redis_keys().await;
    cache.invalidate_tag("shelf:7").await.unwrap();
    if let (Some(before), Some(after)) = (before, redis_keys().await) {
        let added: Vec<_> = after
            .keys()
            .filter(|key| !before.contains_key(*key))
            .collect();
        assert!(
            added.is_empty(),
            "invalidating the tag created keys: {added:?}"
        );
    }

    db.failing.store(false, SeqCst);
    let reads = db.reads();
    assert_eq!(report(cache, &db, 1, 7).await, Ok(1));
    assert_eq!(report(cache, &db, 1, 7).await, Ok(1));
    assert_eq!(
        db.reads() - reads,
        1,
        "a success after the failures is cached"
    );
}

/// What failed loads of `keys` keys tagged `shelf:7` may leave in Redis.
fn check_failed_load_leftovers(keys: &BTreeMap<String, (String, i64)>, failed: usize) {
    let mut versions = 0;
    for (name, (kind, ttl)) in keys {
        if name == "tag#shelf:7" {
            assert_eq!(kind, "string", "the tag's state is one token");
        } else if name.ends_with("#v") {
            assert_eq!(kind, "string", "{name}");
            let limit = VERSION_TTL.as_millis() as i64;
            assert!(
                *ttl > 0 && *ttl <= limit,
                "{name} lives {ttl} ms, not within {limit}"
            );
            versions += 1;
        } else {
            panic!("a failed load left {name} ({kind}, ttl {ttl} ms)");
        }
    }
    assert!(versions <= failed, "{versions} versions for {failed} keys");
}

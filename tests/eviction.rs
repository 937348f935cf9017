//! Redis taking the cache's keys away or refusing them, and Redis's own rules about keys: an
//! evicted version or tag epoch, an LRU-evicting server, a full `noeviction` server, a key of
//! another type, an ACL user confined to the cache's prefix, and Cluster hash slots. In each the
//! cache fails safe (a miss, a value not stored), never serves a value older than an
//! acknowledged write, and never waits for what it cannot have. Each test runs its own
//! `redis-server`; each names the defect of the earlier design (integer versions bumped by
//! invalidations, per-tag indexes of keys) that it would have caught.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachemacro_runtime::{cache_invalidate, cache_put, cached, Cache};
use cachemacro_tests::RedisServer;
use redis::aio::MultiplexedConnection;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    version: u64,
    body: String,
}

/// The database stand-in: a version per row, a count of reads, a gate that holds reads after
/// they read their row, and the size of each row's body.
#[derive(Default)]
struct Db {
    rows: Mutex<HashMap<u64, u64>>,
    reads: AtomicUsize,
    gate: Mutex<Option<Arc<Semaphore>>>,
    body: usize,
    /// How long each query takes after its read.
    latency: Duration,
}

impl Db {
    fn with(ids: impl IntoIterator<Item = u64>, version: u64) -> Arc<Self> {
        Self::with_body(ids, version, 0, Duration::ZERO)
    }

    /// Rows with a body of `body` bytes, each query taking `latency`.
    fn with_body(
        ids: impl IntoIterator<Item = u64>,
        version: u64,
        body: usize,
        latency: Duration,
    ) -> Arc<Self> {
        let db = Db {
            body,
            latency,
            ..Db::default()
        };
        db.rows
            .lock()
            .unwrap()
            .extend(ids.into_iter().map(|id| (id, version)));
        Arc::new(db)
    }

    fn write(&self, id: u64, version: u64) {
        self.rows.lock().unwrap().insert(id, version);
    }

    fn row(&self, id: u64) -> Option<Item> {
        let version = *self.rows.lock().unwrap().get(&id)?;
        Some(Item {
            version,
            body: "x".repeat(self.body),
        })
    }

    async fn read(&self, id: u64) -> Option<Item> {
        self.reads.fetch_add(1, SeqCst);
        let row = self.row(id);
        let gate = self.gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.acquire().await.unwrap().forget();
        }
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        row
    }

    fn reads(&self) -> usize {
        self.reads.load(SeqCst)
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

fn version(item: Option<Item>) -> Option<u64> {
    item.map(|item| item.version)
}

#[cached(ttl = 60, key = "item:<id>", tags = ["shelf:<shelf>"], cache = cache)]
async fn get_item(cache: &Cache, db: &Db, id: u64, shelf: u64) -> Option<Item> {
    db.read(id).await
}

#[cached(ttl = 60, key = "plain:<id>", cache = cache)]
async fn get_plain(cache: &Cache, db: &Db, id: u64) -> Option<Item> {
    db.read(id).await
}

#[cached(ttl = 60, sliding = true, key = "session:<id>", cache = cache)]
async fn get_session(cache: &Cache, db: &Db, id: u64) -> Option<Item> {
    db.read(id).await
}

#[cache_invalidate(keys = ["item:<id>"], cache = cache)]
async fn update_item(cache: &Cache, db: &Db, id: u64, version: u64) {
    db.write(id, version);
}

#[cache_invalidate(tags = ["shelf:<shelf>"], cache = cache)]
async fn update_on_shelf(cache: &Cache, db: &Db, id: u64, shelf: u64, version: u64) {
    db.write(id, version);
}

#[cache_put(ttl = 60, key = "item:<id>", tags = ["shelf:<shelf>"], cache = cache)]
async fn put_item(cache: &Cache, db: &Db, id: u64, shelf: u64, version: u64) -> Option<Item> {
    db.write(id, version);
    db.row(id)
}

/// A cache on `url`, with an operation timeout generous enough for a busy machine: these tests
/// check behaviour, not latency.
async fn cache_at(url: &str, prefix: &str) -> Cache {
    Cache::builder()
        .key_prefix(prefix)
        .operation_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(2))
        .redis(url)
        .await
        .unwrap()
}

/// A plain connection as the default user, for what the cache must survive or be checked by.
async fn admin(server: &RedisServer) -> MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("the test server answers")
}

async fn keys(admin: &mut MultiplexedConnection, pattern: &str) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(pattern)
        .query_async(admin)
        .await
        .unwrap()
}

/// Deletes every key matching `pattern`, as an eviction would; how many there were.
async fn evict(admin: &mut MultiplexedConnection, pattern: &str) -> usize {
    let found = keys(admin, pattern).await;
    if !found.is_empty() {
        let _: usize = redis::cmd("DEL")
            .arg(&found)
            .query_async(admin)
            .await
            .unwrap();
    }
    found.len()
}

/// A field of `INFO <section>` as a number.
async fn info(admin: &mut MultiplexedConnection, section: &str, field: &str) -> u64 {
    let text: String = redis::cmd("INFO")
        .arg(section)
        .query_async(admin)
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("INFO {section} has no {field}"))
        .trim()
        .parse()
        .unwrap()
}

async fn config_set(admin: &mut MultiplexedConnection, name: &str, value: impl ToString) {
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value.to_string())
        .query_async(admin)
        .await
        .unwrap();
}

/// Polls `condition` until it holds; a condition still false after 10 s is a failure.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A fill of item 1 is held after it read version 1; the row is written and the key invalidated;
/// then the key's version is evicted. Earlier design: the fill had read no version (none
/// existed: '' to it), the invalidation created version 1, the eviction made it '' again, and the
/// fill compared equal and stored version 1 over the write. Now a version that is missing when a
/// fill ends refuses its store, whatever happened in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_version_makes_an_older_fill_refuse_to_store() {
    let server = RedisServer::start();
    let cache = cache_at(&server.url(), "").await;
    let mut admin = admin(&server).await;
    let db = Db::with([1], 1);

    let gate = db.hold();
    let held = {
        let (cache, db) = (cache.clone(), Arc::clone(&db));
        tokio::spawn(async move { get_item(&cache, &db, 1, 7).await })
    };
    until("the held fill read its row", || db.reads() == 1).await;
    update_item(&cache, &db, 1, 2).await;
    evict(&mut admin, "*#v").await;
    db.release(&gate);
    assert_eq!(version(held.await.unwrap()), Some(1));
    assert_eq!(
        cache.stats().fills_discarded,
        1,
        "the held fill stored nothing"
    );
    assert_eq!(version(get_item(&cache, &db, 1, 7).await), Some(2));
    assert_eq!(db.reads(), 2);

    // Without any write: a fill whose version is evicted under it does not store either (it
    // cannot tell an eviction from an invalidation), so the next call loads again.
    cache.delete("item:1").await.unwrap();
    let gate = db.hold();
    let held = {
        let (cache, db) = (cache.clone(), Arc::clone(&db));
        tokio::spawn(async move { get_item(&cache, &db, 1, 7).await })
    };
    until("the second held fill read its row", || db.reads() == 3).await;
    assert_eq!(
        evict(&mut admin, "*#v").await,
        1,
        "the fill created a version"
    );
    db.release(&gate);
    assert_eq!(version(held.await.unwrap()), Some(2));
    assert_eq!(cache.stats().fills_discarded, 2);
    assert_eq!(version(get_item(&cache, &db, 1, 7).await), Some(2));
    assert_eq!(db.reads(), 4, "nothing was stored, so the next call loaded");
}

/// Earlier design: the tag's state was an index of its keys; once evicted, entries still hit,
/// and `invalidate_tag` found no key to invalidate, so the entry kept serving version 1 after the
/// write. Now an entry whose tag has no epoch is a miss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_tag_epoch_makes_tagged_entries_misses() {
    let server = RedisServer::start();
    let cache = cache_at(&server.url(), "").await;
    let mut admin = admin(&server).await;
    let db = Db::with([1], 1);

    assert_eq!(version(get_item(&cache, &db, 1, 7).await), Some(1));
    assert_eq!(evict(&mut admin, "tag#shelf:7").await, 1);
    assert_eq!(
        cache.get::<Option<Item>>("item:1").await.unwrap(),
        None,
        "`Cache::get` sees the entry's tag gone"
    );
    assert_eq!(version(get_item(&cache, &db, 1, 7).await), Some(1));
    assert_eq!(db.reads(), 2, "the entry was a miss and was loaded again");

    // The epoch that reload created is evicted too, before a write and its tag invalidation.
    assert_eq!(evict(&mut admin, "tag#shelf:7").await, 1);
    db.write(1, 2);
    cache.invalidate_tag("shelf:7").await.unwrap();
    assert_eq!(version(get_item(&cache, &db, 1, 7).await), Some(2));
}

/// A tiny deterministic generator, so each task draws its own sequence without a shared RNG.
struct Draw(u64);

impl Draw {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// Fills, reads and three kinds of writes (invalidation by key, by tag, write-through) on a
/// server that evicts any key when it runs out of its 1 MiB: entries, versions, tag epochs and
/// locks all go. No read may return a version older than one acknowledged before it started.
/// Earlier design: reads joined loads that began before a write, and an evicted version (or tag
/// index) let such a load store its older value afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_lru_evicting_server_never_serves_a_stale_value() {
    const IDS: u64 = 400;
    // Half the reads and writes go to a few hot items, so loads and writes of one item meet.
    const HOT: u64 = 4;
    const SHELVES: u64 = 8;
    const READERS: u64 = 8;
    const READS: u64 = 750;
    const WRITES: u64 = 1000;
    let server = RedisServer::start();
    let mut admin = admin(&server).await;
    let used = info(&mut admin, "memory", "used_memory").await;
    config_set(&mut admin, "maxmemory", used + 1024 * 1024).await;
    config_set(&mut admin, "maxmemory-policy", "allkeys-lru").await;
    let cache = cache_at(&server.url(), "").await;
    // 400 entries of 4 KB: more than the server holds. Queries of a millisecond keep loads in
    // flight while writes come.
    let db = Db::with_body(0..IDS, 0, 4096, Duration::from_millis(1));
    let acknowledged: Arc<Vec<AtomicU64>> = Arc::new((0..IDS).map(|_| AtomicU64::new(0)).collect());

    let readers: Vec<_> = (0..READERS)
        .map(|reader| {
            let (cache, db, acknowledged) =
                (cache.clone(), Arc::clone(&db), Arc::clone(&acknowledged));
            tokio::spawn(async move {
                let mut draw = Draw(reader + 1);
                let mut stale = Vec::new();
                for _ in 0..READS {
                    let range = if draw.below(2) == 0 { HOT } else { IDS };
                    let id = draw.below(range);
                    let floor = acknowledged[id as usize].load(SeqCst);
                    let got = version(get_item(&cache, &db, id, id % SHELVES).await);
                    if got < Some(floor) {
                        stale.push((id, floor, got));
                    }
                }
                stale
            })
        })
        .collect();
    let writer = {
        let (cache, db, acknowledged) = (cache.clone(), Arc::clone(&db), Arc::clone(&acknowledged));
        tokio::spawn(async move {
            let mut draw = Draw(0);
            for version in 1..=WRITES {
                let range = if draw.below(2) == 0 { HOT } else { IDS };
                let id = draw.below(range);
                let shelf = id % SHELVES;
                match version % 3 {
                    0 => update_item(&cache, &db, id, version).await,
                    1 => update_on_shelf(&cache, &db, id, shelf, version).await,
                    _ => {
                        put_item(&cache, &db, id, shelf, version).await;
                    }
                }
                acknowledged[id as usize].store(version, SeqCst);
            }
        })
    };
    writer.await.unwrap();
    let mut stale = Vec::new();
    for reader in readers {
        stale.extend(reader.await.unwrap());
    }
    let evicted = info(&mut admin, "stats", "evicted_keys").await;
    assert!(
        stale.is_empty(),
        "{} of {} reads returned an older version than acknowledged before they started; \
         (item, acknowledged, got): {:?}",
        stale.len(),
        READERS * READS,
        &stale[..stale.len().min(10)]
    );
    assert!(
        evicted > 0,
        "the server evicted nothing: the test proved nothing"
    );
    println!("{evicted} keys evicted; {:?}", cache.stats());
}

/// Sets big values from a raw client under `noeviction` until the server answers OOM, then puts
/// the limit under what is used, so that the little that deletes free never makes room again.
async fn fill_memory(admin: &mut MultiplexedConnection) {
    let used = info(admin, "memory", "used_memory").await;
    config_set(admin, "maxmemory-policy", "noeviction").await;
    config_set(admin, "maxmemory", used + 2 * 1024 * 1024).await;
    let ballast = vec![b'x'; 100 * 1024];
    for n in 0..1000 {
        let set: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("ballast:{n}"))
            .arg(&ballast)
            .query_async(admin)
            .await;
        if let Err(error) = set {
            assert!(
                error.to_string().contains("OOM"),
                "not an out-of-memory error: {error}"
            );
            let used = info(admin, "memory", "used_memory").await;
            config_set(admin, "maxmemory", used - 512 * 1024).await;
            return;
        }
    }
    panic!("the server never ran out of memory");
}

/// Memory full under `noeviction`: every write is refused, deletes still work. Invalidations
/// must take effect (or, called directly, fail and be queued), and misses must return their
/// loader's value without waiting for a lock. Earlier design: an invalidation bumped its version
/// with `INCR`, which a full server refuses, so the entry stayed and served version 1 (and was not
/// queued: the server was up); and a fill that ended out of memory failed before freeing its
/// lock, so the next miss of its key waited for the lock's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_noeviction_server_still_invalidates_and_never_makes_a_miss_wait() {
    let server = RedisServer::start();
    let cache = cache_at(&server.url(), "").await;
    let mut admin = admin(&server).await;
    let db = Db::with(1..=5, 1);
    for id in 1..=3 {
        assert_eq!(version(get_item(&cache, &db, id, id).await), Some(1));
    }
    let gate = db.hold();
    let held = {
        let (cache, db) = (cache.clone(), Arc::clone(&db));
        tokio::spawn(async move { get_item(&cache, &db, 5, 5).await })
    };
    until("the held fill read its row", || db.reads() == 4).await;
    fill_memory(&mut admin).await;
    db.release(&gate);
    assert_eq!(version(held.await.unwrap()), Some(1));

    update_item(&cache, &db, 1, 2).await;
    assert_eq!(
        cache.get::<Option<Item>>("item:1").await.unwrap(),
        None,
        "`#[cache_invalidate]` took effect"
    );
    assert_eq!(version(get_item(&cache, &db, 1, 1).await), Some(2));

    db.write(2, 2);
    let queued = cache.stats().invalidations_queued;
    match cache.delete("item:2").await {
        Ok(()) => assert_eq!(cache.get::<Option<Item>>("item:2").await.unwrap(), None),
        Err(error) => assert_eq!(
            cache.stats().invalidations_queued,
            queued + 1,
            "failed ({error}) and not queued"
        ),
    }

    db.write(3, 2);
    let queued = cache.stats().invalidations_queued;
    match cache.invalidate_tag("shelf:3").await {
        Ok(_) => assert_eq!(version(get_item(&cache, &db, 3, 3).await), Some(2)),
        Err(error) => assert_eq!(
            cache.stats().invalidations_queued,
            queued + 1,
            "failed ({error}) and not queued"
        ),
    }

    assert_eq!(version(get_item(&cache, &db, 4, 4).await), Some(1));
    assert_eq!(version(get_item(&cache, &db, 5, 5).await), Some(1));
    let stats = cache.stats();
    assert_eq!(
        (stats.lock_waits, stats.lock_timeouts),
        (0, 0),
        "a miss waited for a lock: {stats:?}"
    );
    assert!(
        stats.errors > 0,
        "the server refused none of the cache's writes"
    );
}

/// A list pushed under each kind of cached key (plain, tagged, sliding) by a raw client. Earlier
/// design: the fill script's read of the entry failed on the list after it had taken the lock,
/// so the fill stored nothing and left its lock, and the next call waited for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_another_type_is_a_miss_that_gets_overwritten() {
    let server = RedisServer::start();
    let cache = cache_at(&server.url(), "").await;
    let mut admin = admin(&server).await;
    let db = Db::with([1], 1);
    for key in ["plain:1", "item:1", "session:1"] {
        let _: usize = redis::cmd("RPUSH")
            .arg(key)
            .arg("foreign")
            .query_async(&mut admin)
            .await
            .unwrap();
        let call = async || match key {
            "plain:1" => get_plain(&cache, &db, 1).await,
            "item:1" => get_item(&cache, &db, 1, 7).await,
            _ => get_session(&cache, &db, 1).await,
        };
        let reads = db.reads();
        assert_eq!(version(call().await), Some(1), "{key}");
        assert_eq!(db.reads(), reads + 1, "{key}: loaded");
        let kind: String = redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut admin)
            .await
            .unwrap();
        assert_eq!(kind, "string", "{key}: the list was overwritten");
        assert_eq!(version(call().await), Some(1), "{key}");
        assert_eq!(db.reads(), reads + 1, "{key}: then cached");
    }
    let stats = cache.stats();
    assert_eq!(
        (stats.lock_waits, stats.lock_timeouts),
        (0, 0),
        "a call waited for a lock: {stats:?}"
    );
}

/// Every cache operation as an ACL user that may only touch `app:*`, with `key_prefix("app:")`:
/// cache-aside with tags, the fill lock across two processes, invalidation by key and by tag,
/// write-through, the companions and the by-hand calls, without a single error; and every key
/// the cache wrote starts with the prefix. Earlier design: versions and locks were `{key}#v` and
/// `{key}#lock`, and tag indexes `tag#app:<tag>`, all outside `app:*`, so the user was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_confined_to_the_prefix_runs_every_cache_operation() {
    let server = RedisServer::start();
    let mut admin = admin(&server).await;
    let () = redis::cmd("ACL")
        .arg(&["SETUSER", "app", "on", ">secret", "~app:*", "+@all"])
        .query_async(&mut admin)
        .await
        .expect("ACL SETUSER");
    let url = format!("redis://app:secret@127.0.0.1:{}/", server.port());
    let cache = cache_at(&url, "app:").await;
    let other = cache_at(&url, "app:").await;
    let db = Db::with(1..=3, 1);

    assert_eq!(version(get_item(&cache, &db, 1, 7).await), Some(1));
    assert_eq!(version(get_item(&cache, &db, 1, 7).await), Some(1));
    assert_eq!(db.reads(), 1, "the second call hit");

    // One process holds the fill lock of item 2; the other waits for its value.
    let gate = db.hold();
    let held = {
        let (cache, db) = (cache.clone(), Arc::clone(&db));
        tokio::spawn(async move { get_item(&cache, &db, 2, 7).await })
    };
    until("the held fill read its row", || db.reads() == 2).await;
    let mut written = keys(&mut admin, "*").await;
    let waiting = {
        let (other, db) = (other.clone(), Arc::clone(&db));
        tokio::spawn(async move { get_item(&other, &db, 2, 7).await })
    };
    until("the other process waits for the lock", || {
        other.stats().lock_waits == 1
    })
    .await;
    db.release(&gate);
    assert_eq!(version(held.await.unwrap()), Some(1));
    assert_eq!(version(waiting.await.unwrap()), Some(1));
    assert_eq!(db.reads(), 2, "the waiting process got the holder's value");

    update_item(&cache, &db, 1, 2).await;
    assert_eq!(version(get_item(&other, &db, 1, 7).await), Some(2));
    update_on_shelf(&cache, &db, 2, 7, 3).await;
    assert_eq!(version(get_item(&other, &db, 2, 7).await), Some(3));
    assert_eq!(version(put_item(&cache, &db, 3, 7, 4).await), Some(4));
    let reads = db.reads();
    assert_eq!(version(get_item(&other, &db, 3, 7).await), Some(4));
    assert_eq!(db.reads(), reads, "the write-through stored its value");
    db.write(3, 5);
    assert_eq!(version(refresh_get_item(&cache, &db, 3, 7).await), Some(5));
    invalidate_get_item(&cache, &db, 3, 7).await.unwrap();
    cache.invalidate_tag("shelf:7").await.unwrap();
    assert_eq!(db.reads(), reads + 1);
    assert_eq!(version(get_item(&other, &db, 3, 7).await), Some(5));
    assert_eq!(db.reads(), reads + 2, "the tag invalidation reached item 3");

    let ttl = Duration::from_secs(60);
    cache.set("greeting", "hello", ttl).await.unwrap();
    assert_eq!(
        other.get::<String>("greeting").await.unwrap().as_deref(),
        Some("hello")
    );
    cache.delete("greeting").await.unwrap();
    assert_eq!(other.get::<String>("greeting").await.unwrap(), None);

    for cache in [&cache, &other] {
        let stats = cache.stats();
        assert_eq!(stats.errors, 0, "{stats:?}");
    }
    written.extend(keys(&mut admin, "*").await);
    let outside: Vec<_> = written
        .iter()
        .filter(|key| !key.starts_with("app:"))
        .collect();
    assert!(outside.is_empty(), "keys outside the prefix: {outside:?}");
    for kind in ["#v", "#lock", "tag#"] {
        assert!(
            written.iter().any(|key| key.contains(kind)),
            "no {kind} key was seen, so the check above proved little: {written:?}"
        );
    }
}

/// A single-node cluster that owns every hash slot, and a plain connection to it.
async fn cluster_node() -> (RedisServer, MultiplexedConnection) {
    let server = RedisServer::start_cluster_node();
    let mut admin = admin(&server).await;
    let () = redis::cmd("CLUSTER")
        .arg(&["ADDSLOTSRANGE", "0", "16383"])
        .query_async(&mut admin)
        .await
        .expect("CLUSTER ADDSLOTSRANGE");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state: String = redis::cmd("CLUSTER")
            .arg("INFO")
            .query_async(&mut admin)
            .await
            .unwrap();
        if state.contains("cluster_state:ok") {
            break;
        }
        assert!(Instant::now() < deadline, "the cluster never came up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (server, admin)
}

async fn key_slot(admin: &mut MultiplexedConnection, key: &str) -> u16 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(admin)
        .await
        .unwrap()
}

/// On a single-node cluster that owns every slot, a fill of each sample key, under each sample
/// prefix, is held while its version and lock are looked up with `KEYS`, then finishes; the
/// entry, its version and its lock must share one hash slot, which the server itself checks as
/// well: a script over keys of two slots fails with CROSSSLOT, and the entry is then not stored.
/// Earlier design: companions were `{<key>}<suffix>`, whose hash tag is not the key when the key
/// holds a `}` (`a}b` gave `{a}b}#v`, hashed by `a`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_and_its_companions_share_a_hash_slot() {
    let (server, mut admin) = cluster_node().await;

    let prefixes = ["", "app:", "{app}:"];
    let samples = [
        "a}b",
        "user:1",
        "{a}b}",
        "{}x",
        "{tenant}:user:1",
        "}{",
        "x{y",
        "{",
    ];
    for prefix in prefixes {
        for sample in samples {
            let () = redis::cmd("FLUSHALL")
                .query_async(&mut admin)
                .await
                .unwrap();
            let cache = cache_at(&server.url(), prefix).await;
            let gate = Arc::new(Semaphore::new(0));
            let loading = Arc::new(AtomicBool::new(false));
            let fill = {
                let (cache, gate, loading) =
                    (cache.clone(), Arc::clone(&gate), Arc::clone(&loading));
                tokio::spawn(async move {
                    let ttl = Duration::from_secs(60);
                    cache
                        .get_with(sample, ttl, move || async move {
                            loading.store(true, SeqCst);
                            gate.acquire().await.unwrap().forget();
                            "value".to_owned()
                        })
                        .await
                })
            };
            until("the fill loads", || loading.load(SeqCst)).await;
            let during = keys(&mut admin, "*").await;
            gate.add_permits(1);
            assert_eq!(fill.await.unwrap(), "value");

            let entry = format!("{prefix}{sample}");
            // A fill script over keys of two slots fails with CROSSSLOT before writing any.
            let companion = |suffix: &str| {
                let found: Vec<_> = during.iter().filter(|key| key.ends_with(suffix)).collect();
                assert_eq!(
                    found.len(),
                    1,
                    "{entry:?}: one {suffix} key while filling, in {during:?}; {:?}",
                    cache.stats()
                );
                found[0].clone()
            };
            let (lock, version) = (companion("#lock"), companion("#v"));
            let slot = key_slot(&mut admin, &entry).await;
            for key in [&lock, &version] {
                assert!(key.starts_with(prefix), "{key:?} is outside {prefix:?}");
                assert_eq!(
                    key_slot(&mut admin, key).await,
                    slot,
                    "{key:?} is not in the slot of {entry:?}"
                );
            }
            assert!(
                keys(&mut admin, "*").await.contains(&entry),
                "{entry:?} was not stored: {:?}",
                cache.stats()
            );
            assert_eq!(cache.stats().errors, 0, "{entry:?}");
        }
    }
}

/// A tagged function on a single-node cluster that owns every slot: the second call must hit,
/// without errors. The companions share the entry's slot (above), but a tag's epoch
/// `<prefix>tag#<tag>` hashes to a slot of its own, so no command may name both: a multi-key
/// read or script that did would be refused with CROSSSLOT, and tagged entries never stored.
/// The epochs are read by commands of their own, pipelined with the entry's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagged_entries_are_cached_on_a_cluster_node() {
    let (server, _admin) = cluster_node().await;
    let cache = cache_at(&server.url(), "").await;
    let db = Db::with([1], 1);
    assert_eq!(version(get_item(&cache, &db, 1, 7).await), Some(1));
    assert_eq!(version(get_item(&cache, &db, 1, 7).await), Some(1));
    let stats = cache.stats();
    assert_eq!((db.reads(), stats.errors), (1, 0), "{stats:?}");
}

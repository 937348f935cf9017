//! Write-through, invalidation by key and by tag, the fill guard, tag index bounds, sliding ttl,
//! versions and the per-function companions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachemacro_runtime::backend::Backend;
use cachemacro_runtime::{cache_invalidate, cache_put, cached, Cache};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    id: u64,
    name: String,
    vendor: u64,
}

/// The database stand-in: rows, a switch that makes writes fail, and a count of reads.
#[derive(Default)]
pub struct Db {
    rows: Mutex<HashMap<u64, Product>>,
    refuse_writes: AtomicBool,
    reads: AtomicUsize,
    /// When set, each read waits for a permit after reading: a load held mid-flight.
    gate: Mutex<Option<Arc<Semaphore>>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Refused;

impl Db {
    fn with(products: &[(u64, &str, u64)]) -> Self {
        let db = Db::default();
        for (id, name, vendor) in products {
            db.write_row(*id, name, *vendor);
        }
        db
    }

    fn write_row(&self, id: u64, name: &str, vendor: u64) {
        let product = Product {
            id,
            name: name.to_owned(),
            vendor,
        };
        self.rows.lock().unwrap().insert(id, product);
    }

    async fn read(&self, id: u64) -> Option<Product> {
        self.reads.fetch_add(1, SeqCst);
        let row = self.rows.lock().unwrap().get(&id).cloned();
        let gate = self.gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.acquire().await.unwrap().forget();
        }
        row
    }

    fn write(&self, id: u64, name: &str, vendor: u64) -> Result<Product, Refused> {
        if self.refuse_writes.load(SeqCst) {
            return Err(Refused);
        }
        self.write_row(id, name, vendor);
        Ok(self.rows.lock().unwrap()[&id].clone())
    }

    fn reads(&self) -> usize {
        self.reads.load(SeqCst)
    }
}

#[cached(ttl = 60, key = "product:<id>", tags = ["vendor:<vendor>", "products"], cache = cache)]
async fn get_product(cache: &Cache, db: &Db, id: u64, vendor: u64) -> Option<Product> {
    db.read(id).await
}

#[cache_put(ttl = 60, key = "product:<id>", tags = ["vendor:<vendor>", "products"], cache = cache)]
async fn save_product(
    cache: &Cache,
    db: &Db,
    id: u64,
    name: &str,
    vendor: u64,
) -> Result<Option<Product>, Refused> {
    db.write(id, name, vendor).map(Some)
}

#[cache_invalidate(keys = ["product:<id>"], tags = ["vendor:<vendor>"], cache = cache)]
async fn rename_product(
    cache: &Cache,
    db: &Db,
    id: u64,
    name: &str,
    vendor: u64,
) -> Result<(), Refused> {
    db.write(id, name, vendor).map(drop)
}

fn product(id: u64, name: &str, vendor: u64) -> Option<Product> {
    Some(Product {
        id,
        name: name.to_owned(),
        vendor,
    })
}

pub async fn write_through_stores_what_the_database_accepted<B: Backend>(cache: &Cache, _: &B) {
    let db = Db::with(&[(1, "old", 7)]);
    assert_eq!(get_product(cache, &db, 1, 7).await, product(1, "old", 7));
    assert_eq!(
        save_product(cache, &db, 1, "new", 7).await,
        Ok(product(1, "new", 7))
    );
    assert_eq!(get_product(cache, &db, 1, 7).await, product(1, "new", 7));
    assert_eq!(db.reads(), 1, "the written value was served from the cache");
}

pub async fn write_through_failure_removes_the_key_and_returns_the_error<B: Backend>(
    cache: &Cache,
    _: &B,
) {
    let db = Db::with(&[(1, "old", 7)]);
    assert_eq!(get_product(cache, &db, 1, 7).await, product(1, "old", 7));
    db.refuse_writes.store(true, SeqCst);
    assert_eq!(
        save_product(cache, &db, 1, "rejected", 7).await,
        Err(Refused)
    );
    assert_eq!(get_product(cache, &db, 1, 7).await, product(1, "old", 7));
    assert_eq!(
        db.reads(),
        2,
        "the key was removed, so the database was asked again"
    );
}

pub async fn invalidation_by_keys_and_tags_after_success_only<B: Backend>(cache: &Cache, _: &B) {
    let db = Db::with(&[(1, "one", 7), (2, "two", 7), (3, "three", 8)]);
    for (id, vendor) in [(1, 7), (2, 7), (3, 8)] {
        get_product(cache, &db, id, vendor).await;
    }
    assert_eq!(db.reads(), 3);

    db.refuse_writes.store(true, SeqCst);
    assert_eq!(rename_product(cache, &db, 1, "uno", 7).await, Err(Refused));
    for (id, vendor) in [(1, 7), (2, 7), (3, 8)] {
        get_product(cache, &db, id, vendor).await;
    }
    assert_eq!(db.reads(), 3, "a failed write invalidates nothing");

    db.refuse_writes.store(false, SeqCst);
    assert_eq!(rename_product(cache, &db, 1, "uno", 7).await, Ok(()));
    assert_eq!(get_product(cache, &db, 1, 7).await, product(1, "uno", 7));
    assert_eq!(get_product(cache, &db, 2, 7).await, product(2, "two", 7));
    assert_eq!(get_product(cache, &db, 3, 8).await, product(3, "three", 8));
    assert_eq!(
        db.reads(),
        5,
        "vendor 7's two products reloaded; vendor 8's still cached"
    );
}

pub async fn invalidate_tag_drops_every_entry_that_carried_it<B: Backend>(cache: &Cache, _: &B) {
    let db = Db::with(&[(1, "a", 1), (2, "b", 1), (3, "c", 2)]);
    for (id, vendor) in [(1, 1), (2, 1), (3, 2)] {
        get_product(cache, &db, id, vendor).await;
    }
    cache.invalidate_tag("vendor:1").await.unwrap();
    for (id, vendor) in [(1, 1), (2, 1), (3, 2)] {
        get_product(cache, &db, id, vendor).await;
    }
    assert_eq!(db.reads(), 5);
    cache.invalidate_tag("products").await.unwrap();
    get_product(cache, &db, 3, 2).await;
    assert_eq!(db.reads(), 6);
}

/// A load that read the old row is held; the row changes and `invalidate` runs; the load is
/// released. Its old value must not be stored. `reads_after`: database reads in all (a
/// write-through stores the new row, so the read after it is a hit).
async fn held_load_then(
    cache: &Cache,
    invalidate: impl AsyncFnOnce(&Cache, &Db),
    reads_after: usize,
) {
    let db = Arc::new(Db::with(&[(1, "old", 7)]));
    let gate = Arc::new(Semaphore::new(0));
    *db.gate.lock().unwrap() = Some(Arc::clone(&gate));
    let held = {
        let (cache, db) = (cache.clone(), Arc::clone(&db));
        tokio::spawn(async move { get_product(&cache, &db, 1, 7).await })
    };
    while db.reads() == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    db.write_row(1, "new", 7);
    invalidate(cache, &db).await;
    *db.gate.lock().unwrap() = None;
    gate.add_permits(1);
    assert_eq!(
        held.await.unwrap(),
        product(1, "old", 7),
        "its own caller gets what it read"
    );
    assert_eq!(cache.stats().fills_discarded, 1);
    assert_eq!(
        get_product(cache, &db, 1, 7).await,
        product(1, "new", 7),
        "never the old value"
    );
    assert_eq!(db.reads(), reads_after);
}

pub async fn a_load_in_flight_cannot_resurrect_a_tag_invalidated_value<B: Backend>(
    cache: &Cache,
    _: &B,
) {
    held_load_then(
        cache,
        async |cache, _| {
            cache.invalidate_tag("vendor:7").await.unwrap();
        },
        2,
    )
    .await;
}

pub async fn a_load_in_flight_cannot_resurrect_a_key_invalidated_value<B: Backend>(
    cache: &Cache,
    _: &B,
) {
    held_load_then(
        cache,
        async |cache, _| {
            cache.delete("product:1").await.unwrap();
        },
        2,
    )
    .await;
}

pub async fn a_load_in_flight_cannot_overwrite_a_write_through<B: Backend>(cache: &Cache, _: &B) {
    held_load_then(
        cache,
        async |cache, db| {
            save_product(cache, db, 1, "new", 7).await.unwrap();
        },
        1,
    )
    .await;
}

const SESSION_TTL: Duration = Duration::from_millis(300);

#[cached(ttl = "300ms", sliding = true, key = "session:<id>", cache = cache)]
async fn session(cache: &Cache, loads: &AtomicUsize, id: u64) -> String {
    loads.fetch_add(1, SeqCst);
    format!("session {id}")
}

/// Calls `session(1)`: whether it loaded, and when it started and ended.
async fn timed_session(cache: &Cache, loads: &AtomicUsize) -> (bool, Instant, Instant) {
    let before = loads.load(SeqCst);
    let started = Instant::now();
    assert_eq!(session(cache, loads, 1).await, "session 1");
    (loads.load(SeqCst) > before, started, Instant::now())
}

pub async fn sliding_ttl_lives_while_read_and_expires_when_not<B: Backend>(cache: &Cache, _: &B) {
    let loads = AtomicUsize::new(0);
    let (_, mut previous_start, mut written_by) = timed_session(cache, &loads).await;
    // Reads every quarter ttl until one hits later than the ttl after the entry was written: a
    // fixed ttl would have expired it by then, so only the reads in between kept it alive. Each
    // read restarts the ttl somewhere between its own start and end, so a read may find the entry
    // gone only if it ended a ttl or more after the previous one started: a busy machine can
    // stall that long, and then the entry is loaded again and the count starts over.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(
            Instant::now() < deadline,
            "no read within a ttl of the previous one for 20 s"
        );
        tokio::time::sleep(SESSION_TTL / 4).await;
        let (loaded, started, ended) = timed_session(cache, &loads).await;
        if loaded {
            assert!(
                ended.duration_since(previous_start) >= SESSION_TTL,
                "expired {:?} after the previous read started, inside its ttl",
                ended.duration_since(previous_start)
            );
            written_by = ended;
        } else if started.duration_since(written_by) > SESSION_TTL * 3 / 2 {
            break;
        }
        previous_start = started;
    }

    let last_read = Instant::now();
    tokio::time::sleep(SESSION_TTL * 2).await;
    let (loaded, _, _) = timed_session(cache, &loads).await;
    assert!(
        loaded,
        "unread for {:?}, longer than the ttl, it expired",
        last_read.elapsed()
    );
}

#[cached(ttl = 60, key = "shape:<id>", version = 1, cache = cache)]
async fn shape_v1(cache: &Cache, id: u64) -> String {
    format!("{id}")
}

#[cached(ttl = 60, key = "shape:<id>", version = 2, cache = cache)]
async fn shape_v2(cache: &Cache, id: u64) -> Vec<u64> {
    vec![id]
}

pub async fn versions_do_not_read_each_others_entries<B: Backend>(cache: &Cache, _: &B) {
    assert_eq!(shape_v1(cache, 3).await, "3");
    assert_eq!(shape_v2(cache, 3).await, vec![3]);
    assert_eq!(shape_v1(cache, 3).await, "3");
    assert_eq!(shape_v2(cache, 3).await, vec![3]);
    let stats = cache.stats();
    assert_eq!((stats.loads, stats.hits, stats.decode_errors), (2, 2, 0));
}

#[cached(ttl = 60, key = "price:<id>", cache = cache)]
async fn price(cache: &Cache, db: &Db, id: u64) -> u64 {
    db.read(id)
        .await
        .map_or(0, |product| product.name.len() as u64)
}

pub async fn companions_invalidate_and_refresh_one_call<B: Backend>(cache: &Cache, _: &B) {
    let db = Db::with(&[(1, "four", 1), (2, "xx", 1)]);
    assert_eq!(price(cache, &db, 1).await, 4);
    assert_eq!(price(cache, &db, 2).await, 2);
    db.write_row(1, "seven", 1);
    invalidate_price(cache, &db, 1).await.unwrap();
    assert_eq!(price(cache, &db, 1).await, 5);
    assert_eq!(price(cache, &db, 2).await, 2, "other calls are untouched");
    assert_eq!(db.reads(), 3);

    db.write_row(2, "xxxxxx", 1);
    assert_eq!(refresh_price(cache, &db, 2).await, 6, "refresh loads now");
    assert_eq!(price(cache, &db, 2).await, 6);
    assert_eq!(db.reads(), 4, "and stores what it loaded");
}

pub async fn a_load_in_flight_cannot_resurrect_a_cleared_value<B: Backend>(cache: &Cache, _: &B) {
    held_load_then(
        cache,
        async |cache, _| {
            assert_eq!(
                clear_get_product(cache).await.unwrap(),
                0,
                "nothing stored yet"
            );
        },
        2,
    )
    .await;
}

#[cached(ttl = 60, cache = cache)]
async fn label(cache: &Cache, id: u64) -> String {
    format!("label {id}")
}

#[cached(ttl = 60, cache = cache)]
async fn label_long(cache: &Cache, id: u64) -> String {
    format!("long label {id}")
}

/// How many times the function `name` of this module loaded on `cache`.
fn loads_of(cache: &Cache, name: &str) -> u64 {
    cache.function_stats()[&format!("{}::{name}", module_path!())].loads
}

pub async fn clear_removes_every_entry_of_one_function<B: Backend>(cache: &Cache, _: &B) {
    let db = Db::with(&[(1, "a", 7), (2, "b", 7)]);
    for id in 0..30 {
        label(cache, id).await;
        label_long(cache, id).await;
    }
    get_product(cache, &db, 1, 7).await;
    get_product(cache, &db, 2, 7).await;

    // A default key: every call of `label`, not those of `label_long`, whose name it starts.
    assert_eq!(clear_label(cache).await.unwrap(), 30);
    for id in 0..30 {
        label(cache, id).await;
        label_long(cache, id).await;
    }
    assert_eq!(loads_of(cache, "label"), 60, "every label loaded again");
    assert_eq!(loads_of(cache, "label_long"), 30, "no long label did");

    // A template key: the entries under its text before the first placeholder.
    assert_eq!(clear_get_product(cache).await.unwrap(), 2);
    assert_eq!(
        cache.get::<Option<Product>>("product:1").await.unwrap(),
        None
    );
    if let Some(mut redis) = crate::raw_redis().await {
        let keys: Vec<String> = ::redis::cmd("KEYS")
            .arg("*product:*")
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(keys.is_empty(), "no entry, version or lock left: {keys:?}");
    }

    // By prefix, through the cache.
    assert_eq!(cache.clear_prefix("").await.unwrap(), 60, "the rest");
    assert_eq!(cache.clear_prefix("").await.unwrap(), 0);
}

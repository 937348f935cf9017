//! A randomized concurrent history checker for the cache's promise:
//!
//! > a read never returns data older than a write or invalidation that completed before the read
//! > started, and the cache never makes a caller fail or wait longer than its own load (plus
//! > `lock_timeout` plus one operation timeout).
//!
//! # The model
//!
//! The "database" is a versioned in-memory map, row id -> version, behind a `std` mutex; every
//! write increments the row's version. Cached functions read it through loaders that pause a
//! random 0–3 ms around the read, so loads overlap writes, and panic in 3% of runs (the injected
//! panic carries the id of the call whose loader raised it). Rows `0..4` fall in two groups
//! (`id % 2`).
//!
//! Each row is cached under two keys, of two families:
//! - `item:<id>`, tagged `group:<id % 2>`: read by [`get_item`] (borrowed parameters, so a drawn
//!   early refresh runs in the caller) and [`get_item_detached`] (owned parameters, so it runs in
//!   a background task), both with `beta = 10` so that early refreshes come within the 250 ms
//!   ttl, between the writes; written by [`put_item`] (`#[cache_put]`), invalidated by
//!   [`write_then_invalidate_keys`], [`write_then_invalidate_group`] (`#[cache_invalidate]` by key
//!   and by tag), `Cache::delete` and `Cache::invalidate_tag` after a database write;
//! - `slide:<id>`, untagged: read by [`get_slide`] (`sliding = true`); written by [`put_slide`]
//!   and by `Cache::set` after a database write, invalidated by [`write_then_invalidate_keys`]
//!   and `Cache::delete`. Raw `Cache::set` only writes this untagged family: an entry it stores
//!   carries no tag, so a tag invalidation could not be expected to reach it.
//!
//! Eight tasks run random operations over those eight keys on two (memory) or three (Redis)
//! `Cache` handles standing in for processes: two handles over one `MemoryBackend`, or three
//! handles with connections of their own to one private `redis-server`. A quarter of the
//! operations run under `tokio::time::timeout` of 0–3 ms, so callers are cancelled at random
//! points: in a loader, between a database write and its invalidation, while holding the fill
//! lock. Every operation runs in a task of its own, so a panic reaches the checker as a
//! `JoinError` instead of ending the worker. Every other Redis history also runs a fault task that
//! deletes random metadata keys of the history (`{key}#v`, `{key}#lock`, `tag#...`, as an
//! evicting Redis could) and issues `CLIENT PAUSE 5 WRITE` (with the server's `hz` raised so that
//! a pause lasts about 5 ms, well inside the operation timeout).
//!
//! A history is 8 tasks × 40 operations on fresh caches (a new `MemoryBackend`, or a new key
//! prefix on Redis) and a fresh database; histories repeat until the time budget per backend is
//! spent.
//!
//! # Order without clocks
//!
//! Each operation takes a ticket from one `AtomicU64` (`fetch_add`, `SeqCst`) in its own task
//! immediately before it calls into the cache, and another immediately after the call returns.
//! Read-modify-writes of one atomic are totally ordered and each synchronizes with the next, so
//! when a write's return ticket is smaller than a read's start ticket, everything the write did
//! happened before the read's first step: in process memory by that synchronization, and on Redis
//! because the write had received the replies to its commands before the read sent its first.
//! "Completed before the read started" is exactly `ack ticket < start ticket`; wall-clock time is
//! used for nothing but the latency bound, which is about time.
//!
//! # The invariants
//!
//! A write *acknowledges* version `v` for a cache key `K` when its call returned `Ok` (not
//! cancelled, no panic), `v` being the version its database write produced, and its cache step
//! covers `K`: `#[cache_put]` of `K`; `#[cache_invalidate]` listing `K`; a tag invalidation of
//! `K`'s group for a tagged key; `Cache::set` / `Cache::delete` of `K`; `Cache::invalidate_tag` of
//! `K`'s group for a tagged key. A cancelled write may have changed the database without reaching
//! the cache: it promises nothing, so only acknowledged writes constrain reads.
//!
//! - **(a) freshness**: a read of `K` that returned version `v` and started at ticket `s` has
//!   `v >= max { v' : (K, v') acknowledged at a ticket < s }`.
//! - **(b) latency**: a call that returned took at most its own work (the time in its own loader
//!   runs for a read, in its database write for a write) + `lock_timeout` (200 ms) + the operation
//!   timeout (50 ms) + [`SLACK`].
//! - **(c) no failure**: every call that returned got `Ok` with the row it asked for, and a panic
//!   reached a caller only when it was the injected panic of that caller's own loader. The one
//!   documented exception: the direct `Cache::set`, `delete` and `invalidate_tag` return an error
//!   when Redis is slow or unreachable (`Error::is_unavailable`); such a write is counted, not
//!   acknowledged, and not a violation. Any other error is.
//!
//! Every violation is collected and counted by property and by call; stale reads also by the kind
//! of write they missed and by where the stale value most likely came from (an older write-through
//! that overlapped the newer write, or an older load or entry). The first few of each property are
//! printed with the history around them: the operations on that row and the injected faults, by
//! ticket. The test fails at the end if there was any violation.
//!
//! `CACHEMACRO_HISTORY_SECS` (seconds per backend, default 12) and `CACHEMACRO_HISTORY_SEED`
//! (decimal or `0x` hex) make it a long run or replay a seed's plans; the interleaving of a replay
//! is the scheduler's, not the seed's.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

use cachemacro_runtime::backend::MemoryBackend;
use cachemacro_runtime::{cache_invalidate, cache_put, cached, Cache};
use cachemacro_tests::RedisServer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::task::JoinError;

const IDS: u64 = 4;
const GROUPS: u64 = 2;
const TASKS: usize = 8;
const OPS_PER_TASK: usize = 40;
/// The `lock_timeout = "200ms"` of the cached functions below (attributes take literals only).
const LOCK_TIMEOUT: Duration = Duration::from_millis(200);
const OPERATION_TIMEOUT: Duration = Duration::from_millis(50);
/// The `ttl = "250ms"` of the functions below: short, so entries expire, early refreshes are
/// drawn and tag indexes are trimmed within one history.
const TTL: Duration = Duration::from_millis(250);
/// What bound (b) allows beyond its three terms. A caller that waits for another's load in its
/// own process waits for a load that is not its own: at most 3 ms of loader pauses, each rounded
/// up to tokio's 1 ms timer tick, so about 5 ms. The rest is scheduling: eight workers, the fault
/// task and `redis-server` share two cores with whatever else the machine runs, and a ready task
/// can wait tens of milliseconds for a worker thread there. A second full `lock_timeout`
/// (200 ms), the failure this bound exists to catch, stays far outside it.
const SLACK: Duration = Duration::from_millis(30);
const PANIC_PERCENT: u32 = 3;
const CANCEL_PERCENT: u32 = 25;
const LONGEST_CANCEL_AFTER_MICROS: u64 = 3_000;
const LONGEST_LOAD_MICROS: u64 = 3_000;
/// The pause between a database write and the cache step after it, which is where a cancelled
/// write leaves the database changed and the cache not told.
const LONGEST_WRITE_PAUSE_MICROS: u64 = 2_000;
const DEFAULT_SECS: f64 = 12.0;
const DEFAULT_SEED: u64 = 0x4849_5354_4f52_5921;
const EXCERPTS_PER_PROPERTY: usize = 3;
const EXCERPT_LINES: usize = 40;

// ---------------------------------------------------------------------------------------------
// The database and the calls' bookkeeping.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Versioned {
    id: u64,
    version: u64,
}

/// Never returned: the loaders fail only by panicking.
#[derive(Debug, Clone)]
struct DbError;

/// The payload of an injected loader panic: the call whose loader raised it.
struct InjectedPanic {
    op: u64,
}

#[derive(Default)]
struct Db {
    versions: Mutex<[u64; IDS as usize]>,
}

impl Db {
    fn read(&self, id: u64) -> u64 {
        lock(&self.versions)[id as usize]
    }

    fn write(&self, id: u64) -> u64 {
        let mut versions = lock(&self.versions);
        versions[id as usize] += 1;
        versions[id as usize]
    }
}

/// What one call's loaders and database write report back, wherever the cache ran them.
struct Call {
    op: u64,
    rng: Mutex<StdRng>,
    own_micros: AtomicU64,
    loads: AtomicU64,
    panicked: AtomicBool,
    /// The version this call's database write produced; 0 before it wrote (writes start at 1).
    wrote: AtomicU64,
    start: AtomicU64,
}

impl Call {
    fn new(op: u64, seed: u64) -> Self {
        Self {
            op,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            own_micros: AtomicU64::new(0),
            loads: AtomicU64::new(0),
            panicked: AtomicBool::new(false),
            wrote: AtomicU64::new(0),
            start: AtomicU64::new(0),
        }
    }

    fn draw<T>(&self, draw: impl FnOnce(&mut StdRng) -> T) -> T {
        draw(&mut lock(&self.rng))
    }

    /// Adds the time until the guard drops to the call's own work, also when a panic or a
    /// cancellation ends it.
    fn own_work(&self) -> OwnWork<'_> {
        OwnWork {
            call: self,
            started: Instant::now(),
        }
    }
}

struct OwnWork<'a> {
    call: &'a Call,
    started: Instant,
}

impl Drop for OwnWork<'_> {
    fn drop(&mut self) {
        let micros = self.started.elapsed().as_micros() as u64;
        self.call.own_micros.fetch_add(micros, SeqCst);
    }
}

async fn load(db: &Db, call: &Call, id: u64) -> Result<Versioned, DbError> {
    let _own = call.own_work();
    call.loads.fetch_add(1, SeqCst);
    let (before, after, panics) = call.draw(|rng| {
        let total = rng.random_range(0..=LONGEST_LOAD_MICROS);
        let before = rng.random_range(0..=total);
        (before, total - before, rng.random_ratio(PANIC_PERCENT, 100))
    });
    tokio::time::sleep(Duration::from_micros(before)).await;
    let version = db.read(id);
    tokio::time::sleep(Duration::from_micros(after)).await;
    if panics {
        call.panicked.store(true, SeqCst);
        std::panic::panic_any(InjectedPanic { op: call.op });
    }
    Ok(Versioned { id, version })
}

async fn write(db: &Db, call: &Call, id: u64) -> Result<Versioned, DbError> {
    let _own = call.own_work();
    let version = db.write(id);
    call.wrote.store(version, SeqCst);
    let pause = call.draw(|rng| rng.random_range(0..=LONGEST_WRITE_PAUSE_MICROS));
    tokio::time::sleep(Duration::from_micros(pause)).await;
    Ok(Versioned { id, version })
}

// ---------------------------------------------------------------------------------------------
// The cached functions and the writes, as an application declares them.

#[cached(
    cache = cache,
    key = "item:<id>",
    tags = ["group:<group>"],
    ttl = "250ms",
    lock_timeout = "200ms",
    beta = 10,
    companions = false
)]
async fn get_item(
    cache: &Cache,
    db: &Db,
    call: &Call,
    id: u64,
    group: u64,
) -> Result<Versioned, DbError> {
    load(db, call, id).await
}

#[cached(
    cache = cache,
    key = "item:<id>",
    tags = ["group:<group>"],
    ttl = "250ms",
    lock_timeout = "200ms",
    beta = 10,
    companions = false
)]
async fn get_item_detached(
    cache: Cache,
    db: Arc<Db>,
    call: Arc<Call>,
    id: u64,
    group: u64,
) -> Result<Versioned, DbError> {
    load(&db, &call, id).await
}

#[cached(
    cache = cache,
    key = "slide:<id>",
    ttl = "250ms",
    sliding = true,
    lock_timeout = "200ms",
    companions = false
)]
async fn get_slide(cache: &Cache, db: &Db, call: &Call, id: u64) -> Result<Versioned, DbError> {
    load(db, call, id).await
}

#[cache_put(cache = cache, key = "item:<id>", tags = ["group:<group>"], ttl = "250ms")]
async fn put_item(
    cache: &Cache,
    db: &Db,
    call: &Call,
    id: u64,
    group: u64,
) -> Result<Versioned, DbError> {
    write(db, call, id).await
}

#[cache_put(cache = cache, key = "slide:<id>", ttl = "250ms")]
async fn put_slide(cache: &Cache, db: &Db, call: &Call, id: u64) -> Result<Versioned, DbError> {
    write(db, call, id).await
}

#[cache_invalidate(cache = cache, keys = ["item:<id>", "slide:<id>"])]
async fn write_then_invalidate_keys(
    cache: &Cache,
    db: &Db,
    call: &Call,
    id: u64,
) -> Result<Versioned, DbError> {
    write(db, call, id).await
}

#[cache_invalidate(cache = cache, tags = ["group:<group>"])]
async fn write_then_invalidate_group(
    cache: &Cache,
    db: &Db,
    call: &Call,
    id: u64,
    group: u64,
) -> Result<Versioned, DbError> {
    write(db, call, id).await
}

// ---------------------------------------------------------------------------------------------
// Operations.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Family {
    Item,
    Slide,
}

impl Family {
    fn key(self, id: u64) -> String {
        match self {
            Family::Item => format!("item:{id}"),
            Family::Slide => format!("slide:{id}"),
        }
    }
}

fn group_tag(group: u64) -> String {
    format!("group:{group}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    GetItem,
    GetItemDetached,
    GetSlide,
    PutItem,
    PutSlide,
    InvalidateKeys,
    InvalidateGroup,
    SetSlide,
    Delete(Family),
    InvalidateTag,
}

/// The operation mix, by weight: about two reads for each write, so most reads race a write.
const MIX: [(Kind, u32); 11] = [
    (Kind::GetItem, 22),
    (Kind::GetItemDetached, 14),
    (Kind::GetSlide, 24),
    (Kind::PutItem, 6),
    (Kind::PutSlide, 5),
    (Kind::InvalidateKeys, 6),
    (Kind::InvalidateGroup, 6),
    (Kind::SetSlide, 5),
    (Kind::Delete(Family::Item), 3),
    (Kind::Delete(Family::Slide), 3),
    (Kind::InvalidateTag, 5),
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::GetItem => "get_item",
            Kind::GetItemDetached => "get_item_detached",
            Kind::GetSlide => "get_slide (sliding)",
            Kind::PutItem => "put_item (cache_put)",
            Kind::PutSlide => "put_slide (cache_put)",
            Kind::InvalidateKeys => "cache_invalidate(keys)",
            Kind::InvalidateGroup => "cache_invalidate(tags)",
            Kind::SetSlide => "Cache::set slide",
            Kind::Delete(Family::Item) => "Cache::delete item",
            Kind::Delete(Family::Slide) => "Cache::delete slide",
            Kind::InvalidateTag => "Cache::invalidate_tag",
        }
    }

    /// The key family a read returns, `None` for a write.
    fn reads(self) -> Option<Family> {
        match self {
            Kind::GetItem | Kind::GetItemDetached => Some(Family::Item),
            Kind::GetSlide => Some(Family::Slide),
            _ => None,
        }
    }

    /// Whether the write puts its own value into the key of `family`.
    fn stores(self, family: Family) -> bool {
        match self {
            Kind::PutItem => family == Family::Item,
            Kind::PutSlide | Kind::SetSlide => family == Family::Slide,
            _ => false,
        }
    }

    /// The keys of its row whose freshness a write vouches for once it returned.
    fn acknowledges(self) -> &'static [Family] {
        match self {
            Kind::PutItem | Kind::InvalidateGroup | Kind::InvalidateTag => &[Family::Item],
            Kind::Delete(Family::Item) => &[Family::Item],
            Kind::PutSlide | Kind::SetSlide | Kind::Delete(Family::Slide) => &[Family::Slide],
            Kind::InvalidateKeys => &[Family::Item, Family::Slide],
            Kind::GetItem | Kind::GetItemDetached | Kind::GetSlide => &[],
        }
    }
}

fn pick_kind(rng: &mut StdRng) -> Kind {
    let total: u32 = MIX.iter().map(|(_, weight)| weight).sum();
    let mut draw = rng.random_range(0..total);
    for (kind, weight) in MIX {
        if draw < weight {
            return kind;
        }
        draw -= weight;
    }
    unreachable!("the draw is below the total weight")
}

#[derive(Debug, Clone, Copy)]
struct Plan {
    op: u64,
    task: usize,
    kind: Kind,
    id: u64,
    handle: usize,
    timeout: Option<Duration>,
}

/// One history's shared state: the "processes", the database and the ticket counter.
struct World {
    handles: Vec<Cache>,
    db: Arc<Db>,
    tickets: AtomicU64,
}

impl World {
    fn ticket(&self) -> u64 {
        self.tickets.fetch_add(1, SeqCst)
    }
}

#[derive(Debug)]
enum Outcome {
    /// The version read, or for a write the version it wrote and now acknowledges.
    Returned(u64),
    Cancelled,
    InjectedPanic,
    UnexpectedPanic(String),
    Unavailable(String),
    Failed(String),
}

#[derive(Debug)]
struct Record {
    plan: Plan,
    start: u64,
    end: u64,
    elapsed: Duration,
    own: Duration,
    loads: u64,
    wrote: Option<u64>,
    outcome: Outcome,
}

struct Finished {
    start: u64,
    end: u64,
    elapsed: Duration,
    /// `None` when the timeout cancelled the call.
    result: Option<Result<u64, CallError>>,
}

enum CallError {
    /// A direct `Cache` call refused for a slow or unreachable Redis, as documented: the write
    /// is not acknowledged, and not a violation either.
    Unavailable(String),
    Failed(String),
}

fn cache_error(call: &str, error: &cachemacro_runtime::Error) -> CallError {
    let message = format!("{call}: {error}");
    if error.is_unavailable() {
        CallError::Unavailable(message)
    } else {
        CallError::Failed(message)
    }
}

async fn perform(world: &World, plan: Plan, call: &Arc<Call>) -> Result<u64, CallError> {
    let cache = &world.handles[plan.handle];
    let db = &*world.db;
    let (id, group) = (plan.id, plan.id % GROUPS);
    let failed = |DbError| CallError::Failed("the loader returned Err".to_owned());
    let returned = match plan.kind {
        Kind::GetItem => get_item(cache, db, call, id, group).await.map_err(failed),
        Kind::GetItemDetached => get_item_detached(
            cache.clone(),
            Arc::clone(&world.db),
            Arc::clone(call),
            id,
            group,
        )
        .await
        .map_err(failed),
        Kind::GetSlide => get_slide(cache, db, call, id).await.map_err(failed),
        Kind::PutItem => put_item(cache, db, call, id, group).await.map_err(failed),
        Kind::PutSlide => put_slide(cache, db, call, id).await.map_err(failed),
        Kind::InvalidateKeys => write_then_invalidate_keys(cache, db, call, id)
            .await
            .map_err(failed),
        Kind::InvalidateGroup => write_then_invalidate_group(cache, db, call, id, group)
            .await
            .map_err(failed),
        Kind::SetSlide => {
            let written = write(db, call, id).await.map_err(failed)?;
            let key = Family::Slide.key(id);
            match cache.set(&key, &written, TTL).await {
                Ok(()) => Ok(written),
                Err(error) => Err(cache_error("Cache::set", &error)),
            }
        }
        Kind::Delete(family) => {
            let written = write(db, call, id).await.map_err(failed)?;
            match cache.delete(&family.key(id)).await {
                Ok(()) => Ok(written),
                Err(error) => Err(cache_error("Cache::delete", &error)),
            }
        }
        Kind::InvalidateTag => {
            let written = write(db, call, id).await.map_err(failed)?;
            match cache.invalidate_tag(&group_tag(group)).await {
                Ok(_) => Ok(written),
                Err(error) => Err(cache_error("Cache::invalidate_tag", &error)),
            }
        }
    }?;
    if returned.id != id {
        let wrong = format!("got row {} for row {id}", returned.id);
        return Err(CallError::Failed(wrong));
    }
    Ok(returned.version)
}

async fn run_call(world: Arc<World>, plan: Plan, call: Arc<Call>) -> Finished {
    let start = world.ticket();
    call.start.store(start, SeqCst);
    let started = Instant::now();
    let performed = perform(&world, plan, &call);
    let result = match plan.timeout {
        Some(limit) => tokio::time::timeout(limit, performed).await.ok(),
        None => Some(performed.await),
    };
    let elapsed = started.elapsed();
    let end = world.ticket();
    Finished {
        start,
        end,
        elapsed,
        result,
    }
}

/// `waited`: how long the caller waited for the call's task, the only measure of a call that
/// panicked.
fn record(
    world: &World,
    plan: Plan,
    call: &Call,
    joined: Result<Finished, JoinError>,
    waited: Duration,
) -> Record {
    let (start, end, elapsed, outcome) = match joined {
        Ok(finished) => {
            let outcome = match finished.result {
                None => Outcome::Cancelled,
                Some(Ok(version)) => Outcome::Returned(version),
                Some(Err(CallError::Unavailable(error))) => Outcome::Unavailable(error),
                Some(Err(CallError::Failed(error))) => Outcome::Failed(error),
            };
            (finished.start, finished.end, finished.elapsed, outcome)
        }
        Err(error) => {
            let end = world.ticket();
            let outcome = match error.try_into_panic() {
                Ok(payload) => classify_panic(call, payload),
                Err(_) => Outcome::UnexpectedPanic("the call's task was cancelled".to_owned()),
            };
            (call.start.load(SeqCst), end, waited, outcome)
        }
    };
    let wrote = call.wrote.load(SeqCst);
    Record {
        plan,
        start,
        end,
        elapsed,
        own: Duration::from_micros(call.own_micros.load(SeqCst)),
        loads: call.loads.load(SeqCst),
        wrote: (wrote > 0).then_some(wrote),
        outcome,
    }
}

fn classify_panic(call: &Call, payload: Box<dyn Any + Send>) -> Outcome {
    match payload.downcast_ref::<InjectedPanic>() {
        Some(injected) if injected.op == call.op && call.panicked.load(SeqCst) => {
            Outcome::InjectedPanic
        }
        Some(injected) => Outcome::UnexpectedPanic(format!(
            "the injected panic of op #{} reached op #{}",
            injected.op, call.op
        )),
        None => Outcome::UnexpectedPanic(
            payload
                .downcast_ref::<&str>()
                .map(|message| (*message).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned()),
        ),
    }
}

async fn run_task(world: Arc<World>, task: usize, seed: u64) -> Vec<Record> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut records = Vec::with_capacity(OPS_PER_TASK);
    for n in 0..OPS_PER_TASK {
        let cancelled = rng.random_ratio(CANCEL_PERCENT, 100);
        let plan = Plan {
            op: (task * OPS_PER_TASK + n) as u64,
            task,
            kind: pick_kind(&mut rng),
            id: rng.random_range(0..IDS),
            handle: rng.random_range(0..world.handles.len()),
            timeout: cancelled
                .then(|| Duration::from_micros(rng.random_range(0..=LONGEST_CANCEL_AFTER_MICROS))),
        };
        let call = Arc::new(Call::new(plan.op, rng.random()));
        let launched = Instant::now();
        let joined = tokio::spawn(run_call(Arc::clone(&world), plan, Arc::clone(&call))).await;
        records.push(record(&world, plan, &call, joined, launched.elapsed()));
    }
    records
}

// ---------------------------------------------------------------------------------------------
// Faults on Redis.

#[derive(Debug)]
struct FaultEvent {
    ticket: u64,
    /// The metadata key deleted; `None` for a write pause.
    key: Option<String>,
}

/// Until `stop`: every 3–25 ms, either deletes one random metadata key of the history (a key
/// with `#`: a version, a fill lock or a tag index, as eviction could) or pauses writes for 5 ms.
async fn inject_faults(
    url: String,
    prefix: String,
    world: Arc<World>,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> Vec<FaultEvent> {
    let client = redis::Client::open(url.as_str()).expect("the private server's URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("the private server answers");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events = Vec::new();
    while !stop.load(SeqCst) {
        tokio::time::sleep(Duration::from_millis(rng.random_range(3..=25))).await;
        if rng.random_bool(0.5) {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("*{prefix}*"))
                .query_async(&mut connection)
                .await
                .unwrap_or_default();
            let metadata: Vec<String> = keys.into_iter().filter(|key| key.contains('#')).collect();
            if metadata.is_empty() {
                continue;
            }
            let key = &metadata[rng.random_range(0..metadata.len())];
            let ticket = world.ticket();
            let deleted: redis::RedisResult<u64> = redis::cmd("DEL")
                .arg(key)
                .query_async(&mut connection)
                .await;
            if deleted.is_ok_and(|count| count > 0) {
                events.push(FaultEvent {
                    ticket,
                    key: Some(key.clone()),
                });
            }
        } else {
            let ticket = world.ticket();
            let paused: redis::RedisResult<()> = redis::cmd("CLIENT")
                .arg("PAUSE")
                .arg(5)
                .arg("WRITE")
                .query_async(&mut connection)
                .await;
            if paused.is_ok() {
                events.push(FaultEvent { ticket, key: None });
            }
        }
    }
    events
}

// ---------------------------------------------------------------------------------------------
// Running and checking histories.

struct Faults {
    url: String,
    prefix: String,
}

async fn run_history(
    report: &mut Report,
    index: u64,
    seed: u64,
    handles: Vec<Cache>,
    faults: Option<Faults>,
) {
    let world = Arc::new(World {
        handles,
        db: Arc::default(),
        tickets: AtomicU64::new(0),
    });
    let mut rng = StdRng::seed_from_u64(seed);
    let fault_seed = rng.random();
    let stop = Arc::new(AtomicBool::new(false));
    let injector = faults.map(|faults| {
        tokio::spawn(inject_faults(
            faults.url,
            faults.prefix,
            Arc::clone(&world),
            Arc::clone(&stop),
            fault_seed,
        ))
    });
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| tokio::spawn(run_task(Arc::clone(&world), task, rng.random())))
        .collect();
    let mut records = Vec::with_capacity(TASKS * OPS_PER_TASK);
    for task in tasks {
        records.extend(
            task.await
                .expect("workers do not panic: each call has a task"),
        );
    }
    stop.store(true, SeqCst);
    let events = match injector {
        Some(injector) => injector.await.expect("the fault task does not panic"),
        None => Vec::new(),
    };
    for handle in &world.handles {
        report.stats.add(&handle.stats());
    }
    let history = HistoryRef {
        index,
        seed,
        records: &records,
        events: &events,
    };
    report.check(&history);
}

struct HistoryRef<'a> {
    index: u64,
    seed: u64,
    records: &'a [Record],
    events: &'a [FaultEvent],
}

/// A property's violations: how many, by call and by cause, and the first few with their history.
#[derive(Default)]
struct Violations {
    count: u64,
    by_call: BTreeMap<&'static str, u64>,
    by_cause: BTreeMap<String, u64>,
    by_source: BTreeMap<String, u64>,
    excerpts: Vec<String>,
}

impl Violations {
    fn add(&mut self, call: &'static str, cause: String, excerpt: impl FnOnce() -> String) {
        self.count += 1;
        *self.by_call.entry(call).or_default() += 1;
        *self.by_cause.entry(cause).or_default() += 1;
        if self.excerpts.len() < EXCERPTS_PER_PROPERTY {
            self.excerpts.push(excerpt());
        }
    }

    fn line(&self, title: &str, cause: &str) -> String {
        let mut line = format!("{title}: {}", self.count);
        if self.count > 0 {
            let _ = write!(line, "\n      by call: {}", counts(&self.by_call));
            let _ = write!(line, "\n      {cause}: {}", counts(&self.by_cause));
        }
        if !self.by_source.is_empty() {
            let _ = write!(
                line,
                "\n      by where the stale value came from: {}",
                counts(&self.by_source)
            );
        }
        line
    }
}

/// `name count` pairs, most frequent first.
fn counts<K: std::fmt::Display>(map: &BTreeMap<K, u64>) -> String {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| b.1.cmp(a.1));
    entries
        .iter()
        .map(|(key, count)| format!("{key} {count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Default)]
struct StatTotals {
    hits: u64,
    misses: u64,
    coalesced: u64,
    lock_waits: u64,
    lock_timeouts: u64,
    fills_discarded: u64,
    early_refreshes: u64,
    errors: u64,
}

impl StatTotals {
    fn add(&mut self, stats: &cachemacro_runtime::Stats) {
        self.hits += stats.hits;
        self.misses += stats.misses;
        self.coalesced += stats.coalesced;
        self.lock_waits += stats.lock_waits;
        self.lock_timeouts += stats.lock_timeouts;
        self.fills_discarded += stats.fills_discarded;
        self.early_refreshes += stats.early_refreshes;
        self.errors += stats.errors;
    }
}

/// Upper ends of the buckets of waits beyond a call's own work; the last bucket is open.
const WAIT_BUCKETS: [Duration; 3] = [
    Duration::from_millis(50),
    Duration::from_millis(150),
    Duration::from_millis(250),
];

#[derive(Default)]
struct Report {
    mode: &'static str,
    seed: u64,
    histories: u64,
    ops: u64,
    reads: u64,
    reads_returned: u64,
    loader_runs: u64,
    writes: u64,
    writes_acknowledged: u64,
    cancelled: u64,
    injected_panics: u64,
    unavailable: u64,
    /// Stale reads of a value a raw `Cache::set` stored after a newer write it overlapped:
    /// allowed by `set`'s contract, counted to show the race is exercised.
    unordered_sets: u64,
    fault_deletes: u64,
    fault_pauses: u64,
    stats: StatTotals,
    /// Returned calls by how long they took beyond their own work, per [`WAIT_BUCKETS`].
    waits: [u64; 4],
    longest_wait: Duration,
    stale: Violations,
    slow: Violations,
    failed: Violations,
    panicked: Violations,
}

impl Report {
    fn new(mode: &'static str, seed: u64) -> Self {
        Self {
            mode,
            seed,
            ..Self::default()
        }
    }

    fn violations(&self) -> u64 {
        self.stale.count + self.slow.count + self.failed.count + self.panicked.count
    }

    fn check(&mut self, history: &HistoryRef<'_>) {
        self.histories += 1;
        for event in history.events {
            if event.key.is_some() {
                self.fault_deletes += 1;
            } else {
                self.fault_pauses += 1;
            }
        }
        let floors = floors(history.records);
        for record in history.records {
            self.count(record);
            let plan = record.plan;
            match &record.outcome {
                Outcome::Returned(version) => {
                    self.check_latency(history, record);
                    if let Some(family) = plan.kind.reads() {
                        self.check_freshness(history, &floors, record, family, *version);
                    }
                }
                Outcome::Failed(error) => {
                    let header = format!(
                        "(c) op#{} {} row {} failed: {error}",
                        plan.op,
                        plan.kind.name(),
                        plan.id
                    );
                    let window = Window::around(record, "<-- failed");
                    let excerpt = || excerpt(history, self.mode, &header, window);
                    self.failed.add(plan.kind.name(), error.clone(), excerpt);
                }
                Outcome::UnexpectedPanic(message) => {
                    let header = format!(
                        "(c) op#{} {} row {} panicked: {message}",
                        plan.op,
                        plan.kind.name(),
                        plan.id
                    );
                    let window = Window::around(record, "<-- panicked");
                    let excerpt = || excerpt(history, self.mode, &header, window);
                    self.panicked
                        .add(plan.kind.name(), message.clone(), excerpt);
                }
                Outcome::Cancelled | Outcome::InjectedPanic | Outcome::Unavailable(_) => {}
            }
        }
    }

    fn count(&mut self, record: &Record) {
        self.ops += 1;
        self.loader_runs += record.loads;
        let reads = record.plan.kind.reads().is_some();
        if reads {
            self.reads += 1;
        } else {
            self.writes += 1;
        }
        match record.outcome {
            Outcome::Returned(_) if reads => self.reads_returned += 1,
            Outcome::Returned(_) => self.writes_acknowledged += 1,
            Outcome::Cancelled => self.cancelled += 1,
            Outcome::InjectedPanic => self.injected_panics += 1,
            Outcome::Unavailable(_) => self.unavailable += 1,
            Outcome::Failed(_) | Outcome::UnexpectedPanic(_) => {}
        }
    }

    /// Property (b).
    fn check_latency(&mut self, history: &HistoryRef<'_>, record: &Record) {
        let plan = record.plan;
        let bound = LOCK_TIMEOUT + OPERATION_TIMEOUT + SLACK;
        let wait = record.elapsed.saturating_sub(record.own);
        self.longest_wait = self.longest_wait.max(wait);
        let bucket = WAIT_BUCKETS.partition_point(|upper| *upper <= wait);
        self.waits[bucket] += 1;
        if wait <= bound {
            return;
        }
        let header = format!(
            "(b) op#{} {} row {} took {:.1?} with {:.1?} of its own work: {:.1?} beyond it, more \
             than lock_timeout + operation timeout + slack = {bound:?}",
            plan.op,
            plan.kind.name(),
            plan.id,
            record.elapsed,
            record.own,
            wait,
        );
        let cause = match wait.saturating_sub(bound) {
            over if over < LOCK_TIMEOUT / 2 => "under lock_timeout / 2 past the bound",
            over if over < LOCK_TIMEOUT => "lock_timeout / 2 to lock_timeout past the bound",
            _ => "over lock_timeout past the bound",
        };
        let window = Window::around(record, "<-- slow");
        let excerpt = || excerpt(history, self.mode, &header, window);
        self.slow.add(plan.kind.name(), cause.to_owned(), excerpt);
    }

    /// Property (a).
    fn check_freshness(
        &mut self,
        history: &HistoryRef<'_>,
        floors: &HashMap<(Family, u64), Vec<Floor>>,
        read: &Record,
        family: Family,
        version: u64,
    ) {
        let plan = read.plan;
        let Some(acks) = floors.get(&(family, plan.id)) else {
            return;
        };
        let before = acks.partition_point(|ack| ack.ticket < read.start);
        let Some(floor) = before.checked_sub(1).map(|last| acks[last]) else {
            return;
        };
        if version >= floor.version {
            return;
        }
        let writer = &history.records[floor.record];
        let header = format!(
            "(a) op#{} {} read row {} at version {version}, but op#{} {} had acknowledged \
             version {} before the read started (ticket {} < {})",
            plan.op,
            plan.kind.name(),
            plan.id,
            writer.plan.op,
            writer.plan.kind.name(),
            floor.version,
            writer.end,
            read.start,
        );
        let mut window = Window {
            id: plan.id,
            family: Some(family),
            from: writer.start.min(read.start),
            to: read.end,
            marks: vec![
                (writer.plan.op, "<-- newest acknowledged write".to_owned()),
                (plan.op, "<-- stale read".to_owned()),
            ],
        };
        // Where the stale value came from: the write that produced it, and the last load that
        // returned it, when they are in the history (records are in task order, not by ticket).
        let earlier = history.records.iter().filter(|record| {
            record.plan.id == plan.id && record.start < read.start && record.plan.op != plan.op
        });
        let written = earlier
            .clone()
            .filter(|record| record.wrote == Some(version))
            .max_by_key(|record| record.start);
        if let Some(source) = written {
            window.from = window.from.min(source.start);
            let mark = format!("<-- wrote v{version}");
            window.marks.push((source.plan.op, mark));
        }
        let loaded = earlier.filter(|record| {
            record.plan.kind.reads() == Some(family)
                && record.loads > 0
                && matches!(record.outcome, Outcome::Returned(v) if v == version)
        });
        if let Some(fill) = loaded.max_by_key(|record| record.start) {
            window.from = window.from.min(fill.start);
            let mark = format!("<-- loaded v{version}");
            window.marks.push((fill.plan.op, mark));
        }
        // `Cache::set` stores unconditionally (its documented contract): a `set` that overlapped
        // a newer write may land after it, and nothing but the application can order the two.
        // `#[cache_put]` orders itself, so the same from a write-through is a violation.
        if written
            .is_some_and(|source| source.plan.kind == Kind::SetSlide && source.end > writer.start)
        {
            self.unordered_sets += 1;
            return;
        }
        // Attribution for the fix, not part of the property: an older write-through that
        // overlapped the newer write may simply have landed after it.
        let source = match written {
            Some(source) if source.plan.kind.stores(family) && source.end > writer.start => {
                format!(
                    "an older {} overlapping the newer write",
                    source.plan.kind.name()
                )
            }
            _ => "an older load, or an entry the invalidation did not remove".to_owned(),
        };
        *self.stale.by_source.entry(source).or_default() += 1;
        let excerpt = || excerpt(history, self.mode, &header, window);
        let cause = writer.plan.kind.name().to_owned();
        self.stale.add(plan.kind.name(), cause, excerpt);
    }

    fn summary(&self) -> String {
        let stats = &self.stats;
        let mut text = format!(
            "[{}] seed {:#x}: {} histories, {} operations\n",
            self.mode, self.seed, self.histories, self.ops
        );
        let _ = writeln!(
            text,
            "  reads {} ({} returned, {} loader runs), writes {} ({} acknowledged), cancelled {}, \
             injected loader panics {}, direct calls refused as Redis unavailable {}, raw sets \
             landing after a newer overlapping write (allowed) {}",
            self.reads,
            self.reads_returned,
            self.loader_runs,
            self.writes,
            self.writes_acknowledged,
            self.cancelled,
            self.injected_panics,
            self.unavailable,
            self.unordered_sets
        );
        let _ = writeln!(
            text,
            "  cache: hits {}, misses {}, coalesced {}, lock waits {}, lock timeouts {}, fills \
             discarded {}, early refreshes {}, errors {}",
            stats.hits,
            stats.misses,
            stats.coalesced,
            stats.lock_waits,
            stats.lock_timeouts,
            stats.fills_discarded,
            stats.early_refreshes,
            stats.errors
        );
        if self.fault_deletes + self.fault_pauses > 0 {
            let _ = writeln!(
                text,
                "  faults: {} metadata keys deleted, {} write pauses",
                self.fault_deletes, self.fault_pauses
            );
        }
        let [short, medium, long, longest] = self.waits;
        let _ = writeln!(
            text,
            "  returned calls by wait beyond their own work: <50 ms {short}, 50-150 ms {medium}, \
             150-250 ms {long}, >=250 ms {longest}; longest {:.1?} (bound {:?})",
            self.longest_wait,
            LOCK_TIMEOUT + OPERATION_TIMEOUT + SLACK
        );
        let _ = writeln!(
            text,
            "  violations: {}\n    {}\n    {}\n    {}\n    {}",
            self.violations(),
            self.stale
                .line("(a) stale reads", "by the acknowledged write they missed"),
            self.slow.line(
                "(b) calls over own work + lock_timeout + operation timeout + slack",
                "by excess"
            ),
            self.failed.line("(c) errors or wrong rows", "by error"),
            self.panicked.line(
                "(c) panics other than the call's own injected one",
                "by message"
            ),
        );
        text
    }

    fn excerpts(&self) -> String {
        let mut text = String::new();
        for violations in [&self.stale, &self.slow, &self.failed, &self.panicked] {
            for excerpt in &violations.excerpts {
                text.push_str(excerpt);
                text.push('\n');
            }
        }
        text
    }
}

#[derive(Debug, Clone, Copy)]
struct Floor {
    ticket: u64,
    version: u64,
    record: usize,
}

/// Per cache key, the acknowledgements in ticket order, each carrying the newest version
/// acknowledged up to it, so a read's floor is one binary search.
fn floors(records: &[Record]) -> HashMap<(Family, u64), Vec<Floor>> {
    let mut acks: HashMap<(Family, u64), Vec<Floor>> = HashMap::new();
    for (index, record) in records.iter().enumerate() {
        if let Outcome::Returned(version) = record.outcome {
            for family in record.plan.kind.acknowledges() {
                acks.entry((*family, record.plan.id))
                    .or_default()
                    .push(Floor {
                        ticket: record.end,
                        version,
                        record: index,
                    });
            }
        }
    }
    for list in acks.values_mut() {
        list.sort_by_key(|ack| ack.ticket);
        for i in 1..list.len() {
            if list[i].version < list[i - 1].version {
                list[i].version = list[i - 1].version;
                list[i].record = list[i - 1].record;
            }
        }
    }
    acks
}

/// The part of a history an excerpt shows: the operations on one row (reads of one key family
/// only, when given) and the faults that can touch it, between two tickets.
struct Window {
    id: u64,
    family: Option<Family>,
    from: u64,
    to: u64,
    marks: Vec<(u64, String)>,
}

impl Window {
    fn around(record: &Record, mark: &str) -> Self {
        Self {
            id: record.plan.id,
            family: None,
            from: record.start,
            to: record.end,
            marks: vec![(record.plan.op, mark.to_owned())],
        }
    }

    fn shows(&self, record: &Record) -> bool {
        let family = record.plan.kind.reads();
        record.plan.id == self.id
            && record.end >= self.from
            && record.start <= self.to
            && (family.is_none() || self.family.is_none() || family == self.family)
    }

    fn shows_fault(&self, event: &FaultEvent) -> bool {
        let touches_row = |key: &String| {
            key.contains(&format!(":{}}}", self.id)) || key.ends_with(&group_tag(self.id % GROUPS))
        };
        (self.from..=self.to).contains(&event.ticket) && event.key.as_ref().is_none_or(touches_row)
    }
}

fn excerpt(history: &HistoryRef<'_>, mode: &str, header: &str, window: Window) -> String {
    let mut lines: Vec<(u64, String)> = Vec::new();
    for record in history.records.iter().filter(|record| window.shows(record)) {
        let mark = window
            .marks
            .iter()
            .filter(|(op, _)| *op == record.plan.op)
            .map(|(_, mark)| mark.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        lines.push((record.start, describe(record, &mark)));
    }
    for event in history
        .events
        .iter()
        .filter(|event| window.shows_fault(event))
    {
        let what = match &event.key {
            Some(key) => format!("fault: DEL {key}"),
            None => "fault: CLIENT PAUSE 5 WRITE".to_owned(),
        };
        lines.push((
            event.ticket,
            format!("  {:>6}         {what}", event.ticket),
        ));
    }
    lines.sort_by_key(|(ticket, _)| *ticket);
    let mut text = format!(
        "[{mode}] history {} (seed {:#x}): {header}\n  tickets        op     task process \
         call                      row outcome\n",
        history.index, history.seed
    );
    // Long windows keep their two ends: where the stale value came from, and the violation.
    let shown = lines.len().min(EXCERPT_LINES);
    let (head, tail) = (shown / 2, shown - shown / 2);
    for (index, (_, line)) in lines.iter().enumerate() {
        if index == head && lines.len() > shown {
            let _ = writeln!(text, "  ... {} more ...", lines.len() - shown);
        }
        if index < head || index >= lines.len() - tail {
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

fn describe(record: &Record, mark: &str) -> String {
    let plan = record.plan;
    let outcome = match &record.outcome {
        Outcome::Returned(version) if plan.kind.reads().is_some() => {
            format!("read v{version} ({} loader runs)", record.loads)
        }
        Outcome::Returned(version) => format!("acknowledged v{version}"),
        Outcome::Cancelled => {
            let after = plan.timeout.unwrap_or_default();
            match record.wrote {
                Some(version) => format!("cancelled after {after:.1?}, database at v{version}"),
                None => format!("cancelled after {after:.1?}"),
            }
        }
        Outcome::InjectedPanic => "injected loader panic".to_owned(),
        Outcome::UnexpectedPanic(message) => format!("panic: {message}"),
        Outcome::Unavailable(error) => format!("Redis unavailable: {error}"),
        Outcome::Failed(error) => format!("error: {error}"),
    };
    format!(
        "  {:>6}..{:<6} #{:<5} {:<4} {:<7} {:<25} {:<3} {outcome}, {:.1?} (own {:.1?}) {mark}",
        record.start,
        record.end,
        plan.op,
        plan.task,
        plan.handle,
        plan.kind.name(),
        plan.id,
        record.elapsed,
        record.own,
    )
}

// ---------------------------------------------------------------------------------------------
// The tests.

struct Settings {
    duration: Duration,
    seed: u64,
}

impl Settings {
    fn from_env() -> Self {
        let duration = match std::env::var("CACHEMACRO_HISTORY_SECS") {
            Ok(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|secs| secs.is_finite() && *secs >= 0.0)
                .unwrap_or_else(|| {
                    panic!("CACHEMACRO_HISTORY_SECS={text:?}: not a number of seconds")
                }),
            Err(_) => DEFAULT_SECS,
        };
        let seed = match std::env::var("CACHEMACRO_HISTORY_SEED") {
            Ok(text) => {
                let text = text.trim();
                let parsed = match text.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16),
                    None => text.parse(),
                };
                parsed.unwrap_or_else(|_| panic!("CACHEMACRO_HISTORY_SEED={text:?}: not a u64"))
            }
            Err(_) => DEFAULT_SEED,
        };
        Self {
            duration: Duration::from_secs_f64(duration),
            seed,
        }
    }
}

/// The seed of history `index`: splitmix64, so neighbouring histories' plans are unrelated.
fn history_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed.wrapping_add(index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The two backends' runs take turns: latency is one of the properties, and two runs sharing two
/// cores would measure each other.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Injected panics are expected by the hundred; the default hook would print each one.
fn quiet_injected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<InjectedPanic>().is_none() {
                default(info);
            }
        }));
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn conclude(reports: &[Report], duration: Duration) {
    let mut summary = format!("history checker: {duration:.1?}\n");
    for report in reports {
        summary.push_str(&report.summary());
    }
    println!("{summary}");
    for report in reports {
        print!("{}", report.excerpts());
    }
    let violations: u64 = reports.iter().map(Report::violations).sum();
    assert!(
        violations == 0,
        "{violations} violations of the cache's promise (histories above):\n{summary}"
    );
}

#[test]
fn memory_backend_keeps_its_promise() {
    let _turn = one_at_a_time();
    quiet_injected_panics();
    let settings = Settings::from_env();
    let mut report = Report::new("memory: 2 handles on one MemoryBackend", settings.seed);
    let started = Instant::now();
    runtime().block_on(async {
        for index in 0.. {
            let backend = MemoryBackend::new(16 * 1024 * 1024);
            let handles = (0..2)
                .map(|_| {
                    Cache::builder()
                        .operation_timeout(OPERATION_TIMEOUT)
                        .memory_backend(backend.clone())
                })
                .collect();
            let seed = history_seed(settings.seed, index);
            run_history(&mut report, index, seed, handles, None).await;
            if started.elapsed() >= settings.duration {
                break;
            }
        }
    });
    conclude(&[report], started.elapsed());
}

#[test]
fn redis_backend_keeps_its_promise() {
    let _turn = one_at_a_time();
    quiet_injected_panics();
    let settings = Settings::from_env();
    let server = RedisServer::start();
    let url = server.url();
    // `CLIENT PAUSE` ends on the server's cron, which runs `hz` times a second: at the default
    // 10, a 5 ms pause stalls writes for about 80 ms, past the operation timeout. At 500 it
    // lasts the 5–8 ms asked for.
    let client = redis::Client::open(url.as_str()).expect("the private server's URL");
    let mut connection = client.get_connection().expect("the private server answers");
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("hz")
        .arg(500)
        .query(&mut connection)
        .expect("CONFIG SET hz");
    let mut clean = Report::new("redis: 3 connections", settings.seed);
    let mut faulty = Report::new(
        "redis: 3 connections, metadata deletes and write pauses",
        settings.seed,
    );
    let started = Instant::now();
    runtime().block_on(async {
        for index in 0.. {
            // A fresh key prefix per history stands for an empty server, without a flush that
            // could race the previous history's background refreshes.
            let prefix = format!("h{index}:");
            let mut handles = Vec::new();
            for _ in 0..3 {
                let cache = Cache::builder()
                    .key_prefix(prefix.clone())
                    .operation_timeout(OPERATION_TIMEOUT)
                    .redis(&url)
                    .await
                    .expect("a well-formed URL");
                handles.push(cache);
            }
            let seed = history_seed(settings.seed, index);
            // Alternate histories inject faults, so what eviction breaks is told apart from
            // what races break.
            if index % 2 == 0 {
                run_history(&mut clean, index, seed, handles, None).await;
            } else {
                let faults = Faults {
                    url: url.clone(),
                    prefix,
                };
                run_history(&mut faulty, index, seed, handles, Some(faults)).await;
            }
            if started.elapsed() >= settings.duration && index % 2 == 1 {
                break;
            }
        }
    });
    conclude(&[clean, faulty], started.elapsed());
}

//! Where refreshes of functions that borrow run: in a background task whenever what they borrow
//! can be owned (`Self: Clone`, `&str`, `&Cache`, `&Arc<_>`) and their body is `Send`, in the
//! caller's task otherwise. Each case fills an entry, lets it go stale, and draws a refresh whose
//! load is held at a valve: a detached refresh lets its caller return while the valve is shut;
//! one in the caller cannot.

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachemacro_runtime::backend::Backend;
use cachemacro_runtime::{cached, Cache};
use tokio::sync::watch;

const TTL: Duration = Duration::from_millis(50);

/// The database: rows carry its version; a shut valve holds every load.
#[derive(Debug)]
struct Db {
    version: AtomicU64,
    loads: AtomicUsize,
    /// Open (`true`) or shut.
    valve: watch::Sender<bool>,
    /// Whether the next load panics once through the valve.
    panic_next: AtomicBool,
}

impl Db {
    fn new() -> Arc<Db> {
        Arc::new(Db {
            version: AtomicU64::new(0),
            loads: AtomicUsize::new(0),
            valve: watch::Sender::new(true),
            panic_next: AtomicBool::new(false),
        })
    }

    async fn load(&self, id: u64) -> String {
        self.loads.fetch_add(1, SeqCst);
        let mut valve = self.valve.subscribe();
        valve
            .wait_for(|open| *open)
            .await
            .expect("the database outlives its loads");
        assert!(!self.panic_next.swap(false, SeqCst), "the database fails");
        format!("{id}@{}", self.version.load(SeqCst))
    }

    fn loads(&self) -> usize {
        self.loads.load(SeqCst)
    }

    /// Shuts the valve and writes a new version: the next load waits for [`Db::open`].
    fn shut_and_write(&self) {
        self.valve.send_replace(false);
        self.version.fetch_add(1, SeqCst);
    }

    fn open(&self) {
        self.valve.send_replace(true);
    }
}

/// A service as applications write them: a handle to shared state, cloned by counting.
struct Catalog {
    cache: Cache,
    db: Arc<Db>,
    clones: Arc<AtomicUsize>,
}

impl Clone for Catalog {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, SeqCst);
        Catalog {
            cache: self.cache.clone(),
            db: Arc::clone(&self.db),
            clones: Arc::clone(&self.clones),
        }
    }
}

impl Catalog {
    fn new(cache: &Cache, db: &Arc<Db>) -> Catalog {
        Catalog {
            cache: cache.clone(),
            db: Arc::clone(db),
            clones: Arc::default(),
        }
    }

    fn clones(&self) -> usize {
        self.clones.load(SeqCst)
    }

    #[cached(ttl = "50ms", stale = "1h", early_refresh = false, cache = self.cache, key = "catalog:<id>")]
    async fn name(&self, id: u64) -> String {
        self.db.load(id).await
    }

    #[cached(ttl = "50ms", stale = "1h", early_refresh = false, cache = self.cache, key = "rc:<id>")]
    async fn name_holding_an_rc(&self, id: u64) -> String {
        let not_send = Rc::new(id);
        let row = self.db.load(id).await;
        drop(not_send);
        row
    }

    #[cached(
        ttl = "50ms",
        stale = "1h",
        early_refresh = false,
        cache = self.cache,
        key = "kept:<id>",
        detach = false
    )]
    async fn name_kept_in_the_caller(&self, id: u64) -> String {
        self.db.load(id).await
    }
}

/// A service that cannot be cloned.
struct Ledger {
    cache: Cache,
    db: Arc<Db>,
}

impl Ledger {
    fn new(cache: &Cache, db: &Arc<Db>) -> Ledger {
        Ledger {
            cache: cache.clone(),
            db: Arc::clone(db),
        }
    }

    #[cached(ttl = "50ms", stale = "1h", early_refresh = false, cache = self.cache, key = "ledger:<id>")]
    async fn name(&self, id: u64) -> String {
        self.db.load(id).await
    }
}

#[cached(ttl = "50ms", stale = "1h", early_refresh = false, cache = cache, key = "label:<prefix>:<id>")]
async fn label(cache: &Cache, db: &Arc<Db>, prefix: &str, id: u64) -> String {
    format!("{prefix}{}", db.load(id).await)
}

/// Owned arguments only: the body can be moved into a background task as it is.
#[cached(ttl = "50ms", stale = "1h", early_refresh = false, cache = cache, key = "owned:<id>")]
async fn owned(cache: Cache, db: Arc<Db>, id: u64) -> String {
    db.load(id).await
}

#[cached(
    ttl = "50ms",
    stale = "1h",
    early_refresh = false,
    cache = cache,
    key = "owned-kept:<id>",
    detach = false
)]
async fn owned_kept_in_the_caller(cache: Cache, db: Arc<Db>, id: u64) -> String {
    db.load(id).await
}

#[cached(ttl = "50ms", stale = "1h", early_refresh = false, cache = cache, key = "shown:<id>")]
async fn shown(cache: &Cache, db: &Arc<Db>, label: &dyn std::fmt::Display, id: u64) -> String {
    format!("{label}{}", db.load(id).await)
}

#[cached(ttl = "50ms", stale = "1h", early_refresh = false, cache = cache, key = "edited:<id>")]
async fn edited(cache: &Cache, db: &Arc<Db>, scratch: &mut String, id: u64) -> String {
    scratch.push('.');
    db.load(id).await
}

impl Catalog {
    // The background refresh of a method that borrows runs a sibling fn, which only companions'
    // places can hold.
    #[cached(
        ttl = "50ms",
        stale = "1h",
        early_refresh = false,
        cache = self.cache,
        key = "alone:<id>",
        companions = false
    )]
    async fn name_without_companions(&self, prefix: &str, id: u64) -> String {
        format!("{prefix}{}", self.db.load(id).await)
    }

    #[cached(ttl = "50ms", stale = "1h", early_refresh = false, cache = self.cache, key = "generic:<id>")]
    async fn name_generic<T: std::fmt::Display + Send>(&self, prefix: T, id: u64) -> String {
        format!("{prefix}{}", self.db.load(id).await)
    }

    #[cached(ttl = "50ms", stale = "1h", early_refresh = false, cache = self.cache, key = "pair")]
    async fn name_of_pair(&self, (id, _): (u64, u8)) -> String {
        self.db.load(id).await
    }

    #[cached(ttl = "50ms", stale = "1h", early_refresh = false, cache = self.cache, key = "cow:<id>")]
    // The shape under test: a borrowed `Cow`, which cannot be owned for a background task.
    #[allow(clippy::ptr_arg)]
    async fn name_of_cow(&self, prefix: &std::borrow::Cow<'static, str>, id: u64) -> String {
        format!("{prefix}{}", self.db.load(id).await)
    }
}

/// A service whose cached method takes `&mut self`.
struct Editor {
    cache: Cache,
    db: Arc<Db>,
    edits: u64,
}

impl Editor {
    #[cached(ttl = "50ms", stale = "1h", early_refresh = false, cache = self.cache, key = "editor:<id>")]
    async fn name(&mut self, id: u64) -> String {
        self.edits += 1;
        self.db.load(id).await
    }
}

/// Fills an entry with `read`, shuts the valve, writes a new version and lets the entry go
/// stale. Returns the value the entry holds.
async fn stale_entry<F, Fut>(db: &Db, read: F) -> String
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let filled = read().await;
    assert_eq!(read().await, filled, "a hit");
    assert_eq!(db.loads(), 1);
    db.shut_and_write();
    tokio::time::sleep(TTL + Duration::from_millis(10)).await;
    filled
}

/// Draws a refresh with `read` and expects its caller to return the stale value while the
/// refresh's load is held; then lets the load through and waits for the new value.
async fn expect_detached<F, Fut>(db: &Db, read: F, stale: &str, fresh: &str)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let served = tokio::time::timeout(Duration::from_secs(10), read())
        .await
        .expect("a stale hit waits for no load when its refresh can be detached");
    assert_eq!(served, stale);
    wait_for(|| db.loads() == 2).await;
    assert_eq!(read().await, stale, "the refresh is still held");
    db.open();
    let deadline = Instant::now() + Duration::from_secs(10);
    while read().await != fresh {
        assert!(Instant::now() < deadline, "the refresh never landed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Draws a refresh with `read` and expects its caller to run it: the call does not return
/// while the refresh's load is held.
async fn expect_in_caller<F, Fut>(db: &Db, read: F, stale: &str, fresh: &str)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let call = read();
    tokio::pin!(call);
    tokio::select! {
        served = &mut call => panic!("the caller returned {served:?} before its refresh's load"),
        () = wait_for(|| db.loads() == 2) => {}
    }
    db.open();
    assert_eq!(call.await, stale, "the caller is served the entry it found");
    assert_eq!(read().await, fresh, "its refresh landed before it returned");
    assert_eq!(db.loads(), 2);
}

pub async fn a_method_on_a_clonable_service_refreshes_in_the_background<B: Backend>(
    cache: &Cache,
    _: &B,
) {
    let db = Db::new();
    let catalog = Catalog::new(cache, &db);
    let stale = stale_entry(&db, || catalog.name(1)).await;
    assert_eq!(
        catalog.clones(),
        0,
        "misses and hits never clone the service"
    );
    expect_detached(&db, || catalog.name(1), &stale, "1@1").await;
    // A busy machine may let the new entry go stale too before the last read, and refresh again.
    let refreshes = cache.stats().stale_refreshes;
    assert!(refreshes >= 1);
    assert_eq!(
        catalog.clones(),
        refreshes as usize,
        "each refresh clones once"
    );
}

pub async fn a_function_borrowing_str_and_the_cache_refreshes_in_the_background<B: Backend>(
    cache: &Cache,
    _: &B,
) {
    let db = Db::new();
    let stale = stale_entry(&db, || label(cache, &db, "row ", 2)).await;
    expect_detached(&db, || label(cache, &db, "row ", 2), &stale, "row 2@1").await;
}

pub async fn a_service_that_cannot_be_cloned_refreshes_in_the_caller<B: Backend>(
    cache: &Cache,
    _: &B,
) {
    let db = Db::new();
    let ledger = Ledger::new(cache, &db);
    let stale = stale_entry(&db, || ledger.name(3)).await;
    expect_in_caller(&db, || ledger.name(3), &stale, "3@1").await;
}

pub async fn a_body_that_is_not_send_refreshes_in_the_caller<B: Backend>(cache: &Cache, _: &B) {
    let db = Db::new();
    let catalog = Catalog::new(cache, &db);
    let stale = stale_entry(&db, || catalog.name_holding_an_rc(4)).await;
    expect_in_caller(&db, || catalog.name_holding_an_rc(4), &stale, "4@1").await;
}

pub async fn detach_false_keeps_refreshes_in_the_caller<B: Backend>(cache: &Cache, _: &B) {
    let db = Db::new();
    let catalog = Catalog::new(cache, &db);
    let stale = stale_entry(&db, || catalog.name_kept_in_the_caller(5)).await;
    expect_in_caller(&db, || catalog.name_kept_in_the_caller(5), &stale, "5@1").await;
    assert_eq!(catalog.clones(), 0);
}

pub async fn a_detached_refresh_that_panics_lets_the_next_stale_hit_refresh<B: Backend>(
    cache: &Cache,
    _: &B,
) {
    let db = Db::new();
    let catalog = Catalog::new(cache, &db);
    let stale = stale_entry(&db, || catalog.name(6)).await;
    db.panic_next.store(true, SeqCst);
    db.open();
    assert_eq!(
        catalog.name(6).await,
        stale,
        "the caller never sees the panic"
    );
    wait_for(|| cache.stats().loads_panicked == 1).await;
    assert_eq!(db.loads(), 2);
    // The refresh's claim went with its task: the next stale hit draws another, which lands.
    let deadline = Instant::now() + Duration::from_secs(10);
    while catalog.name(6).await != "6@1" {
        assert!(
            Instant::now() < deadline,
            "no refresh after the one that panicked"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(db.loads() >= 3);
}

pub async fn a_caller_dropped_during_its_refresh_lets_the_next_stale_hit_refresh<B: Backend>(
    cache: &Cache,
    _: &B,
) {
    let db = Db::new();
    let ledger = Ledger::new(cache, &db);
    let stale = stale_entry(&db, || ledger.name(7)).await;
    // The refresh runs in the caller (the service cannot be cloned): dropping the call while its
    // load is held cancels the refresh.
    {
        let call = ledger.name(7);
        tokio::pin!(call);
        tokio::select! {
            served = &mut call => panic!("the caller returned {served:?} before its refresh's load"),
            () = wait_for(|| db.loads() == 2) => {}
        }
    }
    wait_for(|| cache.stats().loads_cancelled == 1).await;
    db.open();
    // Its fill lock is freed by a task the drop spawned: until then, stale hits take the lock
    // for another's refresh and are served without refreshing.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let served = ledger.name(7).await;
        if served == "7@1" {
            break;
        }
        assert_eq!(served, stale, "a stale hit is served the entry");
        assert!(
            Instant::now() < deadline,
            "no refresh after the cancelled one"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(db.loads(), 3, "one refresh after the cancelled one");
}

pub async fn an_owned_free_fn_refreshes_in_the_background<B: Backend>(cache: &Cache, _: &B) {
    let db = Db::new();
    let read = || owned(cache.clone(), Arc::clone(&db), 8);
    let stale = stale_entry(&db, read).await;
    expect_detached(&db, read, &stale, "8@1").await;
}

pub async fn detach_false_keeps_an_owned_free_fns_refreshes_in_the_caller<B: Backend>(
    cache: &Cache,
    _: &B,
) {
    let db = Db::new();
    let read = || owned_kept_in_the_caller(cache.clone(), Arc::clone(&db), 9);
    let stale = stale_entry(&db, read).await;
    expect_in_caller(&db, read, &stale, "9@1").await;
}

pub async fn a_method_without_companions_refreshes_in_the_caller<B: Backend>(cache: &Cache, _: &B) {
    let db = Db::new();
    let catalog = Catalog::new(cache, &db);
    let read = || catalog.name_without_companions("row ", 10);
    let stale = stale_entry(&db, read).await;
    expect_in_caller(&db, read, &stale, "row 10@1").await;
    assert_eq!(catalog.clones(), 0);
}

/// Borrows that cannot be owned for a background task (`&mut`, `&dyn`, `Cow`), a type parameter
/// and a pattern in place of a parameter's name: each refresh runs in its caller, and compiles
/// without annotations.
pub async fn unlendable_signatures_refresh_in_the_caller<B: Backend>(cache: &Cache, _: &B) {
    let db = Db::new();
    let read = || shown(cache, &db, &"row ", 11);
    let stale = stale_entry(&db, read).await;
    expect_in_caller(&db, read, &stale, "row 11@1").await;

    let db = Db::new();
    let read = || async {
        let mut scratch = String::new();
        edited(cache, &db, &mut scratch, 12).await
    };
    let stale = stale_entry(&db, read).await;
    expect_in_caller(&db, read, &stale, "12@1").await;

    let db = Db::new();
    let editor = tokio::sync::Mutex::new(Editor {
        cache: cache.clone(),
        db: Arc::clone(&db),
        edits: 0,
    });
    let read = || async { editor.lock().await.name(13).await };
    let stale = stale_entry(&db, read).await;
    expect_in_caller(&db, read, &stale, "13@1").await;
    assert_eq!(
        editor.lock().await.edits,
        2,
        "a load per load, refreshes included"
    );

    let db = Db::new();
    let catalog = Catalog::new(cache, &db);
    let read = || catalog.name_generic("row ", 14);
    let stale = stale_entry(&db, read).await;
    expect_in_caller(&db, read, &stale, "row 14@1").await;

    let db = Db::new();
    let catalog = Catalog::new(cache, &db);
    let read = || catalog.name_of_pair((15, 0));
    let stale = stale_entry(&db, read).await;
    expect_in_caller(&db, read, &stale, "15@1").await;

    let db = Db::new();
    let catalog = Catalog::new(cache, &db);
    let prefix = std::borrow::Cow::Borrowed("row ");
    let read = || catalog.name_of_cow(&prefix, 16);
    let stale = stale_entry(&db, read).await;
    expect_in_caller(&db, read, &stale, "row 16@1").await;
    assert_eq!(catalog.clones(), 0);
}

/// Polls `condition` until it holds, with a deadline far beyond what a busy machine needs.
async fn wait_for(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not reached in 10 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

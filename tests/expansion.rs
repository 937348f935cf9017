//! What the functions `#[cached]`, `#[cache_put]` and `#[cache_invalidate]` write do when called:
//! the keys and tags they use, the policy their arguments set, the companions they add and the
//! type they store. Each test declares functions as applications do and watches them through the
//! embedded cache: their loads, the cache's counters, and the entries readable by key.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use cachemacro_runtime::backend::MemoryBackend;
use cachemacro_runtime::{cache_invalidate, cache_put, cached, Cache};
use serde::{Deserialize, Serialize};

/// This test's module path, which default keys start with.
const MODULE: &str = module_path!();

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    org: u64,
}

// Keys and tags.

#[cached(cache = cache, key = "user:<id>", tags = ["org:<org>", "users"], version = 2)]
async fn tagged_user(cache: &Cache, loads: &AtomicUsize, id: u64, org: u64) -> u64 {
    loads.fetch_add(1, SeqCst);
    id + org
}

#[tokio::test]
async fn a_template_key_carries_its_version_and_its_tags_reach_it() {
    let cache = Cache::memory();
    let loads = AtomicUsize::new(0);
    assert_eq!(tagged_user(&cache, &loads, 1, 5).await, 6);
    assert_eq!(cache.get::<u64>("user:1@v2").await.unwrap(), Some(6));
    assert_eq!(cache.get::<u64>("user:1").await.unwrap(), None);

    cache.invalidate_tag("org:6").await.unwrap();
    assert_eq!(tagged_user(&cache, &loads, 1, 5).await, 6);
    assert_eq!(loads.load(SeqCst), 1, "another org's tag leaves the entry");

    cache.invalidate_tag("org:5").await.unwrap();
    assert_eq!(tagged_user(&cache, &loads, 1, 5).await, 6);
    assert_eq!(loads.load(SeqCst), 2, "the tag rendered from `org`");

    cache.invalidate_tag("users").await.unwrap();
    assert_eq!(tagged_user(&cache, &loads, 1, 5).await, 6);
    assert_eq!(loads.load(SeqCst), 3, "the literal tag");
}

#[derive(Clone, Copy)]
enum Period {
    Day,
    Week,
}

impl Period {
    fn label(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
        }
    }
}

#[cached(cache = cache, key = cachemacro_runtime::key_parts!("report", account, period.label()), version = 3)]
async fn report(cache: &Cache, loads: &AtomicUsize, account: String, period: Period) -> usize {
    loads.fetch_add(1, SeqCst);
    account.len()
}

#[cache_put(cache = cache, key = format!("report:{}:{}", account, period.label()))]
async fn save_report(cache: &Cache, account: String, period: Period, rows: usize) -> usize {
    let _ = (account, period);
    rows
}

#[tokio::test]
async fn a_key_expression_is_the_key_with_the_prefix_and_version() {
    let cache = Cache::builder().key_prefix("p:").memory();
    let loads = AtomicUsize::new(0);
    assert_eq!(report(&cache, &loads, "a:b".into(), Period::Day).await, 3);
    assert_eq!(report(&cache, &loads, "a:b".into(), Period::Day).await, 3);
    assert_eq!(report(&cache, &loads, "a:b".into(), Period::Week).await, 3);
    assert_eq!(loads.load(SeqCst), 2);
    // `key_parts!` escaped the `:` of the account, so no other account can share the key.
    assert_eq!(
        cache.get::<usize>("report:a%3Ab:day@v3").await.unwrap(),
        Some(3)
    );
    invalidate_report(&cache, &loads, "a:b".into(), Period::Day)
        .await
        .unwrap();
    assert_eq!(
        cache.get::<usize>("report:a%3Ab:day@v3").await.unwrap(),
        None
    );

    // A write-through's expression, unescaped.
    save_report(&cache, "x".into(), Period::Week, 9).await;
    assert_eq!(cache.get::<usize>("report:x:week").await.unwrap(), Some(9));
}

#[cached(cache = cache, version = 7)]
async fn versioned(cache: &Cache, id: u64) -> u64 {
    id
}

static NAMED_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = cache)]
async fn named(cache: &Cache, id: u64, name: String, _: bool) -> String {
    NAMED_LOADS.fetch_add(1, SeqCst);
    format!("{id} {name}")
}

#[cached(cache = cache)]
async fn r#type(cache: &Cache) -> u64 {
    1
}

#[tokio::test]
async fn a_default_key_names_the_function_then_its_arguments_then_the_version() {
    let cache = Cache::memory();
    versioned(&cache, 3).await;
    let key = format!("{MODULE}::versioned(3)@v7");
    assert_eq!(cache.get::<u64>(&key).await.unwrap(), Some(3), "{key}");

    // `_` is no argument of the key: both calls read one entry.
    assert_eq!(named(&cache, 1, "ada".into(), true).await, "1 ada");
    assert_eq!(named(&cache, 1, "ada".into(), false).await, "1 ada");
    assert_eq!(NAMED_LOADS.load(SeqCst), 1);
    let key = format!("{MODULE}::named(1,ada)");
    assert!(cache.get::<String>(&key).await.unwrap().is_some(), "{key}");

    r#type(&cache).await;
    let key = format!("{MODULE}::type()");
    assert_eq!(cache.get::<u64>(&key).await.unwrap(), Some(1), "{key}");
}

#[derive(Clone)]
struct Store {
    cache: Cache,
    loads: Arc<AtomicUsize>,
}

impl Store {
    #[cached(cache = self.cache)]
    async fn load<
        'a,
        T: From<u8> + Serialize + for<'de> Deserialize<'de> + Send + 'static,
        const N: u8,
    >(
        &self,
        id: u8,
        name: &'a str,
    ) -> T {
        self.loads.fetch_add(1, SeqCst);
        T::from(id + N + name.len() as u8)
    }
}

static FIND_LOADS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Boxed<T>(T);

impl<T: Default + Serialize + for<'de> Deserialize<'de> + Send + 'static> Boxed<T> {
    // No `self`, but a `Self` in the signature: the key names the impl's type arguments.
    #[cached(cache = cache, companions = false)]
    async fn find(cache: &Cache, id: u64) -> Option<Self> {
        FIND_LOADS.fetch_add(1, SeqCst);
        (id > 0).then(Self::default)
    }
}

#[tokio::test]
async fn a_default_key_names_self_and_the_generic_arguments_in_order() {
    let cache = Cache::memory();
    let store = Store {
        cache: cache.clone(),
        loads: Arc::default(),
    };
    assert_eq!(store.load::<u64, 3>(1, "ada").await, 7);
    let key = format!("{MODULE}::Store::load<u64,3>(1,ada)");
    assert_eq!(cache.get::<u64>(&key).await.unwrap(), Some(7), "{key}");
    assert_eq!(store.load::<u32, 3>(1, "ada").await, 7);
    assert_eq!(store.load::<u64, 4>(1, "ada").await, 8);
    assert_eq!(store.load::<u64, 3>(1, "ada").await, 7);
    assert_eq!(store.loads.load(SeqCst), 3);

    assert_eq!(Boxed::<u8>::find(&cache, 1).await, Some(Boxed(0)));
    assert_eq!(Boxed::<u16>::find(&cache, 1).await, Some(Boxed(0)));
    assert_eq!(Boxed::<u8>::find(&cache, 1).await, Some(Boxed(0)));
    assert_eq!(Boxed::<u16>::find(&cache, 1).await, Some(Boxed(0)));
    assert_eq!(FIND_LOADS.load(SeqCst), 2, "an entry per `Self`");
    assert_eq!(cache.stats().decode_errors, 0);
}

// Companions.

static PRICE_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = cache)]
async fn price(cache: &Cache, id: u64) -> u64 {
    PRICE_LOADS.fetch_add(1, SeqCst) as u64 + id
}

#[tokio::test]
async fn companions_of_a_default_key_reach_its_entry() {
    let cache = Cache::memory();
    assert_eq!(price(&cache, 10).await, 10);
    assert_eq!(price(&cache, 10).await, 10);
    invalidate_price(&cache, 10).await.unwrap();
    assert_eq!(price(&cache, 10).await, 11, "reloaded");
    assert_eq!(refresh_price(&cache, 10).await, 12);
    assert_eq!(price(&cache, 10).await, 12, "the refreshed entry");
    assert_eq!(PRICE_LOADS.load(SeqCst), 3);
}

#[cached(cache = cache, key = "label:<name>")]
async fn label(cache: &Cache, name: &str) -> String {
    name.to_uppercase()
}

#[tokio::test]
async fn invalidate_companion_owns_its_key_and_acts_only_when_awaited() {
    let cache = Cache::memory();
    assert_eq!(label(&cache, "ada").await, "ADA");
    let name = String::from("ada");
    let invalidation: cachemacro_runtime::Invalidation = invalidate_label(&cache, &name);
    drop(name);
    assert_eq!(
        cache.get::<String>("label:ada").await.unwrap().as_deref(),
        Some("ADA"),
        "nothing removed before the future runs"
    );
    // `Send + 'static`: spawned after the borrowed arguments are gone.
    tokio::spawn(invalidation).await.unwrap().unwrap();
    assert_eq!(cache.get::<String>("label:ada").await.unwrap(), None);
}

mod users {
    use super::*;

    #[cached(cache = cache, key = "user:<id>")]
    pub async fn get_user(
        cache: &Cache,
        loads: &AtomicUsize,
        id: u64,
        trace: bool,
    ) -> Result<u64, String> {
        if trace {
            loads.fetch_add(1, SeqCst);
        }
        Ok(id + loads.load(SeqCst) as u64)
    }

    #[cached(cache = cache, key = "plain:<id>", companions = false)]
    pub async fn plain(cache: &Cache, id: u64) -> u64 {
        id
    }

    /// Its own fn of the name a companion would take: there is none to clash with.
    pub async fn invalidate_plain(id: u64) -> &'static str {
        let _ = id;
        "mine"
    }
}

#[tokio::test]
async fn companions_take_the_visibility_and_parameters_of_the_cached_fn() {
    let cache = Cache::memory();
    let loads = AtomicUsize::new(0);
    assert_eq!(users::get_user(&cache, &loads, 1, true).await, Ok(2));
    assert_eq!(users::get_user(&cache, &loads, 1, true).await, Ok(2));
    let invalidated: cachemacro_runtime::Result<()> =
        users::invalidate_get_user(&cache, &loads, 1, false).await;
    invalidated.unwrap();
    assert_eq!(cache.get::<u64>("user:1").await.unwrap(), None);
    let refreshed: Result<u64, String> = users::refresh_get_user(&cache, &loads, 1, true).await;
    assert_eq!(refreshed, Ok(3));
    assert_eq!(cache.get::<u64>("user:1").await.unwrap(), Some(3));

    assert_eq!(users::plain(&cache, 4).await, 4);
    assert_eq!(users::invalidate_plain(4).await, "mine");
}

impl Store {
    // The shape under test: a `ref` binding among the parameters.
    #[allow(clippy::toplevel_ref_arg)]
    #[cached(cache = self.cache, key = "<name>:<N>")]
    async fn pick<
        'a,
        T: From<u8> + Serialize + for<'de> Deserialize<'de> + Send + 'static,
        const N: u8,
    >(
        mut self,
        (a, b): (u8, u8),
        _: u8,
        ref name: &'a str,
    ) -> T {
        // `mut self`: the body owns its copy of the store.
        self.loads = Arc::clone(&self.loads);
        self.loads.fetch_add(1, SeqCst);
        T::from(a + b + N + self.loads.load(SeqCst) as u8 + name.len() as u8)
    }
}

#[tokio::test]
async fn companions_of_a_method_pass_self_patterns_and_generic_arguments_on() {
    let cache = Cache::memory();
    let store = Store {
        cache: cache.clone(),
        loads: Arc::default(),
    };
    assert_eq!(store.clone().pick::<u64, 1>((1, 2), 0, "ab").await, 7);
    assert_eq!(store.clone().pick::<u64, 1>((1, 2), 9, "ab").await, 7);
    assert_eq!(
        store.clone().refresh_pick::<u64, 1>((1, 2), 0, "ab").await,
        8
    );
    assert_eq!(cache.get::<u64>("ab:1").await.unwrap(), Some(8));
    store
        .clone()
        .invalidate_pick::<u64, 1>((1, 2), 0, "ab")
        .await
        .unwrap();
    assert_eq!(cache.get::<u64>("ab:1").await.unwrap(), None);
    assert_eq!(store.loads.load(SeqCst), 2);
}

#[cached(cache = cache, key = "<pair.0>")]
async fn pair(cache: &Cache, loads: &AtomicUsize, pair: (u8, u8)) -> u8 {
    loads.fetch_add(1, SeqCst);
    pair.0 + pair.1
}

#[tokio::test]
async fn a_parameter_named_like_the_fn_leaves_its_companions_working() {
    let cache = Cache::memory();
    let loads = AtomicUsize::new(0);
    assert_eq!(pair(&cache, &loads, (3, 4)).await, 7);
    assert_eq!(refresh_pair(&cache, &loads, (3, 5)).await, 8);
    assert_eq!(cache.get::<u8>("3").await.unwrap(), Some(8));
    invalidate_pair(&cache, &loads, (3, 0)).await.unwrap();
    assert_eq!(cache.get::<u8>("3").await.unwrap(), None);
    assert_eq!(loads.load(SeqCst), 2);
}

/// A service whose private methods carry companions, as an inherent impl can.
struct Counter {
    cache: Cache,
    loads: u64,
}

impl Counter {
    #[cached(cache = self.cache, key = "count:<id>")]
    async fn count(&mut self, id: u64) -> u64 {
        self.loads += 1;
        id + self.loads
    }

    #[cached(cache = self.cache, key = "peek:<id>")]
    async fn peek(&self, id: u64) -> u64 {
        id + self.loads
    }

    #[cached(cache = self.cache, key = "nth:<N>")]
    async fn nth<
        'a,
        T: From<u64> + Serialize + for<'de> Deserialize<'de> + Send + 'static,
        const N: u64,
    >(
        &'a mut self,
    ) -> T {
        self.loads += 1;
        T::from(N + self.loads)
    }
}

#[tokio::test]
async fn private_methods_of_an_inherent_impl_have_companions() {
    let cache = Cache::memory();
    let mut counter = Counter {
        cache: cache.clone(),
        loads: 0,
    };
    assert_eq!(counter.count(10).await, 11);
    assert_eq!(counter.count(10).await, 11);
    counter.invalidate_count(10).await.unwrap();
    assert_eq!(counter.count(10).await, 12);
    assert_eq!(counter.refresh_count(10).await, 13);

    assert_eq!(counter.peek(1).await, 4);
    counter.loads = 10;
    assert_eq!(counter.peek(1).await, 4);
    assert_eq!(counter.refresh_peek(1).await, 11);
    counter.invalidate_peek(1).await.unwrap();
    assert_eq!(cache.get::<u64>("peek:1").await.unwrap(), None);

    assert_eq!(counter.nth::<u64, 5>().await, 16);
    assert_eq!(counter.nth::<u64, 5>().await, 16);
    assert_eq!(counter.refresh_nth::<u64, 5>().await, 17);
    counter.invalidate_nth::<u64, 5>().await.unwrap();
    assert_eq!(cache.get::<u64>("nth:5").await.unwrap(), None);

    // `clear_<name>` is an associated fn given the cache: `self.cache` is not there to read.
    let twenty = counter.count(20).await;
    counter.count(21).await;
    assert_eq!(counter.count(20).await, twenty, "a hit");
    assert_eq!(
        Counter::clear_count(&cache).await.unwrap(),
        3,
        "10, 20 and 21"
    );
    assert_eq!(cache.get::<u64>("count:20").await.unwrap(), None);
    assert_eq!(
        counter.count(20).await,
        twenty + 2,
        "loaded again, after 21's load"
    );
}

// Policy.

static DEFAULTS_LOADS: AtomicUsize = AtomicUsize::new(0);
static MINUTE_LOADS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = cache)]
async fn defaults(cache: &Cache, id: u64) -> u64 {
    DEFAULTS_LOADS.fetch_add(1, SeqCst);
    id
}

#[cached(cache = cache, ttl = "1m")]
async fn minute(cache: &Cache, id: u64) -> u64 {
    MINUTE_LOADS.fetch_add(1, SeqCst);
    id
}

#[tokio::test]
async fn without_arguments_the_caches_defaults_apply_and_ttl_overrides_them() {
    let cache = Cache::builder()
        .default_ttl(Duration::from_millis(100))
        .memory();
    defaults(&cache, 1).await;
    minute(&cache, 1).await;
    defaults(&cache, 1).await;
    assert_eq!(
        DEFAULTS_LOADS.load(SeqCst),
        1,
        "a hit inside the default ttl"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    defaults(&cache, 1).await;
    minute(&cache, 1).await;
    assert_eq!(
        DEFAULTS_LOADS.load(SeqCst),
        2,
        "the cache's 100 ms default ran out"
    );
    assert_eq!(
        MINUTE_LOADS.load(SeqCst),
        1,
        "the function's minute did not"
    );
}

/// How long each load takes: XFetch draws early refreshes in proportion to it.
const LOAD: Duration = Duration::from_millis(20);

#[cached(cache = cache, ttl = "1s", key = "eager:<id>", early_refresh = true, beta = 100.0)]
async fn eager(cache: &Cache, id: u64) -> u64 {
    tokio::time::sleep(LOAD).await;
    id
}

#[cached(cache = cache, ttl = "1s", key = "usual:<id>")]
async fn usual(cache: &Cache, id: u64) -> u64 {
    tokio::time::sleep(LOAD).await;
    id
}

#[cached(cache = cache, ttl = "1s", key = "never:<id>", early_refresh = false)]
async fn never_early(cache: &Cache, id: u64) -> u64 {
    tokio::time::sleep(LOAD).await;
    id
}

#[cached(cache = cache, ttl = "1s", key = "slide:<id>", sliding = true)]
async fn sliding(cache: &Cache, id: u64) -> u64 {
    tokio::time::sleep(LOAD).await;
    id
}

/// Hits the entry `read` fills 30 times over 300 ms: how many early refreshes that drew.
async fn early_refreshes(read: impl AsyncFn(&Cache) -> u64) -> u64 {
    let cache = Cache::memory();
    read(&cache).await;
    for _ in 0..30 {
        read(&cache).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cache.stats().early_refreshes
}

#[tokio::test]
async fn beta_early_refresh_and_sliding_decide_whether_hits_refresh_early() {
    // With a 20 ms load and `beta = 100`, each hit of a 1 s entry refreshes it with a probability
    // above one half; with the default `beta` of 1, below e^-40.
    assert!(early_refreshes(async |cache: &Cache| eager(cache, 1).await).await > 0);
    assert_eq!(
        early_refreshes(async |cache: &Cache| usual(cache, 1).await).await,
        0
    );
    assert_eq!(
        early_refreshes(async |cache: &Cache| never_early(cache, 1).await).await,
        0
    );
    assert_eq!(
        early_refreshes(async |cache: &Cache| sliding(cache, 1).await).await,
        0
    );
}

// Write-through and invalidation.

#[cached(cache = cache, key = "user:<id>", tags = ["org:<org>"], version = 2)]
async fn read_user(cache: &Cache, loads: &AtomicUsize, id: u64, org: u64) -> Result<User, String> {
    loads.fetch_add(1, SeqCst);
    Ok(User { id, org: org + 100 })
}

#[cache_put(cache = cache, key = "user:<user.id>", ttl = "200ms", tags = ["org:<user.org>"], version = 2)]
async fn save_user(cache: &Cache, user: User) -> Result<User, String> {
    Ok(user)
}

/// Its own fn of the name a companion would take: write-throughs have none to clash with.
async fn invalidate_save_user() -> &'static str {
    "mine"
}

#[tokio::test]
async fn a_write_through_stores_what_its_readers_read() {
    let cache = Cache::memory();
    let loads = AtomicUsize::new(0);
    let user = User { id: 1, org: 5 };
    assert_eq!(save_user(&cache, user.clone()).await, Ok(user.clone()));
    assert_eq!(
        cache.get::<User>("user:1@v2").await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(read_user(&cache, &loads, 1, 5).await, Ok(user.clone()));
    assert_eq!(loads.load(SeqCst), 0, "the reader hit the written entry");

    cache.invalidate_tag("org:5").await.unwrap();
    assert_eq!(cache.get::<User>("user:1@v2").await.unwrap(), None);

    save_user(&cache, user.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        cache.get::<User>("user:1@v2").await.unwrap(),
        None,
        "the write's ttl ran out"
    );
    assert_eq!(invalidate_save_user().await, "mine");
}

#[cached(cache = cache, key = "opt:<id>")]
async fn read_option(cache: &Cache, loads: &AtomicUsize, id: u64) -> Option<u64> {
    loads.fetch_add(1, SeqCst);
    None.filter(|_: &u64| id > 0)
}

#[cache_put(cache = cache, key = "opt:<id>")]
async fn save_option(cache: &Cache, id: u64) -> Option<u64> {
    Some(id * 10)
}

#[cached(cache = cache, key = "num:<id>")]
async fn read_number(cache: &Cache, loads: &AtomicUsize, id: u64) -> u64 {
    loads.fetch_add(1, SeqCst);
    0
}

#[cache_put(cache = cache, key = "num:<id>")]
async fn save_number(cache: &Cache, id: u64) -> u64 {
    id * 10
}

#[tokio::test]
async fn write_throughs_of_options_and_plain_values_store_what_readers_read() {
    let cache = Cache::memory();
    let loads = AtomicUsize::new(0);
    assert_eq!(save_option(&cache, 2).await, Some(20));
    assert_eq!(read_option(&cache, &loads, 2).await, Some(20));
    assert_eq!(save_number(&cache, 3).await, 30);
    assert_eq!(read_number(&cache, &loads, 3).await, 30);
    assert_eq!(loads.load(SeqCst), 0);
}

#[cached(cache = cache, key = "product:<id>", tags = ["vendor:<vendor>", "all"])]
async fn product(cache: &Cache, loads: &AtomicUsize, id: u64, vendor: u64) -> u64 {
    loads.fetch_add(1, SeqCst);
    id * 1000 + vendor
}

#[cache_invalidate(cache = cache, keys = ["product:<id>"], tags = ["vendor:<vendor>"])]
async fn delete_product(cache: &Cache, id: u64, vendor: u64, fail: bool) -> Result<(), String> {
    let _ = (id, vendor);
    if fail {
        return Err("refused".to_owned());
    }
    Ok(())
}

#[cache_invalidate(cache = cache, tags = ["all"])]
async fn touch(cache: &Cache) -> Option<u8> {
    None
}

#[tokio::test]
async fn invalidations_reach_keys_and_tags_inside_the_caches_prefix() {
    let backend = MemoryBackend::new(1024 * 1024);
    let cache = Cache::builder()
        .key_prefix("app:")
        .memory_backend(backend.clone());
    let other = Cache::builder()
        .key_prefix("other:")
        .memory_backend(backend);
    let loads = AtomicUsize::new(0);
    let read_all = || async {
        for cache in [&cache, &other] {
            product(cache, &loads, 1, 7).await;
            product(cache, &loads, 2, 7).await;
            product(cache, &loads, 3, 8).await;
        }
    };
    read_all().await;
    assert_eq!(loads.load(SeqCst), 6);

    delete_product(&cache, 1, 9, true).await.unwrap_err();
    read_all().await;
    assert_eq!(loads.load(SeqCst), 6, "an error invalidates nothing");

    delete_product(&cache, 1, 9, false).await.unwrap();
    read_all().await;
    assert_eq!(loads.load(SeqCst), 7, "the key, in this cache only");

    delete_product(&cache, 4, 7, false).await.unwrap();
    read_all().await;
    assert_eq!(loads.load(SeqCst), 9, "the tag, in this cache only");

    assert_eq!(touch(&cache).await, None);
    read_all().await;
    assert_eq!(loads.load(SeqCst), 12, "without a `Result`, always");
}

// The stored type.

#[cached(cache = cache, key = "io:<id>")]
async fn io_read(cache: &Cache, loads: &AtomicUsize, id: u64) -> std::io::Result<u8> {
    loads.fetch_add(1, SeqCst);
    if id == 0 {
        return Err(std::io::Error::other("no row 0"));
    }
    Ok(id as u8)
}

#[cached(cache = cache, key = "bytes:<id>")]
async fn bytes(cache: &Cache, id: u8) -> Result<Vec<u8>, std::convert::Infallible> {
    Ok(vec![id; 3])
}

#[cached(cache = cache, key = "row:<id>")]
async fn row(cache: &Cache, loads: &AtomicUsize, id: u8) -> Option<(u8, String)> {
    loads.fetch_add(1, SeqCst);
    (id > 0).then(|| (id, "row".to_owned()))
}

#[cached(cache = cache, key = "opaque:<id>")]
async fn opaque(cache: &Cache, loads: &AtomicUsize, id: u8) -> Option<impl Serialize> {
    loads.fetch_add(1, SeqCst);
    Some(id)
}

#[tokio::test]
async fn the_value_inside_the_return_type_is_stored() {
    let cache = Cache::memory();
    let loads = AtomicUsize::new(0);
    assert!(io_read(&cache, &loads, 0).await.is_err());
    assert!(io_read(&cache, &loads, 0).await.is_err());
    assert_eq!(
        loads.load(SeqCst),
        2,
        "an `io::Result`'s error is not stored"
    );
    assert_eq!(io_read(&cache, &loads, 1).await.unwrap(), 1);
    assert_eq!(io_read(&cache, &loads, 1).await.unwrap(), 1);
    assert_eq!(loads.load(SeqCst), 3);
    assert_eq!(cache.get::<u8>("io:1").await.unwrap(), Some(1));

    bytes(&cache, 4).await.unwrap();
    assert_eq!(
        cache.get::<Vec<u8>>("bytes:4").await.unwrap(),
        Some(vec![4; 3])
    );

    let loads = AtomicUsize::new(0);
    assert_eq!(row(&cache, &loads, 0).await, None);
    assert_eq!(row(&cache, &loads, 0).await, None);
    assert_eq!(loads.load(SeqCst), 1, "`None` is stored");
    assert_eq!(row(&cache, &loads, 2).await, Some((2, "row".to_owned())));
    assert_eq!(
        cache.get::<Option<(u8, String)>>("row:2").await.unwrap(),
        Some(Some((2, "row".to_owned())))
    );

    let loads = AtomicUsize::new(0);
    assert!(opaque(&cache, &loads, 5).await.is_some());
    assert!(opaque(&cache, &loads, 5).await.is_some());
    assert_eq!(loads.load(SeqCst), 1);
    assert_eq!(
        cache.get::<Option<u8>>("opaque:5").await.unwrap(),
        Some(Some(5))
    );
}

// Failed loads shared with the callers that waited on them.

/// Holds each load until `waiters` callers joined it.
async fn hold_until_joined(cache: &Cache, waiters: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while cache.stats().coalesced < waiters && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[derive(Debug, PartialEq)]
struct Unclonable(String);

trait Repo {
    fn failing(
        &self,
        loads: Arc<AtomicUsize>,
    ) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send + '_>>;
    fn failing_unclonable(
        &self,
        loads: Arc<AtomicUsize>,
    ) -> Pin<Box<dyn Future<Output = Result<u64, Unclonable>> + Send + '_>>;
}

struct Db {
    cache: Cache,
}

// The shape `#[async_trait]` gives a method.
impl Repo for Db {
    #[cached(cache = self.cache, key = "failing")]
    fn failing(
        &self,
        loads: Arc<AtomicUsize>,
    ) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send + '_>> {
        Box::pin(async move {
            loads.fetch_add(1, SeqCst);
            hold_until_joined(&self.cache, 9).await;
            Err("down".to_owned())
        })
    }

    #[cached(cache = self.cache, key = "failing-unclonable")]
    fn failing_unclonable(
        &self,
        loads: Arc<AtomicUsize>,
    ) -> Pin<Box<dyn Future<Output = Result<u64, Unclonable>> + Send + '_>> {
        Box::pin(async move {
            loads.fetch_add(1, SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(Unclonable("down".to_owned()))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_share_a_failed_load_when_its_result_can_be_cloned() {
    let db = Arc::new(Db {
        cache: Cache::memory(),
    });
    let loads = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..10)
        .map(|_| {
            let (db, loads) = (Arc::clone(&db), Arc::clone(&loads));
            tokio::spawn(async move { db.failing(loads).await })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), Err("down".to_owned()));
    }
    assert_eq!(
        loads.load(SeqCst),
        1,
        "one load, its error cloned to 9 waiters"
    );

    let loads = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..10)
        .map(|_| {
            let (db, loads) = (Arc::clone(&db), Arc::clone(&loads));
            tokio::spawn(async move { db.failing_unclonable(loads).await })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), Err(Unclonable("down".to_owned())));
    }
    assert!(
        loads.load(SeqCst) > 1,
        "an error that cannot be cloned is loaded again by waiters"
    );
}

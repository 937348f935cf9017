//! The attributes of cachemacro: [`#[cached]`](macro@cached) (cache-aside),
//! [`#[cache_put]`](macro@cache_put) (write-through) and
//! [`#[cache_invalidate]`](macro@cache_invalidate).
//!
//! Use them through `cachemacro_runtime`, which re-exports them and provides the caches they
//! talk to: an application depends on `cachemacro-runtime` alone and writes
//! `use cachemacro_runtime::cached;`. Each attribute's page, here and in the runtime's
//! documentation, describes every argument it takes, with an example.

mod ast;
mod attr;
mod errors;
mod expand;
mod template;
mod valid;

use proc_macro::TokenStream;

/// Caches the results of an `async fn` (cache-aside): a hit returns the stored value, a miss runs
/// the body and stores its result.
///
/// ```
/// use cachemacro_runtime::cached;
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct User;
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn load_user(_: u64) -> Result<User, DbError> { Ok(User) }
/// # }
///
/// #[cached(ttl = "1h", key = "user:<id>")]
/// async fn get_user(id: u64) -> Result<User, DbError> {
///     db::load_user(id).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(get_user(1).await.is_ok()); // miss: runs the body, stores the user
/// #     assert!(get_user(1).await.is_ok()); // hit: served from the cache
/// # }
/// ```
///
/// A call first looks the key up in the cache. On a hit it returns the stored value without
/// running the body; on a miss it runs the body and stores what it returned. What is stored
/// depends on the declared return type, read from the last segment of its path:
///
/// - `Result<T, E>` (also `io::Result<T>`, `anyhow::Result<T>`, ...): `Ok` values are stored,
///   errors are returned and never cached.
/// - `Option<T>`: `Some` is stored for the `ttl`, `None` for the [`negative_ttl`](#negative_ttl).
/// - anything else, including `()`: every value is stored.
///
/// Stored values are serialized, so `T` must implement `Serialize`, `DeserializeOwned` and
/// `Send`, and be `'static`: an owned value, such as `String`, `Vec<T>` or `Arc<T>`, rather than
/// `&str`, `&[T]` or `&T`, since a hit decodes a new value that cannot borrow. A cache that fails
/// (Redis down, an undecodable entry) is treated as a miss: the body runs and its value is
/// returned, unless [`on_cache_error = "fail"`](#on_cache_error) asks for the cache's error
/// instead.
///
/// Many callers missing the same key at once run the body once. In one process they wait for
/// the first one's load; across processes the first one takes a fill lock in the cache and the
/// others wait for its value (see [`lock`](#lock)). A failed load (`Err`, or a value that does
/// not serialize) is handed to the callers that waited for it when the return type is `Clone`;
/// otherwise each of them runs the body itself. Entries in frequent use are refreshed shortly
/// before they expire (see [`early_refresh`](#early_refresh)), and with [`stale`](#stale) an
/// expired entry is served while it is refreshed.
///
/// The attribute works on free functions, on methods taking `&self`, `&mut self` or `self`, on
/// generic functions, on functions with `impl Trait` parameters, and on methods of an
/// `#[async_trait]` impl or trait (write `#[async_trait]` on the impl block and `#[cached]` on
/// the method, as usual). Without a [`cache`](#cache) argument it uses the global cache: the one
/// installed with [`Cache::install`], else an in-process one. Every `#[cached]` function `name`
/// also gets two [companions](#companions), `invalidate_<name>` and `refresh_<name>`, taking the
/// same arguments.
///
/// # Arguments
///
/// All arguments are optional and can be given in any order, separated by commas:
/// [`ttl`](#ttl), [`key`](#key), [`tags`](#tags), [`cache`](#cache),
/// [`negative_ttl`](#negative_ttl), [`cache_none`](#cache_none), [`lock`](#lock),
/// [`lock_timeout`](#lock_timeout), [`early_refresh`](#early_refresh), [`beta`](#beta),
/// [`stale`](#stale), [`sliding`](#sliding), [`ttl_profile`](#ttl_profile),
/// [`version`](#version), [`companions`](#companions), [`detach`](#detach),
/// [`on_cache_error`](#on_cache_error), [`name`](#name), [`unless`](#unless),
/// [`condition`](#condition), [`codec`](#codec),
/// [`compress` and `compress_above`](#compress-compress_above) and [`crate`](#crate).
///
/// ## `ttl`
///
/// How long a stored value lives: whole seconds, or a string of units `d`, `h`, `m`, `s`, `ms`,
/// each at most once and largest first (`"90s"`, `"5m"`, `"1h30m"`, `"1d"`, `"250ms"`,
/// `"1s500ms"`). It must be longer than zero. Without it, the cache's default ttl applies
/// ([`CacheBuilder::default_ttl`]). The other durations, `negative_ttl`, `lock_timeout` and
/// `stale`, are written the same way.
///
/// ```
/// # use cachemacro_runtime::cached;
/// # #[derive(Clone, Copy, Debug)]
/// # enum Currency { Eur }
/// # impl std::fmt::Display for Currency {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("EUR") }
/// # }
/// # #[derive(Debug)]
/// # struct ApiError;
/// # mod api {
/// #     use super::*;
/// #     pub async fn rate(_: Currency) -> Result<f64, ApiError> { Ok(1.08) }
/// # }
/// #[cached(ttl = "1h30m")]
/// async fn exchange_rate(currency: Currency) -> Result<f64, ApiError> {
///     api::rate(currency).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert_eq!(exchange_rate(Currency::Eur).await.unwrap(), 1.08);
/// # }
/// ```
///
/// Equivalent code without the macro, in essence (the [expansion](#what-it-expands-to) also takes
/// the fill lock, refreshes early and renders the key without allocating):
///
/// ```
/// # use std::time::Duration;
/// # use cachemacro_runtime::Cache;
/// # #[allow(non_upper_case_globals)]
/// # static cache: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Cache::memory);
/// # #[derive(Clone, Copy, Debug)]
/// # enum Currency { Eur }
/// # impl std::fmt::Display for Currency {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("EUR") }
/// # }
/// # #[derive(Debug)]
/// # struct ApiError;
/// # mod api {
/// #     use super::*;
/// #     pub async fn rate(_: Currency) -> Result<f64, ApiError> { Ok(1.08) }
/// # }
/// async fn exchange_rate(currency: Currency) -> Result<f64, ApiError> {
///     let key = format!("{}::exchange_rate({currency})", module_path!());
///     let ttl = Duration::from_secs(5400);
///     cache.try_get_with(&key, ttl, || async { api::rate(currency).await }).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert_eq!(exchange_rate(Currency::Eur).await.unwrap(), 1.08);
/// # }
/// ```
///
/// ## `key`
///
/// The cache key, as a template. `<name>` is replaced by the parameter `name`, rendered with
/// `Display`; `<name.field>` (or `<a.b.c>`, `<pair.0>`) reads a field of it, and
/// `<self.field>` a field of the receiver. A const generic parameter of the function is named
/// the same way: `key = "grid:<N>:<x>"` for `async fn cell<const N: usize>(x: u64)`.
/// Characters of a value other than ASCII letters, digits, `_`, `-` and `.` are written as
/// `%XX`, so two placeholders must be separated by at least one other character, such as `:`
/// or `/`: then no two different calls share a key. The cache's key prefix
/// ([`CacheBuilder::key_prefix`]) comes first.
///
/// ```
/// # use cachemacro_runtime::cached;
/// # struct Customer { id: u64 }
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct Order;
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn orders(_: u64, _: u32) -> Result<Vec<Order>, DbError> { Ok(vec![Order]) }
/// # }
/// // `orders(&Customer { id: 7 }, 2)` is stored under "orders:7:2".
/// #[cached(key = "orders:<customer.id>:<page>")]
/// async fn orders(customer: &Customer, page: u32) -> Result<Vec<Order>, DbError> {
///     db::orders(customer.id, page).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert_eq!(orders(&Customer { id: 7 }, 1).await.unwrap().len(), 1);
/// # }
/// ```
///
/// Without `key`, the key names the function, then its arguments:
/// `scope::name[Self]<generics>(arguments)`, as in `app::users::get_user(42)`. The scope is
/// the module, any function the cached one is defined in, and for a method or associated
/// function its impl or trait, as the compiler resolves them (`app::Users`,
/// `<app::Db as app::UserRepo>`). `[Self]` is the `Self` type, written when the function takes
/// `self` or names `Self` in its signature and the type differs from the scope: it tells
/// apart the instances of a generic impl. `<generics>` lists the type parameters' type names
/// and the const parameters' values; the arguments are every parameter except `self`, `_` and
/// those named in the [`cache`](#cache) expression, which must then implement `Display`. Values
/// are escaped as in templates, paths and type names too except for `:`, so the function's
/// part ends at the first `[`, `<` or `(`: two different functions never share a key, whatever
/// their arguments. The names come from `core::any::type_name`, which a new compiler may print
/// differently; entries under the old keys are then missed once. Functions of one name in
/// separate blocks of the same function print alike and share keys: give them a `key`.
///
/// ### `key = <expression>`
///
/// For a key a template cannot express, `key` also takes an expression over the parameters that
/// evaluates to something `AsRef<str>` (a `String`, a `&str`). The cache's prefix comes before it
/// and the `version` suffix after. Nothing in it is escaped: the expression must give different
/// strings for arguments whose results differ. [`key_parts!`] escapes each part and joins them
/// with `:`, which keeps that promise.
///
/// ```
/// # use cachemacro_runtime::{cached, key_parts};
/// # #[derive(Clone, Copy)] enum Period { Day }
/// # impl Period { fn label(self) -> &'static str { "day" } }
/// #[cached(key = key_parts!("report", account, period.label()))]
/// async fn report(account: String, period: Period) -> u64 {
///     account.len() as u64
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert_eq!(report("ada".to_owned(), Period::Day).await, 3);
/// # }
/// ```
///
/// [`key_parts!`]: ../cachemacro_runtime/macro.key_parts.html
///
/// ## `tags`
///
/// Templates of tags the stored entry carries, written like `key` and naming the same
/// parameters. Invalidating a tag, with
/// [`#[cache_invalidate(tags = [..])]`](attr.cache_invalidate.html#tags) or
/// [`Cache::invalidate_tag`], removes every entry stored with it, however many keys that is:
/// "everything about org 7" without listing the keys. A tag is named without the cache's key
/// prefix, so by hand the entries of `org_id = 7` go with `cache.invalidate_tag("org:7")`. The
/// list cannot be empty.
///
/// ```
/// # use cachemacro_runtime::{cached, Cache};
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct User;
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn load_user(_: u64) -> Result<User, DbError> { Ok(User) }
/// # }
/// #[cached(key = "user:<id>", tags = ["org:<org_id>", "users"])]
/// async fn get_user(id: u64, org_id: u64) -> Result<User, DbError> {
///     db::load_user(id).await
/// }
/// # async fn remove_org(cache: &Cache) -> cachemacro_runtime::Result<()> {
/// // Later: every entry of org 7, whatever the user.
/// cache.invalidate_tag("org:7").await?;
/// # Ok(())
/// # }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(get_user(1, 7).await.is_ok());
/// #     remove_org(&Cache::memory()).await.unwrap();
/// # }
/// ```
///
/// ## `cache`
///
/// The cache to use: an expression giving a [`Cache`], a `&Cache`, an `Arc<Cache>`, or anything
/// else that dereferences to `Cache`. It may use the parameters, typically `self.cache` or a
/// `cache: &Cache` parameter; parameters it names are left out of the default key. Without it,
/// the global cache applies: the one installed with [`Cache::install`], else an in-process one.
///
/// ```
/// # use cachemacro_runtime::cached;
/// # use cachemacro_runtime::Cache;
/// # #[derive(Clone, Copy, Debug)]
/// # struct Sku(u64);
/// # impl std::fmt::Display for Sku {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{}", self.0) }
/// # }
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct Product;
/// # #[derive(Debug)]
/// # struct DbError;
/// # struct Db;
/// # impl Db {
/// #     async fn product(&self, _: Sku) -> Result<Product, DbError> { Ok(Product) }
/// # }
/// struct Repo {
///     cache: Cache,
///     db: Db,
/// }
///
/// impl Repo {
///     #[cached(cache = self.cache, ttl = 60)]
///     async fn product(&self, sku: Sku) -> Result<Product, DbError> {
///         self.db.product(sku).await
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     let repo = Repo { cache: Cache::memory(), db: Db };
/// #     assert!(repo.product(Sku(1)).await.is_ok());
/// # }
/// ```
///
/// ## `negative_ttl`
///
/// For functions returning `Option` only: how long a `None` stays cached, in the same forms as
/// `ttl`; 60 seconds by default. Caching `None` for a short time keeps repeated lookups of
/// something absent from reaching the database every time.
///
/// ```
/// # use cachemacro_runtime::cached;
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct User;
/// # mod db {
/// #     use super::*;
/// #     pub async fn find_user(_: u64) -> Option<User> { None }
/// # }
/// #[cached(ttl = "1h", negative_ttl = "5m", key = "user:<id>")]
/// async fn find_user(id: u64) -> Option<User> {
///     db::find_user(id).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert_eq!(find_user(1).await, None);
/// # }
/// ```
///
/// Equivalent code without the macro, in essence:
///
/// ```
/// # use std::time::Duration;
/// # use cachemacro_runtime::Cache;
/// # #[allow(non_upper_case_globals)]
/// # static cache: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Cache::memory);
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct User;
/// # mod db {
/// #     use super::*;
/// #     pub async fn find_user(_: u64) -> Option<User> { None }
/// # }
/// async fn find_user(id: u64) -> Option<User> {
///     let key = format!("user:{id}");
///     if let Ok(Some(found)) = cache.get::<Option<User>>(&key).await {
///         return found;
///     }
///     let found = db::find_user(id).await;
///     let ttl = if found.is_some() { 3600 } else { 300 };
///     let _ = cache.set(&key, &found, Duration::from_secs(ttl)).await;
///     found
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert_eq!(find_user(1).await, None);
/// # }
/// ```
///
/// ## `cache_none`
///
/// For functions returning `Option` only: `cache_none = false` stores `Some` values but never
/// `None`, so a value that appears later is seen at once. `true` is the default.
///
/// ```
/// # use cachemacro_runtime::cached;
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct Session;
/// # mod sessions {
/// #     pub async fn find(_: &str) -> Option<super::Session> { Some(super::Session) }
/// # }
/// #[cached(key = "session:<token>", cache_none = false)]
/// async fn session(token: String) -> Option<Session> {
///     sessions::find(&token).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(session("t0k3n".to_string()).await.is_some());
/// # }
/// ```
///
/// ## `lock`
///
/// Whether a miss takes the fill lock, a key in the cache next to the entry's: the caller that
/// takes it runs the body, and callers in other processes that miss meanwhile wait for its value
/// instead of running the body too (callers in the same process always wait for one another).
/// `true` by default. `lock = false` saves the lock's round trips when running the body a few
/// times over is cheap. On Redis the lock is a `SET <key>#lock <token> NX PX <lock_timeout>`, and
/// it is released only by the caller that still holds it.
///
/// ```
/// # use cachemacro_runtime::cached;
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct Flags;
/// # mod flags {
/// #     pub async fn fetch(_: &str) -> super::Flags { super::Flags }
/// # }
/// #[cached(ttl = "10s", lock = false)]
/// async fn feature_flags(service: String) -> Flags {
///     flags::fetch(&service).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     let _flags: Flags = feature_flags("billing".to_string()).await;
/// # }
/// ```
///
/// ## `lock_timeout`
///
/// How long a caller waits for another process's load before it runs the body itself, in the
/// same forms as `ttl`; 5 seconds by default. It is also how long the fill lock lives, so the
/// lock of a process that died while loading frees itself after this long. Set it a little
/// above the body's usual running time.
///
/// ```
/// # use cachemacro_runtime::cached;
/// # #[derive(Clone, Copy)]
/// # struct Month(u32);
/// # impl std::fmt::Display for Month {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{}", self.0) }
/// # }
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct Report;
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod reports {
/// #     use super::*;
/// #     pub async fn build(_: Month) -> Result<Report, DbError> { Ok(Report) }
/// # }
/// #[cached(ttl = "1h", lock_timeout = "30s")]
/// async fn monthly_report(month: Month) -> Result<Report, DbError> {
///     reports::build(month).await // takes about 20 s
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(monthly_report(Month(3)).await.is_ok());
/// # }
/// ```
///
/// ## `early_refresh`
///
/// Whether a hit may refresh its entry before it expires, so that a key in constant use is never
/// found missing. Each hit draws a refresh with a probability that grows as the expiry nears and
/// with how long the last load took (XFetch, by Vattani, Chierichetti and Lowenstein: a hit
/// refreshes when `now - delta * beta * ln(random())` reaches the expiry, `delta` being the last
/// load's duration); the first hit to draw one refreshes the entry while every caller keeps being
/// served the current value. `true` by default. See [`detach`](#detach) for where refreshes run
/// and what that requires of the body; `early_refresh = false` lifts that requirement.
///
/// ```
/// # use cachemacro_runtime::cached;
/// # #[derive(Clone, Copy, Debug)]
/// # enum Currency { Eur }
/// # impl std::fmt::Display for Currency {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("EUR") }
/// # }
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct Rates;
/// # #[derive(Debug)]
/// # struct ApiError;
/// # mod api {
/// #     use super::*;
/// #     pub async fn rates(_: Currency) -> Result<Rates, ApiError> { Ok(Rates) }
/// # }
/// #[cached(ttl = "1m", early_refresh = false)]
/// async fn rates(currency: Currency) -> Result<Rates, ApiError> {
///     api::rates(currency).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(rates(Currency::Eur).await.is_ok());
/// # }
/// ```
///
/// ## `beta`
///
/// How early [`early_refresh`](#early_refresh) tends to refresh: a number greater than zero,
/// `1.0` by default. Above 1 refreshes come earlier (fresher entries, more loads), below 1 later.
/// It cannot be combined with `early_refresh = false`.
///
/// ```
/// # use cachemacro_runtime::cached;
/// # #[derive(Clone, Copy)]
/// # struct GameId(u32);
/// # impl std::fmt::Display for GameId {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{}", self.0) }
/// # }
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct Score;
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn top_scores(_: GameId) -> Result<Vec<Score>, DbError> { Ok(vec![Score]) }
/// # }
/// #[cached(ttl = "5m", beta = 2.0)]
/// async fn leaderboard(game: GameId) -> Result<Vec<Score>, DbError> {
///     db::top_scores(game).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(leaderboard(GameId(1)).await.is_ok());
/// # }
/// ```
///
/// ## `stale`
///
/// How long an entry is still served after its ttl, in the same forms as `ttl`; off by default.
/// Inside that window a hit returns the expired value and refreshes the entry, so callers never
/// wait for the body (stale-while-revalidate); and while the body fails, the expired value
/// keeps being served until the window ends (fail-safe). The cache keeps each entry for its ttl
/// plus this window. See [`detach`](#detach) for where the refresh runs.
///
/// ```
/// # use cachemacro_runtime::cached;
/// # #[derive(Clone, Copy)]
/// # struct ShopId(u32);
/// # impl std::fmt::Display for ShopId {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{}", self.0) }
/// # }
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct Catalog;
/// # #[derive(Debug)]
/// # struct ApiError;
/// # mod api {
/// #     use super::*;
/// #     pub async fn catalog(_: ShopId) -> Result<Catalog, ApiError> { Ok(Catalog) }
/// # }
/// #[cached(ttl = "1m", stale = "1h")]
/// async fn catalog(shop: ShopId) -> Result<Catalog, ApiError> {
///     api::catalog(shop).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(catalog(ShopId(1)).await.is_ok());
/// # }
/// ```
///
/// ## `sliding`
///
/// `sliding = true` restarts an entry's ttl on every hit (on Redis, the read is a `GETEX` that
/// sets the ttl again in the same round trip), so it lives as long as it keeps being read, like a
/// session; `false` is the default. A sliding entry has no fixed expiry to refresh ahead of or to
/// serve past, so it cannot be combined with [`stale`](#stale), with [`beta`](#beta) or with
/// `early_refresh = true`.
///
/// ```
/// # use cachemacro_runtime::cached;
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct Session;
/// # mod sessions {
/// #     pub async fn find(_: &str) -> Option<super::Session> { Some(super::Session) }
/// # }
/// #[cached(key = "session:<token>", ttl = "30m", sliding = true)]
/// async fn session(token: String) -> Option<Session> {
///     sessions::find(&token).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(session("t0k3n".to_string()).await.is_some());
/// # }
/// ```
///
/// ## `ttl_profile`
///
/// Takes the ttl from the cache's profile of that name, looked up when the value is stored, so
/// operators can tune ttls without a rebuild: profiles are set with
/// [`CacheBuilder::ttl_profile`] and overridden by the environment variable
/// `CACHEMACRO_TTL_<NAME>` (`CACHEMACRO_TTL_PRODUCT_PRICE=5m`). A name the cache does not know
/// falls back to `ttl`, then to the cache's default ttl. Names are made of lowercase letters,
/// digits and `_`.
///
/// ```
/// # use std::time::Duration;
/// # use cachemacro_runtime::{cached, Cache};
/// # #[derive(Clone, Copy, Debug)]
/// # struct Sku(u64);
/// # impl std::fmt::Display for Sku {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{}", self.0) }
/// # }
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct Price(u64);
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn price(_: Sku) -> Result<Price, DbError> { Ok(Price(100)) }
/// # }
/// #[cached(key = "price:<sku>", ttl_profile = "product_price", ttl = "1m")]
/// async fn price(sku: Sku) -> Result<Price, DbError> {
///     db::price(sku).await
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // At start-up: prices live 10 minutes, unless CACHEMACRO_TTL_PRODUCT_PRICE says otherwise.
/// Cache::builder()
///     .ttl_profile("product_price", Duration::from_secs(600))
///     .memory()
///     .install();
/// #     assert_eq!(price(Sku(1)).await.unwrap(), Price(100));
/// # }
/// ```
///
/// ## `version`
///
/// A whole number greater than zero, appended to the key as `@v<version>`: bump it when the
/// stored type changes shape, and entries written by the previous release are no longer read
/// (they expire on their own). It follows the template, or the default key.
///
/// ```
/// # use cachemacro_runtime::cached;
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct UserV2;
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn load_user(_: u64) -> Result<UserV2, DbError> { Ok(UserV2) }
/// # }
/// // `get_user(1)` is stored under "user:1@v2".
/// #[cached(key = "user:<id>", version = 2)]
/// async fn get_user(id: u64) -> Result<UserV2, DbError> {
///     db::load_user(id).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(get_user(1).await.is_ok());
/// # }
/// ```
///
/// ## `companions`
///
/// `#[cached] async fn get_user(id)` also defines `invalidate_get_user(id)` and
/// `refresh_get_user(id)`, next to it, with the same visibility, generics and parameters (and
/// the same receiver, for a method: `repo.invalidate_get_user(id)`). They render the key the
/// way `get_user` does, `cache`, template and `version` included:
///
/// - `invalidate_get_user(id).await` removes the entry, and voids a load of it in flight, so
///   that the next `get_user(id)` runs the body. It returns the runtime's [`Result<()>`]: `Err`
///   when the cache could not be reached.
/// - `refresh_get_user(id).await` removes the entry, then calls `get_user(id)`, which runs the
///   body, stores the result and returns it. A failure to remove the entry is ignored, as
///   `get_user` ignores the cache's failures.
/// - `clear_get_user().await` removes every entry of `get_user`, whatever its arguments (see
///   `Cache::clear_prefix`), and resolves to how many it removed. It takes no arguments, or the
///   `&Cache` to clear when `get_user` names its `cache`; a function keyed by an expression has
///   none. For a method it is an associated fn: `Repo::clear_get_user(&cache)`.
///
/// ```
/// # use cachemacro_runtime::cached;
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct User;
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn load_user(_: u64) -> Result<User, DbError> { Ok(User) }
/// #     pub async fn rename_user(_: u64, _: &str) -> Result<(), DbError> { Ok(()) }
/// # }
/// #[cached(key = "user:<id>")]
/// pub async fn get_user(id: u64) -> Result<User, DbError> {
///     db::load_user(id).await
/// }
///
/// async fn rename(id: u64, name: &str) -> Result<User, DbError> {
///     db::rename_user(id, name).await?;
///     refresh_get_user(id).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(rename(1, "Ada").await.is_ok());
/// #     assert!(invalidate_get_user(1).await.is_ok());
/// # }
/// ```
///
/// Equivalent code without the macro, for the companions:
///
/// ```
/// # use std::time::Duration;
/// # use cachemacro_runtime::Cache;
/// # #[allow(non_upper_case_globals)]
/// # static cache: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Cache::memory);
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct User;
/// # #[derive(Debug)]
/// # struct DbError;
/// # pub async fn get_user(_: u64) -> Result<User, DbError> { Ok(User) }
/// // In fact a named future, `cachemacro_runtime::Invalidation`, owning the key.
/// pub fn invalidate_get_user(
///     id: u64,
/// ) -> impl std::future::Future<Output = cachemacro_runtime::Result<()>> + Send + 'static {
///     let key = format!("user:{id}");
///     async move { cache.delete(&key).await }
/// }
///
/// pub async fn refresh_get_user(id: u64) -> Result<User, DbError> {
///     let _ = cache.delete(&format!("user:{id}")).await;
///     get_user(id).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(invalidate_get_user(1).await.is_ok());
/// #     assert!(refresh_get_user(1).await.is_ok());
/// # }
/// ```
///
/// `companions = false` leaves them out. It is needed where extra methods cannot go: on a
/// method of a trait impl written with plain `async fn` (methods of an `#[async_trait]` impl
/// never get companions), or when the names are taken. It also keeps refreshes in the caller's
/// task for a function that borrows (see [`detach`](#detach)).
///
/// The attribute sees the method, not the impl around it: it cannot tell a method of a trait
/// impl from a private method of an inherent impl, which gets its companions. In a trait impl,
/// rustc then reports each companion the impl cannot hold ("method `invalidate_get_user` is not
/// a member of trait `Repo`"), and one more error says what to do: "`#[cached]` cannot add its
/// companions to this impl of a trait for `Db`: write `#[cached(companions = false)]`".
///
/// ```
/// # use cachemacro_runtime::cached;
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct User;
/// # #[derive(Debug)]
/// # struct DbError;
/// trait UserRepo {
///     async fn get_user(&self, id: u64) -> Result<User, DbError>;
/// }
///
/// struct Db;
///
/// impl UserRepo for Db {
///     #[cached(key = "user:<id>", companions = false)]
///     async fn get_user(&self, id: u64) -> Result<User, DbError> {
///         Ok(User) // the query
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(Db.get_user(1).await.is_ok());
/// # }
/// ```
///
/// An associated function without `self` is called by its companions as `Self::name` when its
/// signature names `Self`. One that names it nowhere reads like a free function, and fails with
/// ``cannot find function `name` ``: a `where Self: Sized` clause says where it lives.
///
/// ```
/// # use cachemacro_runtime::{cached, Cache};
/// struct Rows;
///
/// impl Rows {
///     #[cached(cache = cache.clone(), key = "rows:<table>")]
///     async fn count(cache: &Cache, table: u32) -> u64
///     where
///         Self: Sized,
///     {
///         42 // the query
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     let cache = Cache::memory();
/// #     assert_eq!(Rows::refresh_count(&cache, 1).await, 42);
/// # }
/// ```
///
/// ## `detach`
///
/// `detach = false` keeps every refresh of the function (early or stale) in the caller's task.
/// By default a refresh serves the caller that started it the current value, and runs in a
/// background task whenever the body can outlive that caller; otherwise it runs in the caller's
/// task, which waits for the body before it returns the current value (every other caller is
/// still served at once). The choice is made at compile time, from the signature and the types:
///
/// - A free function without generic parameters whose parameters own their values (no
///   reference, lifetime, `impl Trait` or `Self` in their types, no `ref` bindings) refreshes in
///   the background. Its body's future must then be `Send` and `'static`, and the return type
///   `Send`; a body that holds an `Rc` across an `.await`, for example, does not compile unless
///   `detach = false`.
/// - A function that borrows, such as a method on `&self` or a function taking `&str` or
///   `cache: &Cache`, refreshes in the background when each borrowed argument can be owned
///   (`Self: Clone`, `T: ToOwned` such as `str`, `[u8]` or `Path`, `Cache`, `Arc<_>`, with an owned
///   form that is `Send + Sync + 'static`) and its body's future is `Send`; otherwise in the
///   caller. The refresh then runs the body on owned copies: on a clone of `self`, which for a
///   service holding a pool or a client behind an `Arc` shares everything the body uses. Copies
///   are made only when a refresh is drawn, never on a hit or a miss. This needs the body in a
///   hidden sibling fn, so it applies where companions can go (`companions = false` keeps
///   refreshes in the caller), to `async fn`s without generic parameters whose parameters are
///   `&self`, shared references to types without lifetimes or `dyn`, or owned values bound to
///   plain names.
/// - With `detach = false` the `Send` requirement above is lifted.
///
/// The compiler ignores lifetimes when it checks which types can be owned: a method of a type
/// that is `Clone + Send + Sync` but not `'static` (a `struct Repo<'a>`, or `impl<T: Clone +
/// Send + Sync> Svc<T>` without `T: 'static`) is taken as detachable and then fails to compile
/// with "borrowed data escapes" at the attribute. Add `T: 'static` to the impl, or write
/// `detach = false`.
///
/// ```
/// # use std::sync::Arc;
/// # use cachemacro_runtime::{cached, Cache};
/// # struct Pool;
/// # impl Pool { async fn name(&self, id: u64) -> String { format!("user {id}") } }
/// #[derive(Clone)]
/// struct Users {
///     pool: Arc<Pool>,
/// }
///
/// impl Users {
///     // A stale hit returns at once; the refresh runs on a clone of `self` in the background.
///     #[cached(ttl = "1m", stale = "1h")]
///     async fn name(&self, id: u64) -> String {
///         self.pool.name(id).await
///     }
/// }
///
/// struct Borrowed<'a> {
///     pool: &'a Pool,
/// }
///
/// impl Borrowed<'_> {
///     // `Borrowed<'a>` cannot go to another task: its refreshes run in the caller.
///     #[cached(ttl = "1m", stale = "1h", detach = false)]
///     async fn name(&self, id: u64) -> String {
///         self.pool.name(id).await
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     let users = Users { pool: Arc::new(Pool) };
/// #     assert_eq!(users.name(1).await, "user 1");
/// #     assert_eq!(Borrowed { pool: &Pool }.name(2).await, "user 2");
/// # }
/// ```
///
/// ## `on_cache_error`
///
/// What a failed cache operation (Redis down, a timeout, an open circuit breaker) does to the
/// call: `"ignore"` or `"fail"`.
///
/// - `"ignore"` fails open: the failure is counted and logged, the call goes on as on a miss and
///   returns the function's own result.
/// - `"fail"` makes the call return `Err(E::from(cachemacro_runtime::Error))` instead of the
///   function's own result. A failed read returns the error before the body runs; a failure
///   after the body ran (storing its value) returns the error in place of the value. It needs
///   a `Result<T, E>` return type whose `E` implements `From<cachemacro_runtime::Error>`;
///   anything else is a compile error at `"fail"`.
///
/// Without the argument, the cache's setting applies: `"ignore"`, unless the cache was built
/// with [`CacheBuilder::on_cache_error`]`(OnCacheError::Fail)`, which then applies to the
/// functions whose return type can carry the error. An undecodable entry is a miss either way.
///
/// ```
/// # use cachemacro_runtime::cached;
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct Balance(i64);
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn balance(_: u64) -> Result<Balance, DbError> { Ok(Balance(42)) }
/// # }
/// #[derive(Debug)]
/// enum AppError {
///     Cache(cachemacro_runtime::Error),
///     Db(DbError),
/// }
///
/// impl From<cachemacro_runtime::Error> for AppError {
///     fn from(error: cachemacro_runtime::Error) -> Self {
///         AppError::Cache(error)
///     }
/// }
///
/// #[cached(key = "balance:<account>", on_cache_error = "fail")]
/// async fn balance(account: u64) -> Result<Balance, AppError> {
///     db::balance(account).await.map_err(AppError::Db)
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert_eq!(balance(1).await.unwrap(), Balance(42));
/// # }
/// ```
///
/// ## `name`
///
/// The function's stable identity: the `fn` label of its metrics, its name in
/// `Cache::function_stats`, and, in a default key, the part that names the function (its path
/// otherwise), so that its entries and its dashboards survive a rename or a move. Letters, digits
/// and `_ . : / -`. Two functions given one name share their counters, and with default keys
/// their entries: keep names unique.
///
/// ```
/// # use cachemacro_runtime::{cached, Cache};
/// #[cached(cache = cache, name = "users.get")]
/// async fn get_user(cache: &Cache, id: u64) -> String {
///     format!("user {id}")
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cache = Cache::memory();
/// get_user(&cache, 7).await;
/// assert_eq!(cache.function_stats()["users.get"].misses, 1);
/// assert!(cache.get::<String>("users.get(7)").await.unwrap().is_some());
/// # }
/// ```
///
/// ## `unless`
///
/// A closure or the path of a fn, given a reference to the value about to be stored: the `T` of
/// `Ok(T)` or `Some(T)`, or the plain return value. When it returns `true` the value is not
/// stored; the caller still gets it, and so do the callers waiting on the same load. A refresh
/// whose value it rejects removes the entry it would have replaced. Errors are never stored, and
/// `None` follows `negative_ttl`, whatever `unless` says.
///
/// ```
/// # use cachemacro_runtime::cached;
/// # #[derive(Debug)]
/// # struct DbError;
/// # async fn query(_: &str) -> Result<Vec<String>, DbError> { Ok(Vec::new()) }
/// #[cached(ttl = "10m", unless = |hits| hits.is_empty())]
/// async fn search(text: String) -> Result<Vec<String>, DbError> {
///     query(&text).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(search("x".to_owned()).await.unwrap().is_empty());
/// # }
/// ```
///
/// A borrowing function with `unless` refreshes in its caller's task rather than in the
/// background (see [`detach`](#detach)).
///
/// ## `condition`
///
/// A `bool` expression over the arguments, evaluated before the body with the arguments
/// borrowed: `false` sends the call past the cache, which it neither reads nor fills.
///
/// ```
/// # use cachemacro_runtime::cached;
/// # async fn load(_: u64) -> String { String::new() }
/// #[cached(ttl = "1m", condition = id != 0 && !fresh)]
/// async fn report(id: u64, fresh: bool) -> String {
///     load(id).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     report(0, true).await;
/// # }
/// ```
///
/// ## `codec`
///
/// How the value is serialized: `"json"` (the default), `"msgpack"` or `"postcard"`. Without
/// it, the cache's codec applies ([`CacheBuilder::codec`], JSON unless set). Every entry
/// records its codec, so a function reads only entries written with its own: an entry written
/// with another (by a function sharing the key, or by this one before its codec changed) is a
/// miss, counted in `decode_errors`, and the load overwrites it. JSON needs nothing; the others
/// need the runtime's feature of the same name, `msgpack` or `postcard`
/// (`cachemacro-runtime = { version = "0.1", features = ["msgpack"] }`): without it,
/// `codec = "msgpack"` is a compile error that names the feature to enable.
///
/// - `"json"`: readable with `redis-cli`, and every serde type works.
/// - `"msgpack"` (rmp-serde, structs as maps with their field names): smaller and faster than
///   JSON, and `#[serde(skip_serializing_if)]`, `#[serde(default)]` and added fields work as
///   with JSON.
/// - `"postcard"`: the smallest and fastest, but not self-describing: `skip_serializing_if`,
///   `flatten`, untagged enums and `serde_json::Value` do not round-trip (their entries are
///   misses, never wrong values), and a change of the type needs a new [`version`](#version).
///
/// ```
/// # use cachemacro_runtime::cached;
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct Catalog { items: Vec<String> }
/// # async fn load_catalog(_: u64) -> Catalog { Catalog { items: vec![] } }
/// #[cached(key = "catalog:<shop>", codec = "msgpack")]
/// async fn catalog(shop: u64) -> Catalog {
///     load_catalog(shop).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert_eq!(catalog(1).await, catalog(1).await);
/// # }
/// ```
///
/// ## `compress`, `compress_above`
///
/// Compresses values that serialize to at least `compress_above` bytes (default 1 KiB) with
/// `"lz4"` or `"zstd"`; `"none"` turns off the cache's compression for this function. A size is
/// a number of bytes or a string with a unit `B`, `KiB` or `MiB` (`compress_above = "16KiB"`);
/// `compress_above` needs `compress`. A value is stored compressed only when that makes it
/// smaller, and the envelope records it. A function reads uncompressed entries and those
/// compressed its own way; an entry compressed another way is a miss that the load overwrites.
/// Without `compress`, the cache's setting applies ([`CacheBuilder::compression`], none unless
/// set). Each needs the runtime's feature of its name, `lz4` (pure Rust) or `zstd` (builds the C
/// library); without it the argument is a compile error naming the feature.
///
/// ```
/// # use cachemacro_runtime::cached;
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct Report { rows: Vec<String> }
/// # async fn build_report(_: u64) -> Report { Report { rows: vec!["r".repeat(4096)] } }
/// #[cached(key = "report:<day>", codec = "msgpack", compress = "lz4", compress_above = "4KiB")]
/// async fn report(day: u64) -> Report {
///     build_report(day).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert_eq!(report(1).await, report(1).await);
/// # }
/// ```
///
/// ## `crate`
///
/// The path of the runtime crate, `::cachemacro_runtime` by default: every path the expansion
/// writes into the runtime starts there. Set it when the runtime is reached through a re-export
/// instead of a direct dependency.
///
/// ```
/// # mod my_platform {
/// #     pub use ::cachemacro_runtime;
/// # }
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct Config;
/// # async fn load_config(_: &str) -> Config { Config }
/// use my_platform::cachemacro_runtime::cached;
///
/// #[cached(crate = "my_platform::cachemacro_runtime", ttl = 60)]
/// async fn config(name: String) -> Config {
///     load_config(&name).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert_eq!(config("app".to_string()).await, Config);
/// # }
/// ```
///
/// # What it expands to
///
/// The attribute keeps the function's signature, attributes and docs, and replaces its body with
/// a call into the runtime. This is what it writes today for the function at the top of this
/// page, made `pub`: formatted, with comments added and its lint allowances left out. The
/// runtime is reached only through `::cachemacro_runtime::__private`, which is hidden and may
/// change in any release: depend on the attribute, not on this code.
///
/// ```
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # pub struct User;
/// # #[derive(Debug)]
/// # pub struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn load_user(_: u64) -> Result<User, DbError> { Ok(User) }
/// # }
/// // #[cached(ttl = "1h", key = "user:<id>")]
/// pub async fn get_user(id: u64) -> Result<User, DbError> {
///     // The name its statistics and metrics go by: its path, cut from the type name of a fn
///     // declared here (`name = "..."` would give it instead).
///     fn __cachemacro_function() {}
///     static __CACHEMACRO_FUNCTION: ::cachemacro_runtime::__private::Function =
///         ::cachemacro_runtime::__private::Function::scoped(
///             || {
///                 ::cachemacro_runtime::__private::scope(
///                     ::core::any::type_name_of_val(&__cachemacro_function),
///                     "get_user",
///                 )
///             },
///             "get_user",
///         );
///     static __CACHEMACRO_POLICY: ::cachemacro_runtime::__private::Policy =
///         ::cachemacro_runtime::__private::Policy::new()
///             .ttl(::core::time::Duration::from_millis(3600000))
///             .function(&__CACHEMACRO_FUNCTION);
///     // The stored type must be `Serialize + DeserializeOwned`: reported here, once.
///     let _ = ::cachemacro_runtime::__private::assert_cacheable::<User>;
///     let __cache = ::cachemacro_runtime::__private::global_cache();
///     let __key = {
///         let mut __builder = ::cachemacro_runtime::__private::key_builder(&__cache, 32);
///         __builder.literal("user:");
///         __builder.integer(id);
///         __builder.finish()
///     };
///     let __tags: [::cachemacro_runtime::__private::Key; 0] = [];
///     // The body, run only on a miss or a refresh; here free to run in a background task.
///     let mut __loader = ::cachemacro_runtime::__private::Detached::new(move || async move {
/// #       #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::empty_loop)]
///         if false {
///             let __cachemacro_fake_return: Result<User, DbError> = loop {};
///             return __cachemacro_fake_return;
///         }
///         {
///             db::load_user(id).await
///         }
///     });
///     let __value = ::cachemacro_runtime::__private::cached_result::<User, _, _>(
///         &__cache,
///         &__key,
///         &__tags,
///         &__CACHEMACRO_POLICY,
///         __loader.as_loader(),
///         // Whether a failed load is handed to the callers waiting for it: `Result<User,
///         // DbError>` is not `Clone`, so each of them runs the body.
///         {
///             use ::cachemacro_runtime::__private::{ShareByClone as _, ShareNothing as _};
///             (&::cachemacro_runtime::__private::SharingProbe::<Result<User, DbError>>::new())
///                 .sharing()
///         },
///         // Whether a cache failure can be returned as `Err(DbError::from(..))`: it cannot.
///         {
///             use ::cachemacro_runtime::__private::{FailByError as _, FailNever as _};
///             (&::cachemacro_runtime::__private::FailureProbe::<Result<User, DbError>>::new())
///                 .failure()
///         },
///     )
///     .await;
///     __value
/// }
///
/// /// Removes the entry that `get_user` cached for these arguments, so that its next call runs
/// /// the body, when the returned future is awaited.
/// ///
/// /// Fails with the cache's error if the entry could not be removed.
/// pub fn invalidate_get_user(id: u64) -> ::cachemacro_runtime::Invalidation {
///     let __cache = ::cachemacro_runtime::__private::global_cache();
///     let __key = {
///         let mut __builder = ::cachemacro_runtime::__private::key_builder(&__cache, 32);
///         __builder.literal("user:");
///         __builder.integer(id);
///         __builder.finish()
///     };
///     ::cachemacro_runtime::__private::invalidation(__cache, __key)
/// }
///
/// // And `async fn refresh_get_user(id)`: the same key, `invalidation(..).await` with its error
/// // ignored, then `get_user(id).await`.
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(get_user(1).await.is_ok());
/// #     assert!(invalidate_get_user(1).await.is_ok());
/// # }
/// ```
///
/// # Compile-time checks
///
/// Mistakes are reported at the offending token, all at once: an unknown or repeated argument
/// (with the argument it most likely meant when one is spelled close), a duration that is zero,
/// negative or malformed, a `beta` that is not a number greater than zero, `beta` with
/// `early_refresh = false`, `sliding = true` with `stale`, `beta` or `early_refresh = true`, a
/// template placeholder (in `key`, `keys` or `tags`) that names no parameter or is not separated
/// from the previous one, an empty `tags` or `keys` list, a `ttl_profile` name with other
/// characters than lowercase letters, digits and `_`, a `version` that is not a whole number
/// greater than zero, `negative_ttl` or `cache_none` on a function that does not return
/// `Option`, an `on_cache_error` other than `"fail"` or `"ignore"`, an unknown `codec` or
/// `compress`, a `codec` or `compress` whose feature of the runtime is off (naming the feature),
/// `compress_above` without `compress`, `on_cache_error = "fail"` on
/// a function whose return type is not a `Result` with an error type implementing
/// `From<cachemacro_runtime::Error>`, a `#[cache_put]` without `key`, a `#[cache_invalidate]`
/// without `keys` or `tags`, a function that is not `async`, and a `#[cached]` or `#[cache_put]`
/// function that returns a reference, or (for `#[cached]`) a type with a lifetime other than
/// `'static`. The function itself is then emitted unchanged, so code calling it reports no
/// further errors.
///
/// Some mistakes only the compiler can see, and it reports them where they are written: a stored
/// type that does not implement `Serialize` and `DeserializeOwned`, once, at the return type
/// ("`User` cannot be cached"); a placeholder's field that does not exist, at the template ("no
/// field `idd` on type `&User`"); a placeholder's value that is not `Display`, at the template,
/// or for the default key at the parameter; companions in a trait impl (see
/// [`companions`](#companions)). Nothing the expansion adds is linted in the caller's crate: a
/// crate that denies warnings compiles its cached functions, one-line bodies included.
///
/// [`Cache`]: ../cachemacro_runtime/struct.Cache.html
/// [`Cache::install`]: ../cachemacro_runtime/struct.Cache.html#method.install
/// [`Cache::invalidate_tag`]: ../cachemacro_runtime/struct.Cache.html#method.invalidate_tag
/// [`CacheBuilder::default_ttl`]: ../cachemacro_runtime/struct.CacheBuilder.html#method.default_ttl
/// [`CacheBuilder::codec`]: ../cachemacro_runtime/struct.CacheBuilder.html#method.codec
/// [`CacheBuilder::compression`]: ../cachemacro_runtime/struct.CacheBuilder.html#method.compression
/// [`CacheBuilder::key_prefix`]: ../cachemacro_runtime/struct.CacheBuilder.html#method.key_prefix
/// [`CacheBuilder::ttl_profile`]: ../cachemacro_runtime/struct.CacheBuilder.html#method.ttl_profile
/// [`CacheBuilder::on_cache_error`]: ../cachemacro_runtime/struct.CacheBuilder.html#method.on_cache_error
/// [`Result<()>`]: ../cachemacro_runtime/type.Result.html
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::cached(args.into(), item.into()).into()
}

/// Write-through: runs the `async fn`, then stores what it returned under `key`, so that the
/// [`#[cached]`](attr.cached.html) function reading that key sees the new value at once.
///
/// ```
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct User { id: u64 }
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn load_user(id: u64) -> Result<User, DbError> { Ok(User { id }) }
/// #     pub async fn save_user(user: User) -> Result<User, DbError> { Ok(user) }
/// # }
/// use cachemacro_runtime::{cache_put, cached};
///
/// #[cached(ttl = "1h", key = "user:<id>")]
/// async fn get_user(id: u64) -> Result<User, DbError> {
///     db::load_user(id).await
/// }
///
/// #[cache_put(ttl = "1h", key = "user:<user.id>")]
/// async fn save_user(user: User) -> Result<User, DbError> {
///     db::save_user(user).await // returns the saved row
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     let saved = save_user(User { id: 1 }).await.unwrap();
/// #     assert_eq!(get_user(1).await.unwrap(), saved);
/// # }
/// ```
///
/// The key is rendered before the body runs, so it reads the arguments as they were passed. The
/// body runs first, so the cache never holds a value the database refused; what is stored then
/// depends on the return type, as for `#[cached]`:
///
/// - `Result<T, E>`: `Ok` values are stored; after an `Err` the key is removed, since what the
///   cache held may be wrong too.
/// - `Option<T>`: `Some` is stored for the `ttl`, `None` for 60 seconds.
/// - anything else: every value is stored.
///
/// A store also voids the loads of that key still in flight, so a `#[cached]` call that read the
/// database before the write cannot overwrite the new value with the old one afterwards. A cache
/// that fails does not reach the caller unless [`on_cache_error = "fail"`](#on_cache_error) is
/// set: the function's result is returned as it is, and the key is removed instead if it can be.
/// The stored type must implement `Serialize` and `DeserializeOwned`, as for `#[cached]`.
///
/// Works on free functions, on methods taking any form of `self`, and on generic functions.
///
/// Equivalent code without the macro, in essence:
///
/// ```
/// # use std::time::Duration;
/// # use cachemacro_runtime::Cache;
/// # #[allow(non_upper_case_globals)]
/// # static cache: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Cache::memory);
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct User { id: u64 }
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn save_user(user: User) -> Result<User, DbError> { Ok(user) }
/// # }
/// async fn save_user(user: User) -> Result<User, DbError> {
///     let key = format!("user:{}", user.id);
///     let saved = db::save_user(user).await;
///     let _ = match &saved {
///         // Also voids the key's loads in flight.
///         Ok(user) => cache.set(&key, user, Duration::from_secs(3600)).await,
///         Err(_) => cache.delete(&key).await,
///     };
///     saved
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(save_user(User { id: 1 }).await.is_ok());
/// # }
/// ```
///
/// # Arguments
///
/// [`key`](#key) is required; the others are optional: [`ttl`](#ttl),
/// [`ttl_profile`](#ttl_profile), [`tags`](#tags), [`version`](#version), [`cache`](#cache),
/// [`on_cache_error`](#on_cache_error), [`name`](#name) and [`crate`](#crate). They can be
/// given in any order, separated by commas.
/// [`on_cache_error`](#on_cache_error), [`codec`](#codec),
/// [`compress` and `compress_above`](#compress-compress_above) and [`crate`](#crate). They can
/// be given in any order, separated by commas.
///
/// ## `key`
///
/// Required: the key to write, as a template, exactly as the [`key` of
/// `#[cached]`](attr.cached.html#key). Use the template of the `#[cached]` function that reads
/// the entry, naming this function's parameters: `"user:<user.id>"` above writes what
/// `"user:<id>"` reads. A `#[cached]` function without `key` reads under its default key, which
/// a write cannot name: give it a `key`.
///
/// ```
/// # use cachemacro_runtime::cache_put;
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct Product { sku: u64 }
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn update_product(product: Product) -> Result<Product, DbError> { Ok(product) }
/// # }
/// // `update_product(Product { sku: 7 })` writes "product:7".
/// #[cache_put(key = "product:<product.sku>")]
/// async fn update_product(product: Product) -> Result<Product, DbError> {
///     db::update_product(product).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(update_product(Product { sku: 7 }).await.is_ok());
/// # }
/// ```
///
/// ## `ttl`
///
/// How long the stored value lives, in the forms of the [`ttl` of
/// `#[cached]`](attr.cached.html#ttl); the cache's default ttl without it. Give it the same value
/// as the `#[cached]` function that reads the entry.
///
/// ```
/// # use cachemacro_runtime::cache_put;
/// # #[derive(Clone, Copy, Debug)]
/// # enum Currency { Eur }
/// # impl std::fmt::Display for Currency {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("EUR") }
/// # }
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn set_rate(_: Currency, rate: f64) -> Result<f64, DbError> { Ok(rate) }
/// # }
/// #[cache_put(key = "rate:<currency>", ttl = "5m")]
/// async fn set_rate(currency: Currency, rate: f64) -> Result<f64, DbError> {
///     db::set_rate(currency, rate).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert_eq!(set_rate(Currency::Eur, 1.08).await.unwrap(), 1.08);
/// # }
/// ```
///
/// ## `ttl_profile`
///
/// Looks the ttl up when the value is stored, under this name in the cache's profiles, as the
/// [`ttl_profile` of `#[cached]`](attr.cached.html#ttl_profile) does; `ttl`, then the cache's
/// default, apply to a name the cache does not know.
///
/// ```
/// # use cachemacro_runtime::cache_put;
/// # #[derive(Clone, Copy, Debug)]
/// # struct Sku(u64);
/// # impl std::fmt::Display for Sku {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{}", self.0) }
/// # }
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct Price(u64);
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn set_price(_: Sku, price: Price) -> Result<Price, DbError> { Ok(price) }
/// # }
/// #[cache_put(key = "price:<sku>", ttl_profile = "product_price")]
/// async fn set_price(sku: Sku, price: Price) -> Result<Price, DbError> {
///     db::set_price(sku, price).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert_eq!(set_price(Sku(1), Price(100)).await.unwrap(), Price(100));
/// # }
/// ```
///
/// ## `tags`
///
/// Templates of the tags the stored entry carries, as the [`tags` of
/// `#[cached]`](attr.cached.html#tags): a later
/// [`#[cache_invalidate(tags = [..])]`](attr.cache_invalidate.html#tags) naming one of them
/// removes the entry.
///
/// ```
/// # use cachemacro_runtime::cache_put;
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct User { id: u64, org_id: u64 }
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn save_user(user: User) -> Result<User, DbError> { Ok(user) }
/// # }
/// #[cache_put(key = "user:<user.id>", tags = ["org:<user.org_id>"])]
/// async fn save_user(user: User) -> Result<User, DbError> {
///     db::save_user(user).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(save_user(User { id: 1, org_id: 7 }).await.is_ok());
/// # }
/// ```
///
/// ## `version`
///
/// Appends `@v<version>` to the key, as the [`version` of `#[cached]`](attr.cached.html#version):
/// give the same number as the function that reads the entry.
///
/// ```
/// # use cachemacro_runtime::cache_put;
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct User { id: u64 }
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn save_user(user: User) -> Result<User, DbError> { Ok(user) }
/// # }
/// // `save_user(User { id: 1 })` writes "user:1@v2".
/// #[cache_put(key = "user:<user.id>", version = 2)]
/// async fn save_user(user: User) -> Result<User, DbError> {
///     db::save_user(user).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(save_user(User { id: 1 }).await.is_ok());
/// # }
/// ```
///
/// ## `cache`
///
/// The cache to write to, as the [`cache` of `#[cached]`](attr.cached.html#cache): an expression
/// giving a [`Cache`], `&Cache` or anything that dereferences to one; the global cache without
/// it.
///
/// ```
/// # use cachemacro_runtime::cache_put;
/// # use cachemacro_runtime::Cache;
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct User { id: u64 }
/// # #[derive(Debug)]
/// # struct DbError;
/// # struct Db;
/// # impl Db {
/// #     async fn save_user(&self, user: User) -> Result<User, DbError> { Ok(user) }
/// # }
/// struct Repo {
///     cache: Cache,
///     db: Db,
/// }
///
/// impl Repo {
///     #[cache_put(cache = self.cache, key = "user:<user.id>")]
///     async fn save_user(&self, user: User) -> Result<User, DbError> {
///         self.db.save_user(user).await
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     let repo = Repo { cache: Cache::memory(), db: Db };
/// #     assert!(repo.save_user(User { id: 1 }).await.is_ok());
/// # }
/// ```
///
/// ## `on_cache_error`
///
/// `"fail"` or `"ignore"`, as the [`on_cache_error` of
/// `#[cached]`](attr.cached.html#on_cache_error). With `"fail"`, a failed cache operation (Redis
/// down, a timeout, an open circuit breaker) makes the call return
/// `Err(E::from(cachemacro_runtime::Error))` instead of the function's own result. The body has
/// run by then: the error says that the cache may still hold the old value, which this write
/// could neither replace nor remove. It needs a `Result<T, E>` return type whose `E` implements
/// `From<cachemacro_runtime::Error>`. The default is `"ignore"`, fail-open, unless the cache was
/// built with [`CacheBuilder::on_cache_error`]`(OnCacheError::Fail)`.
///
/// ```
/// # use cachemacro_runtime::cache_put;
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct User { id: u64 }
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn save_user(user: User) -> Result<User, DbError> { Ok(user) }
/// # }
/// #[derive(Debug)]
/// enum AppError {
///     Cache(cachemacro_runtime::Error),
///     Db(DbError),
/// }
///
/// impl From<cachemacro_runtime::Error> for AppError {
///     fn from(error: cachemacro_runtime::Error) -> Self {
///         AppError::Cache(error)
///     }
/// }
///
/// #[cache_put(key = "user:<user.id>", on_cache_error = "fail")]
/// async fn save_user(user: User) -> Result<User, AppError> {
///     db::save_user(user).await.map_err(AppError::Db)
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(save_user(User { id: 1 }).await.is_ok());
/// # }
/// ```
///
/// ## `name`
///
/// The function's name in metrics and `Cache::function_stats` (where a write-through counts its
/// errors), as the [`name` of `#[cached]`](attr.cached.html#name); its path by default.
/// ## `codec`
///
/// How the value is serialized, as the [`codec` of `#[cached]`](attr.cached.html#codec): give
/// the write-through the codec of the `#[cached]` function that reads its key, or that function
/// reads its entries as misses.
///
/// ```
/// # use cachemacro_runtime::{cache_put, cached};
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct User { id: u64 }
/// #[cache_put(key = "user:<user.id>", codec = "msgpack")]
/// async fn save_user(user: User) -> User {
///     user // the database write
/// }
///
/// #[cached(key = "user:<id>", codec = "msgpack")]
/// async fn user(id: u64) -> User {
///     User { id } // the database read
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     save_user(User { id: 1 }).await;
/// #     assert_eq!(user(1).await, User { id: 1 });
/// # }
/// ```
///
/// ## `compress`, `compress_above`
///
/// Compression of large values, as the [`compress` and `compress_above` of
/// `#[cached]`](attr.cached.html#compress-compress_above).
///
/// ## `crate`
///
/// The path of the runtime crate, as the [`crate` of `#[cached]`](attr.cached.html#crate).
///
/// ```
/// # use my_platform::cachemacro_runtime::cache_put;
/// # mod my_platform {
/// #     pub use ::cachemacro_runtime;
/// # }
/// # #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
/// # struct User { id: u64 }
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn save_user(user: User) -> Result<User, DbError> { Ok(user) }
/// # }
/// #[cache_put(crate = "my_platform::cachemacro_runtime", key = "user:<user.id>")]
/// async fn save_user(user: User) -> Result<User, DbError> {
///     db::save_user(user).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(save_user(User { id: 1 }).await.is_ok());
/// # }
/// ```
///
/// [`Cache`]: ../cachemacro_runtime/struct.Cache.html
/// [`CacheBuilder::on_cache_error`]: ../cachemacro_runtime/struct.CacheBuilder.html#method.on_cache_error
#[proc_macro_attribute]
pub fn cache_put(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::cache_put(args.into(), item.into()).into()
}

/// Invalidation: runs the `async fn`, then removes the entries under `keys` and every entry
/// carrying one of `tags`, so that the next [`#[cached]`](attr.cached.html) call reloads them.
///
/// ```
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn delete_product(_: u64) -> Result<(), DbError> { Ok(()) }
/// # }
/// use cachemacro_runtime::cache_invalidate;
///
/// #[cache_invalidate(keys = ["product:<id>"], tags = ["vendor:<vendor_id>"])]
/// async fn delete_product(id: u64, vendor_id: u64) -> Result<(), DbError> {
///     db::delete_product(id).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(delete_product(1, 7).await.is_ok());
/// # }
/// ```
///
/// Keys and tags are rendered before the body runs, so they read the arguments as they were
/// passed. For a function returning `Result`, nothing is removed after an `Err`: the database
/// did not change. For any other return type, the entries are removed after every call.
/// Removing a key also voids the loads of it still in flight, so a `#[cached]` call that read the
/// database before the write cannot store the old value afterwards. A cache that fails does not
/// reach the caller unless [`on_cache_error = "fail"`](#on_cache_error) is set: the function's
/// result is returned as it is.
///
/// Works on free functions, on methods taking any form of `self`, and on generic functions.
///
/// Equivalent code without the macro, in essence:
///
/// ```
/// # use cachemacro_runtime::Cache;
/// # #[allow(non_upper_case_globals)]
/// # static cache: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Cache::memory);
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn delete_product(_: u64) -> Result<(), DbError> { Ok(()) }
/// # }
/// async fn delete_product(id: u64, vendor_id: u64) -> Result<(), DbError> {
///     let keys = vec![format!("product:{id}")];
///     let tags = vec![format!("vendor:{vendor_id}")];
///     let deleted = db::delete_product(id).await;
///     if deleted.is_ok() {
///         for key in keys {
///             let _ = cache.delete(&key).await; // also voids the key's loads in flight
///         }
///         for tag in tags {
///             let _ = cache.invalidate_tag(&tag).await;
///         }
///     }
///     deleted
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(delete_product(1, 7).await.is_ok());
/// # }
/// ```
///
/// # Arguments
///
/// At least one of [`keys`](#keys) and [`tags`](#tags) is required; [`cache`](#cache),
/// [`on_cache_error`](#on_cache_error) and [`crate`](#crate) are optional. They can be given in
/// any order, separated by commas.
///
/// ## `keys`
///
/// Templates of the keys to remove, written like the [`key` of `#[cached]`](attr.cached.html#key)
/// and naming this function's parameters. Use the template of the `#[cached]` function that
/// reads each entry, with its `@v<version>` suffix if it has a
/// [`version`](attr.cached.html#version). The list cannot be empty.
///
/// ```
/// # use cachemacro_runtime::cache_invalidate;
/// # struct Product { id: u64, category: String }
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn update_product(_: Product) -> Result<(), DbError> { Ok(()) }
/// # }
/// // Removes "product:1" and "category:tea" for `Product { id: 1, category: "tea".into() }`.
/// #[cache_invalidate(keys = ["product:<product.id>", "category:<product.category>"])]
/// async fn update_product(product: Product) -> Result<(), DbError> {
///     db::update_product(product).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     let product = Product { id: 1, category: "tea".to_string() };
/// #     assert!(update_product(product).await.is_ok());
/// # }
/// ```
///
/// ## `tags`
///
/// Templates of tags: every entry that a `#[cached]` or [`#[cache_put]`](attr.cache_put.html)
/// function stored with one of them is removed, as [`Cache::invalidate_tag`] does. See the
/// [`tags` of `#[cached]`](attr.cached.html#tags). The list cannot be empty.
///
/// ```
/// # use cachemacro_runtime::cache_invalidate;
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn rename_org(_: u64, _: &str) -> Result<(), DbError> { Ok(()) }
/// # }
/// #[cache_invalidate(tags = ["org:<org_id>"])]
/// async fn rename_org(org_id: u64, name: String) -> Result<(), DbError> {
///     db::rename_org(org_id, &name).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(rename_org(7, "Acme".to_string()).await.is_ok());
/// # }
/// ```
///
/// ## `cache`
///
/// The cache to remove the entries from, as the [`cache` of `#[cached]`](attr.cached.html#cache):
/// an expression giving a [`Cache`], `&Cache` or anything that dereferences to one; the global
/// cache without it.
///
/// ```
/// # use cachemacro_runtime::cache_invalidate;
/// # use cachemacro_runtime::Cache;
/// # #[derive(Debug)]
/// # struct DbError;
/// # struct Db;
/// # impl Db {
/// #     async fn delete_user(&self, _: u64) -> Result<(), DbError> { Ok(()) }
/// # }
/// struct Repo {
///     cache: Cache,
///     db: Db,
/// }
///
/// impl Repo {
///     #[cache_invalidate(cache = self.cache, keys = ["user:<id>"])]
///     async fn delete_user(&self, id: u64) -> Result<(), DbError> {
///         self.db.delete_user(id).await
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     let repo = Repo { cache: Cache::memory(), db: Db };
/// #     assert!(repo.delete_user(1).await.is_ok());
/// # }
/// ```
///
/// ## `on_cache_error`
///
/// `"fail"` or `"ignore"`, as the [`on_cache_error` of
/// `#[cached]`](attr.cached.html#on_cache_error). With `"fail"`, an invalidation that failed
/// (Redis down, a timeout, an open circuit breaker) makes the call return
/// `Err(E::from(cachemacro_runtime::Error))` instead of the function's own result. The body has
/// run by then: the error says that stale entries may still be served until the invalidation,
/// queued for replay, reaches Redis. It needs a `Result<T, E>` return type whose `E` implements
/// `From<cachemacro_runtime::Error>`. The default is `"ignore"`, fail-open, unless the cache was
/// built with [`CacheBuilder::on_cache_error`]`(OnCacheError::Fail)`.
///
/// ```
/// # use cachemacro_runtime::cache_invalidate;
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn delete_user(_: u64) -> Result<(), DbError> { Ok(()) }
/// # }
/// #[derive(Debug)]
/// enum AppError {
///     Cache(cachemacro_runtime::Error),
///     Db(DbError),
/// }
///
/// impl From<cachemacro_runtime::Error> for AppError {
///     fn from(error: cachemacro_runtime::Error) -> Self {
///         AppError::Cache(error)
///     }
/// }
///
/// #[cache_invalidate(keys = ["user:<id>"], on_cache_error = "fail")]
/// async fn delete_user(id: u64) -> Result<(), AppError> {
///     db::delete_user(id).await.map_err(AppError::Db)
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(delete_user(1).await.is_ok());
/// # }
/// ```
///
/// ## `crate`
///
/// The path of the runtime crate, as the [`crate` of `#[cached]`](attr.cached.html#crate).
///
/// ```
/// # use my_platform::cachemacro_runtime::cache_invalidate;
/// # mod my_platform {
/// #     pub use ::cachemacro_runtime;
/// # }
/// # #[derive(Debug)]
/// # struct DbError;
/// # mod db {
/// #     use super::*;
/// #     pub async fn delete_user(_: u64) -> Result<(), DbError> { Ok(()) }
/// # }
/// #[cache_invalidate(crate = "my_platform::cachemacro_runtime", keys = ["user:<id>"])]
/// async fn delete_user(id: u64) -> Result<(), DbError> {
///     db::delete_user(id).await
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #     assert!(delete_user(1).await.is_ok());
/// # }
/// ```
///
/// [`Cache`]: ../cachemacro_runtime/struct.Cache.html
/// [`Cache::invalidate_tag`]: ../cachemacro_runtime/struct.Cache.html#method.invalidate_tag
/// [`CacheBuilder::on_cache_error`]: ../cachemacro_runtime/struct.CacheBuilder.html#method.on_cache_error
#[proc_macro_attribute]
pub fn cache_invalidate(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::cache_invalidate(args.into(), item.into()).into()
}

//! The `#[cached]` attribute: cache-aside for `async fn`s.
//!
//! Use it through `cachemacro_runtime`, which re-exports it and provides the caches it talks to:
//!
//! ```ignore
//! use cachemacro_runtime::cached;
//!
//! #[cached(ttl = "1h", key = "user:<id>")]
//! async fn get_user(id: u64) -> Result<User, DbError> {
//!     db::load_user(id).await
//! }
//! ```
//!
//! A call first looks the key up in the cache. On a hit it returns the stored value without
//! running the body; on a miss it runs the body and stores what it returned. What is stored
//! depends on the declared return type, read from the last segment of its path:
//!
//! - `Result<T, E>` (also `io::Result<T>`, `anyhow::Result<T>`, ...): `Ok` values are stored,
//!   errors are returned and never cached.
//! - `Option<T>`: `Some` is stored for the `ttl`, `None` for the [`negative_ttl`](#negative_ttl).
//! - anything else, including `()`: every value is stored.
//!
//! Stored values are serialized, so `T` must implement `Serialize`, `DeserializeOwned` and
//! `Send`, and be `'static`. A cache that fails (Redis down, an undecodable entry) is treated
//! as a miss: the body runs and its value is returned.
//!
//! Many callers missing the same key at once run the body once. In one process they wait for
//! the first one's load; across processes the first one takes a fill lock in the cache and the
//! others wait for its value (see [`lock`](#lock)). A failed load (`Err`, or a value that does
//! not serialize) is handed to the callers that waited for it when the return type is `Clone`;
//! otherwise each of them runs the body itself. Entries in frequent use are refreshed shortly
//! before they expire (see [`early_refresh`](#early_refresh)), and with [`stale`](#stale) an
//! expired entry is served while it is refreshed.
//!
//! The attribute works on free functions, on methods taking `&self`, `&mut self` or `self`, on
//! generic functions, on functions with `impl Trait` parameters, and on methods of an
//! `#[async_trait]` impl or trait (write `#[async_trait]` on the impl block and `#[cached]` on
//! the method, as usual).
//!
//! All arguments are optional and can be given in any order, separated by commas.
//!
//! ## `ttl`
//!
//! How long a stored value lives: whole seconds, or a string of units `d`, `h`, `m`, `s`, `ms`,
//! each at most once and largest first (`"90s"`, `"5m"`, `"1h30m"`, `"1d"`, `"250ms"`,
//! `"1s500ms"`). It must be longer than zero. Without it, the cache's default ttl applies. The
//! other durations, `negative_ttl`, `lock_timeout` and `stale`, are written the same way.
//!
//! ```ignore
//! #[cached(ttl = "1h30m")]
//! async fn exchange_rate(currency: Currency) -> Result<f64, ApiError> {
//!     api::rate(currency).await
//! }
//! ```
//!
//! Equivalent code without the macro:
//!
//! ```ignore
//! async fn exchange_rate(currency: Currency) -> Result<f64, ApiError> {
//!     let key = format!("{}::exchange_rate:{currency}", module_path!());
//!     let ttl = Duration::from_secs(5400);
//!     cache.try_get_with(&key, ttl, || async { api::rate(currency).await }).await
//! }
//! ```
//!
//! ## `key`
//!
//! The cache key, as a template. `<name>` is replaced by the parameter `name`, rendered with
//! `Display`; `<name.field>` (or `<a.b.c>`, `<pair.0>`) reads a field of it, and
//! `<self.field>` a field of the receiver. Characters of a value other than ASCII letters,
//! digits, `_`, `-` and `.` are written as `%XX`, so two placeholders must be separated by at
//! least one other character, such as `:` or `/`: then no two different calls share a key.
//!
//! Without `key`, the key is the function's path followed by every parameter except `self`,
//! `_` and those named in the [`cache`](#cache) expression, separated by `:`, and each
//! parameter must then implement `Display`. Type parameters are not part of the key: a generic
//! function cached for several types should name the type in its `key`.
//!
//! ```ignore
//! #[cached(key = "orders:<customer.id>:<page>")]
//! async fn orders(customer: &Customer, page: u32) -> Result<Vec<Order>, DbError> {
//!     db::orders(customer.id, page).await
//! }
//! ```
//!
//! Equivalent code without the macro (values escaped as described above):
//!
//! ```ignore
//! async fn orders(customer: &Customer, page: u32) -> Result<Vec<Order>, DbError> {
//!     let key = format!("orders:{}:{page}", customer.id);
//!     cache.try_get_with(&key, default_ttl, || async { db::orders(customer.id, page).await }).await
//! }
//! ```
//!
//! ## `cache`
//!
//! The cache to use: an expression giving a `Cache`, a `&Cache`, an `Arc<Cache>`, or anything
//! else that dereferences to `Cache`. It may use the parameters, typically `self.cache` or a
//! `cache: &Cache` parameter; parameters it names are left out of the default key. Without it,
//! the global cache applies: the one installed with `Cache::install`, else an in-process one.
//!
//! ```ignore
//! impl Repo {
//!     #[cached(cache = self.cache, ttl = 60)]
//!     async fn product(&self, sku: Sku) -> Result<Product, DbError> {
//!         self.db.product(sku).await
//!     }
//! }
//! ```
//!
//! Equivalent code without the macro:
//!
//! ```ignore
//! impl Repo {
//!     async fn product(&self, sku: Sku) -> Result<Product, DbError> {
//!         let key = format!("{}::product:{sku}", module_path!());
//!         let ttl = Duration::from_secs(60);
//!         self.cache.try_get_with(&key, ttl, || async { self.db.product(sku).await }).await
//!     }
//! }
//! ```
//!
//! ## `negative_ttl`
//!
//! For functions returning `Option` only: how long a `None` stays cached, in the same forms as
//! `ttl`; 60 seconds by default. Caching `None` for a short time keeps repeated lookups of
//! something absent from reaching the database every time.
//!
//! ```ignore
//! #[cached(ttl = "1h", negative_ttl = "5m", key = "user:<id>")]
//! async fn find_user(id: u64) -> Option<User> {
//!     db::find_user(id).await
//! }
//! ```
//!
//! Equivalent code without the macro:
//!
//! ```ignore
//! async fn find_user(id: u64) -> Option<User> {
//!     let key = format!("user:{id}");
//!     if let Ok(Some(found)) = cache.get::<Option<User>>(&key).await {
//!         return found;
//!     }
//!     let found = db::find_user(id).await;
//!     let ttl = if found.is_some() { 3600 } else { 300 };
//!     let _ = cache.set(&key, &found, Duration::from_secs(ttl)).await;
//!     found
//! }
//! ```
//!
//! ## `cache_none`
//!
//! For functions returning `Option` only: `cache_none = false` stores `Some` values but never
//! `None`, so a value that appears later is seen at once. `true` is the default.
//!
//! ```ignore
//! #[cached(key = "session:<token>", cache_none = false)]
//! async fn session(token: String) -> Option<Session> {
//!     sessions::find(&token).await
//! }
//! ```
//!
//! Equivalent code without the macro:
//!
//! ```ignore
//! async fn session(token: String) -> Option<Session> {
//!     let key = format!("session:{token}");
//!     if let Ok(Some(found)) = cache.get::<Option<Session>>(&key).await {
//!         return found;
//!     }
//!     let found = sessions::find(&token).await;
//!     if found.is_some() {
//!         let _ = cache.set(&key, &found, default_ttl).await;
//!     }
//!     found
//! }
//! ```
//!
//! ## `lock`
//!
//! Whether a miss takes the fill lock, a key in the cache next to the entry's: the caller that
//! takes it runs the body, and callers in other processes that miss meanwhile wait for its value
//! instead of running the body too (callers in the same process always wait for one another).
//! `true` by default. `lock = false` saves the lock's round trips when running the body a few
//! times over is cheap.
//!
//! ```ignore
//! #[cached(ttl = "10s", lock = false)]
//! async fn feature_flags(service: String) -> Flags {
//!     flags::fetch(&service).await
//! }
//! ```
//!
//! Equivalent code without the macro, for the default `lock = true`:
//!
//! ```ignore
//! async fn report(id: u64) -> Report {
//!     let key = format!("{}::report:{id}", module_path!());
//!     if let Ok(Some(found)) = cache.get::<Report>(&key).await {
//!         return found;
//!     }
//!     // SET <key>#lock <token> NX PX <lock_timeout>
//!     if !try_lock(&key, lock_timeout).await {
//!         // Another process is loading: poll the entry until it appears, at most lock_timeout.
//!         if let Some(found) = wait_for_entry::<Report>(&key, lock_timeout).await {
//!             return found;
//!         }
//!     }
//!     let report = reports::build(id).await;
//!     let _ = cache.set(&key, &report, default_ttl).await;
//!     unlock(&key).await; // only if this caller still holds the lock
//!     report
//! }
//! ```
//!
//! ## `lock_timeout`
//!
//! How long a caller waits for another process's load before it runs the body itself, in the
//! same forms as `ttl`; 5 seconds by default. It is also how long the fill lock lives, so the
//! lock of a process that died while loading frees itself after this long. Set it a little
//! above the body's usual running time.
//!
//! ```ignore
//! #[cached(ttl = "1h", lock_timeout = "30s")]
//! async fn monthly_report(month: Month) -> Result<Report, DbError> {
//!     reports::build(month).await // takes about 20 s
//! }
//! ```
//!
//! Equivalent code without the macro: as for [`lock`](#lock), with `lock_timeout` being
//! `Duration::from_secs(30)`.
//!
//! ## `early_refresh`
//!
//! Whether a hit may refresh its entry before it expires, so that a key in constant use is never
//! found missing. Each hit draws a refresh with a probability that grows as the expiry nears and
//! with how long the last load took (XFetch, by Vattani, Chierichetti and Lowenstein); the first
//! hit to draw one refreshes the entry while every caller keeps being served the current value.
//! `true` by default. See [where refreshes run](#where-refreshes-run-and-send) for what it
//! requires of the body; `early_refresh = false` lifts that requirement.
//!
//! ```ignore
//! #[cached(ttl = "1m", early_refresh = false)]
//! async fn rates(currency: Currency) -> Result<Rates, ApiError> {
//!     api::rates(currency).await
//! }
//! ```
//!
//! Equivalent code without the macro, for the default `early_refresh = true`:
//!
//! ```ignore
//! async fn rates(currency: Currency) -> Result<Rates, ApiError> {
//!     let key = format!("{}::rates:{currency}", module_path!());
//!     if let Some(entry) = read_entry::<Rates>(&key).await {
//!         // delta: how long the last load took; random() is in (0, 1].
//!         let draw = now() - entry.delta * beta * random().ln();
//!         if draw >= entry.expires_at {
//!             spawn_refresh(key, || api::rates(currency));
//!         }
//!         return Ok(entry.value);
//!     }
//!     cache.try_get_with(&key, ttl, || api::rates(currency)).await
//! }
//! ```
//!
//! ## `beta`
//!
//! How early [`early_refresh`](#early_refresh) tends to refresh: a number greater than zero,
//! `1.0` by default. Above 1 refreshes come earlier (fresher entries, more loads), below 1 later.
//! It cannot be combined with `early_refresh = false`.
//!
//! ```ignore
//! #[cached(ttl = "5m", beta = 2.0)]
//! async fn leaderboard(game: GameId) -> Result<Vec<Score>, DbError> {
//!     db::top_scores(game).await
//! }
//! ```
//!
//! Equivalent code without the macro: as for [`early_refresh`](#early_refresh), with `beta`
//! being `2.0`.
//!
//! ## `stale`
//!
//! How long an entry is still served after its ttl, in the same forms as `ttl`; off by default.
//! Inside that window a hit returns the expired value and refreshes the entry, so callers never
//! wait for the body (stale-while-revalidate); and while the body fails, the expired value
//! keeps being served until the window ends (fail-safe). The cache keeps each entry for its ttl
//! plus this window.
//!
//! ```ignore
//! #[cached(ttl = "1m", stale = "1h")]
//! async fn catalog(shop: ShopId) -> Result<Catalog, ApiError> {
//!     api::catalog(shop).await
//! }
//! ```
//!
//! Equivalent code without the macro:
//!
//! ```ignore
//! async fn catalog(shop: ShopId) -> Result<Catalog, ApiError> {
//!     let key = format!("{}::catalog:{shop}", module_path!());
//!     if let Some(entry) = read_entry::<Catalog>(&key).await {
//!         if now() < entry.expires_at {
//!             return Ok(entry.value);
//!         }
//!         if now() < entry.expires_at + Duration::from_secs(3600) {
//!             // On failure the refresh leaves the entry as it is.
//!             spawn_refresh(key, || api::catalog(shop));
//!             return Ok(entry.value);
//!         }
//!     }
//!     let catalog = api::catalog(shop).await?;
//!     // Kept for ttl + stale; fresh for ttl.
//!     write_entry(&key, &catalog, Duration::from_secs(60), Duration::from_secs(3660)).await;
//!     Ok(catalog)
//! }
//! ```
//!
//! ## `crate`
//!
//! The path of the runtime crate, `::cachemacro_runtime` by default. Set it when the runtime is
//! reached through a re-export instead of a direct dependency.
//!
//! ```ignore
//! use my_platform::cachemacro_runtime::cached;
//!
//! #[cached(crate = "my_platform::cachemacro_runtime", ttl = 60)]
//! async fn config(name: String) -> Config {
//!     load_config(&name).await
//! }
//! ```
//!
//! Equivalent code without the macro: the same expansion, with every path into the runtime
//! starting at `my_platform::cachemacro_runtime` instead of `::cachemacro_runtime`.
//!
//! # Where refreshes run, and `Send`
//!
//! A refresh serves the caller that started it the current value. Where the refresh runs depends
//! on what the signature shows the body may borrow:
//!
//! - A free function without generic parameters whose parameters own their values (no
//!   reference, lifetime, `impl Trait` or `Self` in their types, no `ref` bindings): the refresh
//!   runs in a background task and the caller returns at once. The body's future must then be
//!   `Send` and `'static`, and the return type `Send`; a body that holds an `Rc` across an
//!   `.await`, for example, does not compile. Write `early_refresh = false` (without `stale`) to
//!   lift that requirement: such a function never refreshes, so its body never outlives the
//!   call.
//! - Any other function, such as a method taking `&self` or a function taking `&str`: the
//!   refresh runs in the task of the caller that drew it, which waits for the body before it
//!   returns the current value; the other callers are served meanwhile.
//!
//! # Compile-time checks
//!
//! Mistakes are reported at the offending token, all at once: an unknown or repeated argument,
//! a duration that is zero, negative or malformed, a `beta` that is not a number greater than
//! zero, `beta` with `early_refresh = false`, a template placeholder that names no parameter
//! or is not separated from the previous one, `negative_ttl` or `cache_none` on a function
//! that does not return `Option`, and a function that is not `async`. The function itself is
//! still emitted unchanged, so code calling it reports no further errors.

mod ast;
mod attr;
mod errors;
mod expand;
mod template;
mod valid;

use proc_macro::TokenStream;

/// Caches the results of an `async fn`: a hit returns the stored value, a miss runs the body and
/// stores its result.
///
/// ```ignore
/// use cachemacro_runtime::cached;
///
/// #[cached(ttl = 3600, key = "user:<id>")]
/// async fn get_user(id: u64) -> Result<User, DbError> {
///     db::load_user(id).await
/// }
/// ```
///
/// Arguments, all optional: `ttl`, `key`, `cache`, `negative_ttl`, `cache_none`, `lock`,
/// `lock_timeout`, `early_refresh`, `beta`, `stale` and `crate`.
/// Each is described, with an example and the equivalent code without the macro, in the
/// [documentation of the `cachemacro` crate](https://docs.rs/cachemacro).
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::cached(args.into(), item.into()).into()
}

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
//! The attribute works on free functions, on methods taking `&self`, `&mut self` or `self`, on
//! generic functions, on functions with `impl Trait` parameters, and on methods of an
//! `#[async_trait]` impl or trait (write `#[async_trait]` on the impl block and `#[cached]` on
//! the method, as usual).
//!
//! All arguments are optional and can be given in any order, separated by commas.
//!
//! ## `ttl`
//!
//! How long a stored value lives: whole seconds, or a string of units `d`, `h`, `m`, `s`, each
//! at most once and largest first (`"90s"`, `"5m"`, `"1h30m"`, `"1d"`). It must be at least one
//! second. Without it, the cache's default ttl applies.
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
//! # Compile-time checks
//!
//! Mistakes are reported at the offending token, all at once: an unknown or repeated argument,
//! a `ttl` that is zero, negative or malformed, a template placeholder that names no parameter
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
/// Arguments, all optional: `ttl`, `key`, `cache`, `negative_ttl`, `cache_none` and `crate`.
/// Each is described, with an example and the equivalent code without the macro, in the
/// [documentation of the `cachemacro` crate](https://docs.rs/cachemacro).
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::cached(args.into(), item.into()).into()
}

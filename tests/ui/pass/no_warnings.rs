//! Nothing the expansion writes is linted in the user's crate, even with every warning denied
//! and many lints that are allowed by default turned on: one-line bodies, parameters read only
//! by the key, `mut` parameters, methods whose body moves into a sibling fn, the write paths.
//! The bodies are written on one line on purpose: `unused_braces` looks at those only.
#![deny(warnings)]
#![deny(
    elided_lifetimes_in_paths,
    explicit_outlives_requirements,
    if_let_rescope,
    impl_trait_overcaptures,
    keyword_idents,
    let_underscore_drop,
    macro_use_extern_crate,
    meta_variable_misuse,
    missing_copy_implementations,
    missing_debug_implementations,
    missing_docs,
    non_ascii_idents,
    redundant_lifetimes,
    single_use_lifetimes,
    tail_expr_drop_order,
    trivial_casts,
    trivial_numeric_casts,
    unit_bindings,
    unreachable_pub,
    unsafe_code,
    unused_extern_crates,
    unused_import_braces,
    unused_lifetimes,
    unused_macro_rules,
    unused_qualifications,
    unused_results,
    variant_size_differences
)]
// Lints a older compiler does not know.
#![allow(unknown_lints)]

use std::fmt::Display;

use async_trait::async_trait;
use cachemacro_runtime::{cache_invalidate, cache_put, cached, Cache};

/// One line, default key.
#[cached]
pub async fn one_line(id: u64) -> u64 { id }

/// `id` is read by the key alone.
#[cached(key = "k:<id>")]
pub async fn key_only(id: u64, other: u64) -> u64 { other }

/// A `mut` parameter.
#[cached(stale = "1m")]
pub async fn mutable(mut id: u64) -> Result<u64, String> { id += 1; Ok(id) }

/// An `Option`, never `Some`.
#[cached(key = "none:<id>", negative_ttl = 5)]
pub async fn none(id: u64) -> Option<u64> { None }

/// Returns nothing.
#[cached]
pub async fn unit(id: u64) {}

/// Generic, with an `impl Trait` parameter.
#[cached(key = "generic:<label>")]
pub async fn generic<T: Default + serde::Serialize + serde::de::DeserializeOwned + Send + 'static>(label: impl Display) -> T { T::default() }

/// A cache parameter.
#[cached(cache = cache, key = "param:<id>")]
pub async fn with_cache(cache: &Cache, id: u64) -> u64 { id }

/// One line, write-through.
#[cache_put(key = "k:<id>")]
pub async fn put(id: u64) -> u64 { id }

/// One line, invalidation.
#[cache_invalidate(keys = ["k:<id>"], tags = ["t:<id>"])]
pub async fn invalidate(id: u64) -> Result<(), String> { Ok(()) }

/// A service.
#[derive(Clone, Debug)]
pub struct Service {
    cache: Cache,
    tenant: String,
}

impl Service {
    /// The body moves into a sibling fn.
    #[cached(cache = self.cache)]
    pub async fn lent(&self, id: u64) -> u64 { id }

    /// A borrowed parameter read by the body, a field read by the key.
    #[cached(key = "<self.tenant>:<id>")]
    pub async fn borrowed(&self, id: u64, name: &str) -> String { name.to_owned() }

    /// A borrowed parameter read by the key alone; private, called below.
    #[cached(key = "<tenant>")]
    async fn private(&self, tenant: &str) -> u64 { 1 }

    /// A `mut` parameter of a method whose body moves into a sibling fn.
    #[cached]
    pub async fn mutable(&self, mut id: u64) -> u64 { id += 1; id }

    /// In the caller's task.
    #[cached(detach = false, sliding = true)]
    pub async fn exclusive(&mut self, id: u64) -> u64 { id }

    /// Calls the private one.
    pub async fn call_private(&self) -> u64 { self.private("x").await }

    /// Write-through on a method.
    #[cache_put(cache = self.cache, key = "<self.tenant>")]
    pub async fn put(&self) -> u64 { 1 }
}

/// A trait whose impl `#[async_trait]` rewrites.
#[async_trait]
pub trait Repo {
    /// Reads.
    async fn get(&self, id: u64) -> Option<String>;
}

#[async_trait]
impl Repo for Service {
    #[cached(key = "repo:<id>")]
    async fn get(&self, id: u64) -> Option<String> { Some(id.to_string()) }
}

fn main() {}

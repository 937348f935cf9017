//! A small catalog service on cachemacro: axum over SQLite, cached reads, write-through updates,
//! tag invalidation after a bulk update, and Prometheus metrics at `/metrics`.
//!
//! ```text
//! cargo run -p cachemacro-service                                   # embedded cache
//! REDIS_URL=redis://127.0.0.1:6379/ cargo run -p cachemacro-service # Redis
//! ```
//!
//! The library holds the service, so that its test starts it in-process on a free port;
//! `src/main.rs` runs it for people.
#![warn(missing_docs)]

pub mod catalog;
pub mod db;
mod http;

use cachemacro_runtime::metric_names;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

pub use crate::catalog::{Catalog, CatalogError, Product, ProductUpdate};
pub use crate::db::{Database, DbError};
pub use crate::http::router;

/// The buckets of `cachemacro_load_seconds`, in seconds: from a fast indexed query to a slow
/// report. Without them the exporter renders a summary, which Prometheus cannot aggregate over
/// instances.
pub const LOAD_SECONDS_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Installs the process's Prometheus recorder and returns the handle that renders it.
///
/// Call it before the first cached call: a function takes its metric handles on its first call,
/// and handles taken before a recorder exists record nothing. Histogram samples pile up until
/// [`PrometheusHandle::run_upkeep`] drains them into their buckets: the caller runs it every few
/// seconds, as `main` does.
///
/// # Errors
/// When a recorder is already installed.
pub fn install_recorder() -> Result<PrometheusHandle, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(metric_names::LOAD_SECONDS.to_owned()),
            &LOAD_SECONDS_BUCKETS,
        )?
        .install_recorder()
}

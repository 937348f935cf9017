//! What the benchmarks share: the client runtime and the value they read.

use std::time::Duration;

use cachemacro_runtime::Cache;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use redis::IntoConnectionInfo;
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

/// The benchmarks' Redis timeout, for the caches' operations and the raw baselines' replies.
/// Generous: each benchmark asserts that all its reads were hits, and a read timed out on a busy
/// machine would be a miss. A timeout is never reached on a hit, so it costs the same short or
/// long.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// A Redis cache with the [`TIMEOUT`] and otherwise the defaults.
pub async fn redis_cache(url: &str) -> Cache {
    Cache::builder()
        .operation_timeout(TIMEOUT)
        .redis(url)
        .await
        .expect("a Redis cache")
}

/// A raw baseline's connection: a `ConnectionManager` with TCP_NODELAY, and the [`TIMEOUT`] as its
/// reply timeout.
pub async fn raw_connection(url: &str) -> ConnectionManager {
    let info = url
        .into_connection_info()
        .expect("a valid URL")
        .set_tcp_settings(TcpSettings::default().set_nodelay(true));
    let client = redis::Client::open(info).expect("a Redis client");
    let config = ConnectionManagerConfig::new().set_response_timeout(Some(TIMEOUT));
    ConnectionManager::new_with_config(client, config)
        .await
        .expect("a Redis connection")
}

/// A raw connection as a user writes it by hand: `ConnectionManager::new` with redis-rs's
/// defaults (TCP_NODELAY off, its own 500 ms response timeout).
pub async fn raw_default_connection(url: &str) -> ConnectionManager {
    let client = redis::Client::open(url).expect("a Redis client");
    ConnectionManager::new(client)
        .await
        .expect("a Redis connection")
}

/// Whether the benchmark was started by `cargo bench`, which passes `--bench`, rather than by
/// `cargo test --benches`, which runs it briefly as a smoke test.
pub fn measuring() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// Prints, in test mode, that the short run only checked the benchmark's code and assertions:
/// figures from a few calls on a test build are not measurements, so none are printed.
pub fn smoke_test_done(bench: &str) {
    println!(
        "{bench}: smoke test passed (test mode, debug build, a few calls): no figures printed, \
         they would not be measurements; measure with `cargo bench --bench {bench}`"
    );
}

/// A multi-thread Tokio runtime with one worker: on two cores it leaves the other core to
/// `redis-server`, so client and server do not fight over both and results stay steady.
pub fn client_runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

/// A value of about 200 bytes of JSON, the size of a typical cached row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Row id.
    pub id: u64,
    /// Display name.
    pub name: String,
    /// Contact address.
    pub email: String,
    /// Free text.
    pub bio: String,
    /// Labels.
    pub tags: Vec<String>,
    /// A number.
    pub score: f64,
    /// A flag.
    pub active: bool,
}

impl Profile {
    /// The row with `id`, as the "database" returns it.
    pub fn load(id: u64) -> Self {
        Profile {
            id,
            name: "Ada Lovelace".into(),
            email: "ada.lovelace@example.com".into(),
            bio: "Mathematician; wrote the first published algorithm for a machine.".into(),
            tags: vec!["mathematics".into(), "engines".into(), "poetry".into()],
            score: 97.5,
            active: true,
        }
    }
}

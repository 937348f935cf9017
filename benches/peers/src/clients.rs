//! The clients compared, each used the way its documentation shows, and the value they read.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use cached::stores::AsyncRedisCache;
use cached::ConcurrentCachedAsync;
use cachemacro_runtime::{cache_put, cached, Cache};
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::io::tcp::TcpSettings;
use redis::{AsyncCommands, IntoConnectionInfo};
use serde::{Deserialize, Serialize};

/// How long the "database" takes to load a row, for the cold-key runs.
pub const LOAD_TIME: Duration = Duration::from_millis(20);

/// A row as an application caches it: a few fields and a payload that sets its size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub tags: Vec<String>,
    pub payload: String,
}

impl Row {
    /// The row `id` whose JSON is about `size` bytes.
    pub fn new(id: u64, size: usize) -> Row {
        let mut row = Row {
            id,
            name: "Ada Lovelace".into(),
            email: "ada.lovelace@example.com".into(),
            tags: vec!["mathematics".into(), "engines".into()],
            payload: String::new(),
        };
        let base = serde_json::to_vec(&row).map_or(0, |json| json.len());
        row.payload = "x".repeat(size.saturating_sub(base));
        row
    }
}

/// Loads counted across all clients: the cold-key runs read it before and after.
pub static LOADS: AtomicU64 = AtomicU64::new(0);

/// The "database".
pub async fn load(id: u64, size: usize) -> Row {
    LOADS.fetch_add(1, Relaxed);
    tokio::time::sleep(LOAD_TIME).await;
    Row::new(id, size)
}

#[cached(ttl = "1h", key = "row:<size>:<id>", cache = cache)]
pub async fn cached_row(cache: &Cache, size: usize, id: u64) -> Row {
    load(id, size).await
}

#[cache_put(ttl = "1h", key = "row:<size>:<id>", cache = cache)]
pub async fn put_row(cache: &Cache, size: usize, id: u64, row: Row) -> Row {
    row
}

/// One client, as a user would set it up.
#[derive(Clone)]
pub enum Client {
    /// `client.get_multiplexed_async_connection()`: GET + `serde_json` by hand.
    Multiplexed(MultiplexedConnection),
    /// `ConnectionManager::new(client)`: GET + `serde_json` by hand.
    Manager(ConnectionManager),
    /// The `cached` crate's Redis store.
    CachedCrate(Arc<AsyncRedisCache<u64, Row>>),
    /// `#[cached]` on a Redis cache.
    Ours(Cache),
    /// `#[cached]` on the embedded cache.
    OursMemory(Cache),
    /// A bare `moka` cache of decoded rows.
    Moka(moka::future::Cache<u64, Row>),
}

/// What a client is called in tables and charts, and how to make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Multiplexed,
    MultiplexedNodelay,
    Manager,
    ManagerNodelay,
    CachedCrate,
    Ours,
    OursNodelay,
    OursMemory,
    Moka,
}

impl Kind {
    pub const REDIS: [Kind; 7] = [
        Kind::Multiplexed,
        Kind::MultiplexedNodelay,
        Kind::Manager,
        Kind::ManagerNodelay,
        Kind::CachedCrate,
        Kind::Ours,
        Kind::OursNodelay,
    ];
    pub const EMBEDDED: [Kind; 2] = [Kind::OursMemory, Kind::Moka];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Multiplexed => "redis-rs multiplexed (defaults)",
            Kind::MultiplexedNodelay => "redis-rs multiplexed + TCP_NODELAY",
            Kind::Manager => "redis-rs ConnectionManager (defaults)",
            Kind::ManagerNodelay => "redis-rs ConnectionManager + TCP_NODELAY",
            Kind::CachedCrate => "cached 4.1 AsyncRedisCache",
            Kind::Ours => "#[cached] (defaults)",
            Kind::OursNodelay => "#[cached] + TCP_NODELAY",
            Kind::OursMemory => "#[cached] embedded",
            Kind::Moka => "moka (bare get)",
        }
    }

    /// Whether this is one of the raw redis-rs baselines.
    pub fn is_raw(self) -> bool {
        matches!(
            self,
            Kind::Multiplexed | Kind::MultiplexedNodelay | Kind::Manager | Kind::ManagerNodelay
        )
    }

    pub async fn connect(self, url: &str) -> Client {
        let client = |nodelay: bool| {
            let info = url
                .into_connection_info()
                .expect("a valid URL")
                .set_tcp_settings(TcpSettings::default().set_nodelay(nodelay));
            redis::Client::open(info).expect("a Redis client")
        };
        match self {
            Kind::Multiplexed | Kind::MultiplexedNodelay => {
                let client = client(self == Kind::MultiplexedNodelay);
                Client::Multiplexed(
                    client
                        .get_multiplexed_async_connection()
                        .await
                        .expect("connected"),
                )
            }
            Kind::Manager | Kind::ManagerNodelay => {
                let client = client(self == Kind::ManagerNodelay);
                Client::Manager(ConnectionManager::new(client).await.expect("connected"))
            }
            Kind::CachedCrate => {
                let store = AsyncRedisCache::builder("peers:")
                    .ttl(Duration::from_secs(3600))
                    .connection_string(url)
                    .build()
                    .await
                    .expect("the cached crate's store");
                Client::CachedCrate(Arc::new(store))
            }
            Kind::Ours | Kind::OursNodelay => {
                let cache = Cache::builder()
                    .tcp_nodelay(self == Kind::OursNodelay)
                    .redis(url)
                    .await
                    .expect("a Redis cache");
                Client::Ours(cache)
            }
            Kind::OursMemory => Client::OursMemory(Cache::memory()),
            Kind::Moka => Client::Moka(moka::future::Cache::new(10_000)),
        }
    }
}

/// What a call returned to its caller.
pub type Outcome = Result<Row, String>;

fn raw_key(size: usize, id: u64) -> String {
    format!("raw:{size}:{id}")
}

fn crate_key(size: usize, id: u64) -> u64 {
    size as u64 * 1_000_000 + id
}

impl Client {
    /// Reads row `id` of `size`, through the cache; on a miss loads it and stores it, as the
    /// client's documentation shows (raw clients: hand-written cache-aside).
    pub async fn read(&mut self, size: usize, id: u64) -> Outcome {
        match self {
            Client::Multiplexed(connection) => raw_read(connection, size, id).await,
            Client::Manager(connection) => raw_read(connection, size, id).await,
            Client::CachedCrate(store) => {
                let key = crate_key(size, id);
                match store
                    .async_cache_get(&key)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    Some(row) => Ok(row),
                    None => {
                        let row = load(id, size).await;
                        store
                            .async_cache_set(key, row.clone())
                            .await
                            .map_err(|e| e.to_string())?;
                        Ok(row)
                    }
                }
            }
            Client::Ours(cache) | Client::OursMemory(cache) => {
                Ok(cached_row(cache, size, id).await)
            }
            Client::Moka(cache) => Ok(cache.get_with(crate_key(size, id), load(id, size)).await),
        }
    }

    /// Stores `row` as the new value of row `id` of `size` (write-through's cache step).
    pub async fn write(&mut self, size: usize, id: u64, row: Row) -> Result<(), String> {
        match self {
            Client::Multiplexed(connection) => raw_write(connection, size, id, &row).await,
            Client::Manager(connection) => raw_write(connection, size, id, &row).await,
            Client::CachedCrate(store) => store
                .async_cache_set(crate_key(size, id), row)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Client::Ours(cache) | Client::OursMemory(cache) => {
                put_row(cache, size, id, row).await;
                Ok(())
            }
            Client::Moka(cache) => {
                cache.insert(crate_key(size, id), row).await;
                Ok(())
            }
        }
    }
}

async fn raw_read<C: redis::aio::ConnectionLike + Send + Sync>(
    connection: &mut C,
    size: usize,
    id: u64,
) -> Outcome {
    let key = raw_key(size, id);
    let bytes: Option<Vec<u8>> = connection.get(&key).await.map_err(|e| e.to_string())?;
    if let Some(bytes) = bytes {
        return serde_json::from_slice(&bytes).map_err(|e| e.to_string());
    }
    let row = load(id, size).await;
    raw_write(connection, size, id, &row).await?;
    Ok(row)
}

async fn raw_write<C: redis::aio::ConnectionLike + Send + Sync>(
    connection: &mut C,
    size: usize,
    id: u64,
    row: &Row,
) -> Result<(), String> {
    let json = serde_json::to_vec(row).map_err(|e| e.to_string())?;
    connection
        .pset_ex::<_, _, ()>(raw_key(size, id), json, 3_600_000)
        .await
        .map_err(|e| e.to_string())
}

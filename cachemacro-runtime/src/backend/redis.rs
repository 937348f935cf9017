//! The Redis backend: one multiplexed, reconnecting connection, every command bounded in time.

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use redis::{IntoConnectionInfo, Script};

use super::Backend;
use crate::error::{Error, ErrorKind, Result};

/// Deletes a lock only while it still holds the caller's token: a plain `DEL` from a holder whose
/// lock expired would free the lock of the caller that took it over.
static UNLOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
    )
});

/// A Redis server reached through a redis-rs `ConnectionManager`.
///
/// The connection is made lazily and re-made in the background after a drop, so a server that
/// is down at start or restarts later costs callers at most the operation timeout per command.
#[derive(Clone)]
pub struct RedisBackend {
    connection: ConnectionManager,
    operation_timeout: Duration,
}

impl RedisBackend {
    /// Prepares a connection to `url` without waiting for the server; only a malformed URL is an
    /// error. Must be called inside a Tokio runtime.
    pub fn new(url: &str, operation_timeout: Duration, connect_timeout: Duration) -> Result<Self> {
        // The URL may carry a password: never echo it, nor redis-rs's message about it.
        let invalid = |_| Error::new(ErrorKind::InvalidUrl, "the Redis URL could not be parsed");
        let info = url
            .into_connection_info()
            .map_err(invalid)?
            .set_tcp_settings(TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info).map_err(invalid)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(None)
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            connection,
            operation_timeout,
        })
    }

    /// Opens the connection now, waiting at most `wait`; failure is not an error, since the
    /// cache works without the server and reconnects when it appears.
    pub async fn warm_up(&self, wait: Duration) -> bool {
        let ping = redis::cmd("PING");
        let mut connection = self.connection.clone();
        matches!(
            tokio::time::timeout(wait, ping.query_async::<()>(&mut connection)).await,
            Ok(Ok(()))
        )
    }

    async fn run<T>(&self, command: impl Future<Output = redis::RedisResult<T>>) -> Result<T> {
        match tokio::time::timeout(self.operation_timeout, command).await {
            Ok(result) => result.map_err(Error::from),
            Err(_) => Err(Error::new(ErrorKind::Timeout, "")),
        }
    }
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("operation_timeout", &self.operation_timeout)
            .finish_non_exhaustive()
    }
}

impl Backend for RedisBackend {
    type Bytes = Vec<u8>;

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let mut connection = self.connection.clone();
        self.run(redis::cmd("GET").arg(key).query_async(&mut connection))
            .await
    }

    async fn set(&self, key: &str, value: Arc<[u8]>, ttl: Duration) -> Result<()> {
        let mut connection = self.connection.clone();
        let millis = ttl.as_millis().max(1) as u64;
        self.run(
            redis::cmd("SET")
                .arg(key)
                .arg(&*value)
                .arg("PX")
                .arg(millis)
                .query_async(&mut connection),
        )
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let mut connection = self.connection.clone();
        let removed: u64 = self
            .run(redis::cmd("DEL").arg(key).query_async(&mut connection))
            .await?;
        Ok(removed > 0)
    }

    async fn try_lock(&self, key: &str, token: &str, ttl: Duration) -> Result<bool> {
        let mut connection = self.connection.clone();
        let millis = ttl.as_millis().max(1) as u64;
        let taken: Option<String> = self
            .run(
                redis::cmd("SET")
                    .arg(key)
                    .arg(token)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis)
                    .query_async(&mut connection),
            )
            .await?;
        Ok(taken.is_some())
    }

    async fn unlock(&self, key: &str, token: &str) -> Result<bool> {
        let mut connection = self.connection.clone();
        let mut invocation = UNLOCK.key(key);
        invocation.arg(token);
        let freed: i64 = self.run(invocation.invoke_async(&mut connection)).await?;
        Ok(freed == 1)
    }
}

//! The Redis backend: one multiplexed, reconnecting connection, every command bounded in time.
//! Operations that must be atomic are Lua scripts over keys of one hash slot.

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use redis::{IntoConnectionInfo, Script};

use super::{Backend, FillStart, Version, VERSION_TTL};
use crate::breaker::{Admission, Breaker, BreakerStats};
use crate::envelope::now_ms;
use crate::error::{Error, ErrorKind, Result};
use crate::key::companion;

/// KEYS: entry, version, lock. ARGV: token ('' for no lock), lock ttl in ms.
/// Returns {locked, version or '', entry when locked}.
static BEGIN_FILL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local locked = 0
        if ARGV[1] ~= '' and redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then
            locked = 1
        end
        local version = redis.call('GET', KEYS[2]) or ''
        local current = false
        if locked == 1 then current = redis.call('GET', KEYS[1]) end
        return {locked, version, current}
        ",
    )
});

/// KEYS: entry, version, lock. ARGV: value ('' for none), ttl in ms, expected version ('' for
/// none), token ('' for none). Stores only if the version is unchanged; frees only our own lock.
static FINISH_FILL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local stored = 0
        if ARGV[1] ~= '' and (redis.call('GET', KEYS[2]) or '') == ARGV[3] then
            redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
            stored = 1
        end
        if ARGV[4] ~= '' and redis.call('GET', KEYS[3]) == ARGV[4] then
            redis.call('DEL', KEYS[3])
        end
        return stored
        ",
    )
});

/// KEYS: entry, version. ARGV: version ttl in ms, then optionally value and ttl in ms. Bumps the
/// version, then deletes the entry or stores the value.
static BUMP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        redis.call('INCR', KEYS[2])
        redis.call('PEXPIRE', KEYS[2], ARGV[1])
        if ARGV[2] then
            redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
        else
            redis.call('DEL', KEYS[1])
        end
        return 1
        ",
    )
});

/// KEYS: tag index. ARGV: member, its expiry and now, in ms since the epoch. Keeps the latest
/// expiry of a member, trims expired members, and lets the index expire with its last member.
static TAG: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
        local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
        if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end
        return 1
        ",
    )
});

/// How many tag members one pipelined round of `invalidate_tag` handles.
const TAG_BATCH: isize = 1000;

/// A Redis server reached through a redis-rs `ConnectionManager`.
///
/// The connection is made lazily and re-made in the background after a drop, so a server that
/// is down at start or restarts later costs callers at most the operation timeout per command.
#[derive(Clone)]
pub struct RedisBackend {
    connection: ConnectionManager,
    operation_timeout: Duration,
    breaker: Arc<Breaker>,
}

/// Consecutive failures that open the circuit breaker, by default.
pub const BREAKER_THRESHOLD: u32 = 5;
/// How long the open breaker skips Redis before it lets one probe through, by default.
pub const BREAKER_COOL_DOWN: Duration = Duration::from_millis(250);

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
        // No response timeout of redis-rs's own: `run` bounds every command, connection included.
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
            breaker: Arc::new(Breaker::new(BREAKER_THRESHOLD, BREAKER_COOL_DOWN)),
        })
    }

    /// Replaces the circuit breaker: it opens after `threshold` consecutive timeouts or lost
    /// connections and lets one probe through every `cool_down` while open. `None` turns it off:
    /// every command then waits for the server, up to the operation timeout.
    #[must_use]
    pub fn with_circuit_breaker(mut self, breaker: Option<(u32, Duration)>) -> Self {
        let (threshold, cool_down) = breaker.unwrap_or((u32::MAX, Duration::ZERO));
        self.breaker = Arc::new(Breaker::new(threshold, cool_down));
        self
    }

    pub(crate) fn breaker_stats(&self) -> BreakerStats {
        self.breaker.stats()
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

    /// Sends `command` unless the breaker is open, bounded by the operation timeout.
    async fn run<T>(&self, command: impl Future<Output = redis::RedisResult<T>>) -> Result<T> {
        let admission = self.breaker.admit();
        if admission == Admission::Skip {
            return Err(Error::new(ErrorKind::CircuitOpen, ""));
        }
        let result = match tokio::time::timeout(self.operation_timeout, command).await {
            Ok(result) => result.map_err(Error::from),
            Err(_) => Err(Error::new(ErrorKind::Timeout, "")),
        };
        let failed = result.as_ref().is_err_and(Error::is_unavailable);
        self.breaker.record(admission, failed);
        result
    }

    async fn bump(&self, key: &str, value: Option<(Arc<[u8]>, Duration)>) -> Result<()> {
        let mut invocation = BUMP.key(key);
        invocation
            .key(companion(key, "#v"))
            .arg(millis(VERSION_TTL));
        if let Some((bytes, ttl)) = &value {
            invocation.arg(&**bytes).arg(millis(*ttl));
        }
        let mut connection = self.connection.clone();
        let _: i64 = self.run(invocation.invoke_async(&mut connection)).await?;
        Ok(())
    }
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis().max(1) as u64
}

fn tag_index(tag: &str) -> String {
    format!("tag#{tag}")
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

    async fn get_and_touch(&self, key: &str, ttl: Duration) -> Result<Option<Vec<u8>>> {
        let mut connection = self.connection.clone();
        let mut command = redis::cmd("GETEX");
        command.arg(key).arg("PX").arg(millis(ttl));
        self.run(command.query_async(&mut connection)).await
    }

    async fn set(&self, key: &str, value: Arc<[u8]>, ttl: Duration) -> Result<()> {
        let mut connection = self.connection.clone();
        let mut command = redis::cmd("SET");
        command.arg(key).arg(&*value).arg("PX").arg(millis(ttl));
        self.run(command.query_async(&mut connection)).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let mut connection = self.connection.clone();
        let removed: u64 = self
            .run(redis::cmd("DEL").arg(key).query_async(&mut connection))
            .await?;
        Ok(removed > 0)
    }

    async fn begin_fill(
        &self,
        key: &str,
        lock: Option<(&str, Duration)>,
    ) -> Result<FillStart<Vec<u8>>> {
        let mut invocation = BEGIN_FILL.key(key);
        invocation
            .key(companion(key, "#v"))
            .key(companion(key, "#lock"));
        match lock {
            Some((token, ttl)) => invocation.arg(token).arg(millis(ttl)),
            None => invocation.arg("").arg(0),
        };
        let mut connection = self.connection.clone();
        let (locked, version, current): (i64, String, Option<Vec<u8>>) =
            self.run(invocation.invoke_async(&mut connection)).await?;
        Ok(FillStart {
            locked: locked == 1,
            version: version.parse().ok(),
            current,
        })
    }

    async fn finish_fill(
        &self,
        key: &str,
        value: Option<(Arc<[u8]>, Duration)>,
        version: Version,
        token: Option<&str>,
    ) -> Result<bool> {
        let mut invocation = FINISH_FILL.key(key);
        invocation
            .key(companion(key, "#v"))
            .key(companion(key, "#lock"));
        match &value {
            Some((bytes, ttl)) => invocation.arg(&**bytes).arg(millis(*ttl)),
            None => invocation.arg("").arg(0),
        };
        invocation
            .arg(
                version
                    .map(|version| version.to_string())
                    .unwrap_or_default(),
            )
            .arg(token.unwrap_or(""));
        let mut connection = self.connection.clone();
        let stored: i64 = self.run(invocation.invoke_async(&mut connection)).await?;
        Ok(stored == 1)
    }

    async fn invalidate(&self, key: &str) -> Result<()> {
        self.bump(key, None).await
    }

    async fn put(&self, key: &str, value: Arc<[u8]>, ttl: Duration) -> Result<()> {
        self.bump(key, Some((value, ttl))).await
    }

    async fn tag(&self, tag: &str, member: &str, expires_at_ms: u64) -> Result<()> {
        let mut invocation = TAG.key(tag_index(tag));
        invocation.arg(member).arg(expires_at_ms).arg(now_ms());
        let mut connection = self.connection.clone();
        let _: i64 = self.run(invocation.invoke_async(&mut connection)).await?;
        Ok(())
    }

    async fn invalidate_tag(&self, tag: &str) -> Result<u64> {
        let index = tag_index(tag);
        let mut connection = self.connection.clone();
        // Loaded once so the batches below can use EVALSHA inside a pipeline.
        let bump = self.run(BUMP.load_async(&mut connection)).await?;
        let mut invalidated = 0;
        loop {
            let members: Vec<String> = self
                .run(
                    redis::cmd("ZRANGE")
                        .arg(&index)
                        .arg(0)
                        .arg(TAG_BATCH - 1)
                        .query_async(&mut connection),
                )
                .await?;
            if members.is_empty() {
                return Ok(invalidated);
            }
            let mut batch = redis::pipe();
            for member in &members {
                batch
                    .cmd("EVALSHA")
                    .arg(&bump)
                    .arg(2)
                    .arg(member)
                    .arg(companion(member, "#v"))
                    .arg(millis(VERSION_TTL))
                    .ignore();
            }
            // Only the members handled here leave the index: fills that registered meanwhile
            // stay, for the next round or the next invalidation.
            batch.cmd("ZREM").arg(&index).arg(&members).ignore();
            let () = self.run(batch.query_async(&mut connection)).await?;
            invalidated += members.len() as u64;
        }
    }

    async fn tag_len(&self, tag: &str) -> Result<u64> {
        let mut connection = self.connection.clone();
        self.run(
            redis::cmd("ZCARD")
                .arg(tag_index(tag))
                .query_async(&mut connection),
        )
        .await
    }
}

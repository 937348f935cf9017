//! The Redis backend: one multiplexed, reconnecting connection, every command bounded in time.
//! Operations that must be atomic are Lua scripts over keys of one hash slot.

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use redis::{IntoConnectionInfo, Script};

use super::{new_token, Backend, Begin, FillKeys, FillStart, Found, Stored, Token, VERSION_TTL};
use crate::breaker::{Breaker, BreakerStats};
use crate::error::{Error, ErrorKind, Result};

/// A Lua function for the scripts that read tokens: the token under `key`, or `token` stored
/// there for `ttl` ms when there is none. A foreign value (`pcall`: another Redis type) is
/// replaced. An existing token's ttl is pushed to `ttl` from now, never shortened.
const READ_OR_CREATE: &str = r"
local function read_or_create(key, token, ttl)
    local value = redis.pcall('GET', key)
    if type(value) ~= 'string' then
        redis.call('SET', key, token, 'PX', ttl)
        return token
    end
    redis.call('PEXPIRE', key, ttl, 'GT')
    return value
end
";

/// KEYS: entry, version, lock, then the fill's tag epochs. ARGV: lock token ('' for none), lock
/// ttl, a new version, the version's ttl, the epochs' ttl, then a new epoch per tag (ttls in ms).
/// Reads or creates the version and the epochs, then takes the lock, last, so that a failure
/// (out of memory) can never leave a lock behind; when locked, reads the entry again.
/// Returns {locked, version, entry or nil, {epochs}}; a foreign value under the entry key is no
/// entry.
static BEGIN_FILL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &[
            READ_OR_CREATE,
            r"
        local version = read_or_create(KEYS[2], ARGV[3], ARGV[4])
        local epochs = {}
        for i = 4, #KEYS do
            epochs[#epochs + 1] = read_or_create(KEYS[i], ARGV[i + 2], ARGV[5])
        end
        local locked = 0
        local current = false
        if ARGV[1] ~= '' and redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then
            locked = 1
            current = redis.pcall('GET', KEYS[1])
            if type(current) ~= 'string' then current = false end
        end
        return {locked, version, current, epochs}
        ",
        ]
        .concat(),
    )
});

/// `BEGIN_FILL`'s reply: locked (0 or 1), version, the entry when locked, the epochs.
type BeginReply = (i64, Vec<u8>, Option<Vec<u8>>, Vec<Vec<u8>>);

/// KEYS: entry, version, lock, then the fill's tag epochs. ARGV: lock token ('' for none), the
/// version read at the start, the value ('' for none), its ttl in ms, then the epochs read at the
/// start. Frees our own lock first (so an out-of-memory store cannot keep it), then stores only
/// if the version and every epoch are unchanged. Returns 0 when they changed (or are gone), 1
/// when valid, 2 when valid but the server refused the store.
static FINISH_FILL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if ARGV[1] ~= '' and redis.pcall('GET', KEYS[3]) == ARGV[1] then
            redis.call('DEL', KEYS[3])
        end
        if redis.pcall('GET', KEYS[2]) ~= ARGV[2] then return 0 end
        for i = 4, #KEYS do
            if redis.pcall('GET', KEYS[i]) ~= ARGV[i + 1] then return 0 end
        end
        if ARGV[3] ~= '' then
            local stored = redis.pcall('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
            if type(stored) == 'table' and stored.err then return 2 end
        end
        return 1
        ",
    )
});

/// KEYS: lock. ARGV: token. Deletes the lock only if it is still ours.
static UNLOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.pcall('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        ",
    )
});

/// KEYS: entry, version. ARGV: value, ttl in ms, expected version ('' for any). Voids fills in
/// flight and replaces the entry, or only removes it when the version is not the expected one.
/// The deletes come first: out of memory, the `SET` fails and the entry is at least gone.
static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local in_order = ARGV[3] == '' or redis.pcall('GET', KEYS[2]) == ARGV[3]
        redis.call('DEL', KEYS[1], KEYS[2])
        if not in_order then return 0 end
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        return 1
        ",
    )
});

/// KEYS: tag epochs. ARGV: their ttl in ms, then a new epoch per tag. Reads or creates each.
static EPOCHS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &[
            READ_OR_CREATE,
            r"
        local epochs = {}
        for i = 1, #KEYS do
            epochs[i] = read_or_create(KEYS[i], ARGV[i + 1], ARGV[1])
        end
        return epochs
        ",
        ]
        .concat(),
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
        let Some(pass) = self.breaker.pass() else {
            return Err(Error::new(ErrorKind::CircuitOpen, ""));
        };
        let result = match tokio::time::timeout(self.operation_timeout, command).await {
            Ok(result) => result.map_err(Error::from),
            Err(_) => Err(Error::new(ErrorKind::Timeout, "")),
        };
        pass.record(result.as_ref().is_err_and(Error::is_unavailable));
        result
    }
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis().max(1) as u64
}

/// A token as Redis holds it; anything else (foreign bytes) reads as no token.
fn token(bytes: &[u8]) -> Option<Token> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
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

    async fn read(
        &self,
        key: &str,
        tags: &[String],
        touch: Option<Duration>,
    ) -> Result<Found<Vec<u8>>> {
        let mut connection = self.connection.clone();
        match (tags.is_empty(), touch) {
            // The hit path of an untagged function: one plain command.
            (true, None) => Ok(Found {
                entry: self.get(key).await?,
                epochs: Vec::new(),
            }),
            (true, Some(ttl)) => {
                let mut command = redis::cmd("GETEX");
                command.arg(key).arg("PX").arg(millis(ttl));
                let entry = self.run(command.query_async(&mut connection)).await?;
                Ok(Found {
                    entry,
                    epochs: Vec::new(),
                })
            }
            (false, None) => {
                let mut values: Vec<Option<Vec<u8>>> = self
                    .run(
                        redis::cmd("MGET")
                            .arg(key)
                            .arg(tags)
                            .query_async(&mut connection),
                    )
                    .await?;
                let epochs = values
                    .drain(1..)
                    .map(|epoch| epoch.as_deref().and_then(token))
                    .collect();
                let entry = values.pop().flatten();
                Ok(Found { entry, epochs })
            }
            (false, Some(ttl)) => {
                let mut pipeline = redis::pipe();
                pipeline.cmd("GETEX").arg(key).arg("PX").arg(millis(ttl));
                pipeline.cmd("MGET").arg(tags);
                let (entry, epochs): (Option<Vec<u8>>, Vec<Option<Vec<u8>>>) =
                    self.run(pipeline.query_async(&mut connection)).await?;
                let epochs = epochs
                    .iter()
                    .map(|epoch| epoch.as_deref().and_then(token))
                    .collect();
                Ok(Found { entry, epochs })
            }
        }
    }

    async fn shorten(&self, key: &str, ttl: Duration) -> Result<()> {
        let mut connection = self.connection.clone();
        let mut command = redis::cmd("PEXPIRE");
        command.arg(key).arg(millis(ttl)).arg("LT");
        let _: i64 = self.run(command.query_async(&mut connection)).await?;
        Ok(())
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

    async fn begin_fill(&self, keys: &FillKeys, begin: Begin<'_>) -> Result<FillStart<Vec<u8>>> {
        let mut invocation = BEGIN_FILL.key(&keys.entry);
        invocation
            .key(&keys.version)
            .key(&keys.lock)
            .key(begin.tags);
        match begin.lock {
            Some((token, ttl)) => invocation.arg(token).arg(millis(ttl)),
            None => invocation.arg("").arg(0),
        };
        invocation
            .arg(new_token())
            .arg(millis(VERSION_TTL))
            .arg(millis(begin.epoch_ttl));
        for _ in begin.tags {
            invocation.arg(new_token());
        }
        let mut connection = self.connection.clone();
        let (locked, version, current, epochs): BeginReply =
            self.run(invocation.invoke_async(&mut connection)).await?;
        let garbled = || Error::new(ErrorKind::Backend, "a fill token is not a number");
        Ok(FillStart {
            locked: locked == 1,
            version: token(&version).ok_or_else(garbled)?,
            epochs: epochs
                .iter()
                .map(|epoch| token(epoch).ok_or_else(garbled))
                .collect::<Result<_>>()?,
            current,
        })
    }

    async fn finish_fill(
        &self,
        keys: &FillKeys,
        version: Token,
        epochs: &[(String, Token)],
        value: Option<Stored>,
        token: Option<&str>,
    ) -> Result<bool> {
        let mut invocation = FINISH_FILL.key(&keys.entry);
        invocation.key(&keys.version).key(&keys.lock);
        for (tag, _) in epochs {
            invocation.key(tag);
        }
        invocation.arg(token.unwrap_or("")).arg(version);
        match &value {
            Some(stored) => invocation.arg(&*stored.bytes).arg(millis(stored.ttl)),
            None => invocation.arg("").arg(0),
        };
        for (_, epoch) in epochs {
            invocation.arg(epoch);
        }
        let mut connection = self.connection.clone();
        let finished: i64 = self.run(invocation.invoke_async(&mut connection)).await?;
        if finished == 2 {
            return Err(Error::new(ErrorKind::OutOfMemory, ""));
        }
        Ok(finished == 1)
    }

    async fn unlock(&self, lock: &str, token: &str) -> Result<()> {
        let mut invocation = UNLOCK.key(lock);
        invocation.arg(token);
        let mut connection = self.connection.clone();
        let _: i64 = self.run(invocation.invoke_async(&mut connection)).await?;
        Ok(())
    }

    async fn invalidate(&self, entry: &str, version: &str) -> Result<()> {
        // A plain `DEL`: it needs no memory, so it works on a full server under `noeviction`.
        let mut connection = self.connection.clone();
        let _: i64 = self
            .run(
                redis::cmd("DEL")
                    .arg(entry)
                    .arg(version)
                    .query_async(&mut connection),
            )
            .await?;
        Ok(())
    }

    async fn put(
        &self,
        entry: &str,
        version: &str,
        expected: Option<Token>,
        value: Stored,
    ) -> Result<bool> {
        let mut invocation = PUT.key(entry);
        invocation
            .key(version)
            .arg(&*value.bytes)
            .arg(millis(value.ttl))
            .arg(expected.map(|token| token.to_string()).unwrap_or_default());
        let mut connection = self.connection.clone();
        let stored: i64 = self.run(invocation.invoke_async(&mut connection)).await?;
        Ok(stored == 1)
    }

    async fn epochs(&self, tags: &[String], ttl: Duration) -> Result<Vec<Token>> {
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = EPOCHS.key(tags);
        invocation.arg(millis(ttl));
        for _ in tags {
            invocation.arg(new_token());
        }
        let mut connection = self.connection.clone();
        let epochs: Vec<Vec<u8>> = self.run(invocation.invoke_async(&mut connection)).await?;
        epochs
            .iter()
            .map(|epoch| {
                token(epoch)
                    .ok_or_else(|| Error::new(ErrorKind::Backend, "a tag epoch is not a number"))
            })
            .collect()
    }

    async fn invalidate_tag(&self, tag: &str) -> Result<()> {
        let mut connection = self.connection.clone();
        let _: i64 = self
            .run(redis::cmd("DEL").arg(tag).query_async(&mut connection))
            .await?;
        Ok(())
    }
}

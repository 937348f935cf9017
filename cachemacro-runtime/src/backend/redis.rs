//! The Redis backend: one multiplexed, reconnecting connection (`connection.rs`) to a server, to
//! the master that Redis Sentinel names, or to a Redis Cluster, every command bounded in time.
//! Operations that must be atomic are Lua scripts over keys of one hash slot; a tag's epoch lives
//! in a slot of its own, so it is read by a command of its own: in the same pipeline on a single
//! server, in a pipeline per slot, all sent at once, on a cluster ([`Batches`]).

use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::io::tcp::TcpSettings;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    AsyncConnectionConfig, ConnectionAddr, FromRedisValue, IntoConnectionInfo, Script,
    ServerErrorKind, TlsMode,
};

use super::connection::{Connection, Connector, Link};
use super::{
    new_token, Backend, Begin, Clear, Epochs, FillKeys, FillStart, Found, Stored, Token,
    VERSION_TTL,
};
use crate::breaker::{Breaker, BreakerStats};
use crate::error::{Error, ErrorKind, Result};
use crate::key::{companion, slot, SLOTS};

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

/// KEYS: entry, version, lock. ARGV: lock token ('' for none), lock ttl, a new version, the
/// version's ttl (ttls in ms). Reads or creates the version, then takes the lock, last, so that a
/// failure (out of memory) can never leave a lock behind; when locked, reads the entry again.
/// Returns {locked, version, entry or nil}; a foreign value under the entry key is no entry.
static BEGIN_FILL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &[
            READ_OR_CREATE,
            r"
        local version = read_or_create(KEYS[2], ARGV[3], ARGV[4])
        local locked = 0
        local current = false
        if ARGV[1] ~= '' and redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then
            locked = 1
            current = redis.pcall('GET', KEYS[1])
            if type(current) ~= 'string' then current = false end
        end
        return {locked, version, current}
        ",
        ]
        .concat(),
    )
});

/// `BEGIN_FILL`'s reply: locked (0 or 1), version, the entry when locked.
type BeginReply = (i64, Vec<u8>, Option<Vec<u8>>);

/// KEYS: a tag's epoch. ARGV: a new epoch, its ttl in ms. Reads or creates it.
static EPOCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &[
            READ_OR_CREATE,
            "return read_or_create(KEYS[1], ARGV[1], ARGV[2])",
        ]
        .concat(),
    )
});

/// KEYS: entry, version, lock. ARGV: lock token ('' for none), the version read at the start,
/// the value ('' for none), its ttl in ms. Frees our own lock first (so an out-of-memory store
/// cannot keep it), then stores only if the version is unchanged. Returns 0 when it changed (or
/// is gone), 1 when valid, 2 when valid but the server refused the store.
static FINISH_FILL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if ARGV[1] ~= '' and redis.pcall('GET', KEYS[3]) == ARGV[1] then
            redis.call('DEL', KEYS[3])
        end
        if redis.pcall('GET', KEYS[2]) ~= ARGV[2] then return 0 end
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

/// A Redis server reached through one redis-rs `MultiplexedConnection`, or a Redis Cluster
/// reached through one `cluster_async::ClusterConnection` ([`cluster`](Self::cluster)).
///
/// The connection is made in the background and re-made there after a drop. Commands wait for
/// the first attempt to connect, within the operation timeout; after it, while there is no
/// connection they fail at once. A server that is down at start or restarts later costs callers
/// at most the operation timeout per command.
#[derive(Clone)]
pub struct RedisBackend {
    connection: Connection,
    operation_timeout: Duration,
    /// One circuit breaker on a single server; on a cluster one per range of hash slots
    /// ([`CLUSTER_BREAKERS`]), so that a master that is down (until its replica takes over)
    /// opens the breakers of its own slots, not those of the masters that answer.
    breakers: Arc<[Breaker]>,
    /// Whether `connection` reaches a cluster, where no pipeline may cross hash slots.
    cluster: bool,
}

/// Whether connections set TCP_NODELAY, unless told otherwise: off, as in redis-rs. Measured on
/// loopback (`benches/peers`), Nagle's algorithm coalesces the commands of concurrent callers
/// into fewer segments: hits at 4 to 256 tasks on one Tokio worker ran 1.4 to 1.8 times faster
/// without TCP_NODELAY, with no loss at one task or for 100 KB values.
pub const DEFAULT_TCP_NODELAY: bool = false;

/// The value of the URL's `tcp_nodelay` query parameter, if it has one.
fn tcp_nodelay_parameter(url: &str) -> Result<Option<bool>> {
    let Some((_, query)) = url.split_once('?') else {
        return Ok(None);
    };
    let query = query.split_once('#').map_or(query, |(query, _)| query);
    let mut found = None;
    for pair in query.split('&') {
        let Some(value) = pair.strip_prefix("tcp_nodelay=") else {
            continue;
        };
        found = Some(match value {
            "true" | "1" | "on" => true,
            "false" | "0" | "off" => false,
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidUrl,
                    "the Redis URL's `tcp_nodelay` takes true or false",
                ))
            }
        });
    }
    Ok(found)
}

/// The shortest and longest pause, in ms, before redis-rs retries a cluster command (after a
/// redirection it cannot follow at once, a `TRYAGAIN` during a migration, a lost node).
const CLUSTER_RETRY_WAIT: (u64, u64) = (5, 50);

/// Circuit breakers of a cluster backend, each in front of an equal range of hash slots: about
/// five per master of a three-master cluster, so that a master that is down opens few breakers
/// of the others' slots (a range may straddle two masters).
pub const CLUSTER_BREAKERS: usize = 16;

/// Breakers of `count` slot ranges, configured as `config` says (`None`: never open).
fn breakers(count: usize, config: Option<(u32, Duration)>) -> Arc<[Breaker]> {
    let (threshold, cool_down) = config.unwrap_or((u32::MAX, Duration::ZERO));
    (0..count)
        .map(|_| Breaker::new(threshold, cool_down))
        .collect()
}

/// Consecutive failures that open the circuit breaker, by default.
pub const BREAKER_THRESHOLD: u32 = 5;
/// How long the open breaker skips Redis before it lets one probe through, by default.
pub const BREAKER_COOL_DOWN: Duration = Duration::from_millis(250);

impl RedisBackend {
    /// Prepares a connection to `url` without waiting for the server; only a malformed URL is an
    /// error. Must be called inside a Tokio runtime. TCP_NODELAY is set as the URL's
    /// `tcp_nodelay` parameter says, else as [`DEFAULT_TCP_NODELAY`].
    pub fn new(url: &str, operation_timeout: Duration, connect_timeout: Duration) -> Result<Self> {
        Self::with_tcp_nodelay(url, operation_timeout, connect_timeout, None)
    }

    /// [`new`](Self::new), with TCP_NODELAY on or off as `tcp_nodelay` says when the URL has no
    /// `tcp_nodelay=true|false` parameter (which wins, so that operators can change it without a
    /// rebuild); `None` for [`DEFAULT_TCP_NODELAY`].
    pub fn with_tcp_nodelay(
        url: &str,
        operation_timeout: Duration,
        connect_timeout: Duration,
        tcp_nodelay: Option<bool>,
    ) -> Result<Self> {
        // The URL may carry a password: never echo it, nor redis-rs's message about it.
        let invalid = |_| Error::new(ErrorKind::InvalidUrl, "the Redis URL could not be parsed");
        let nodelay = tcp_nodelay_parameter(url)?
            .or(tcp_nodelay)
            .unwrap_or(DEFAULT_TCP_NODELAY);
        let info = url
            .into_connection_info()
            .map_err(invalid)?
            .set_tcp_settings(TcpSettings::default().set_nodelay(nodelay));
        let client = redis::Client::open(info).map_err(invalid)?;
        // No response timeout of redis-rs's own: `run` bounds every command.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(None);
        let connection = Connection::new(Connector::Single { client, config });
        Ok(Self {
            connection,
            operation_timeout,
            breakers: breakers(1, Some((BREAKER_THRESHOLD, BREAKER_COOL_DOWN))),
            cluster: false,
        })
    }

    /// Prepares a connection to the Redis Cluster that `nodes` belong to (`redis://host:port`
    /// URLs, or `host:port`; one that answers is enough, the others are found through it),
    /// without waiting for it; only a malformed node URL, or none, is an error. Must be called
    /// inside a Tokio runtime. A password or user name in the URLs, which must all carry the
    /// same, is used on every node. TCP_NODELAY as the first URL's `tcp_nodelay` parameter says,
    /// else `tcp_nodelay`, else [`DEFAULT_TCP_NODELAY`].
    ///
    /// The connection follows `MOVED` and `ASK` redirections, refreshes its slot map when the
    /// cluster changes (a failover, a resharding) and reconnects to nodes it lost, by itself; the
    /// operation timeout bounds each command, retries included, and the circuit breaker counts
    /// its timeouts and lost connections as on a single server.
    pub fn cluster<N: AsRef<str>>(
        nodes: impl IntoIterator<Item = N>,
        operation_timeout: Duration,
        connect_timeout: Duration,
        tcp_nodelay: Option<bool>,
    ) -> Result<Self> {
        let invalid = |_| {
            Error::new(
                ErrorKind::InvalidUrl,
                "a Redis Cluster node URL could not be parsed",
            )
        };
        let nodes: Vec<String> = nodes
            .into_iter()
            .map(|node| {
                let node = node.as_ref().trim();
                if node.contains("://") {
                    node.to_owned()
                } else {
                    format!("redis://{node}")
                }
            })
            .collect();
        let Some(first) = nodes.first() else {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                "a Redis Cluster needs at least one node URL",
            ));
        };
        let nodelay = tcp_nodelay_parameter(first)?
            .or(tcp_nodelay)
            .unwrap_or(DEFAULT_TCP_NODELAY);
        let infos = nodes
            .iter()
            .map(|node| node.as_str().into_connection_info().map_err(invalid))
            .collect::<Result<Vec<_>>>()?;
        let client = redis::cluster::ClusterClient::builder(infos)
            .connection_timeout(connect_timeout)
            // `run` bounds every command, its retries included: redis-rs's own timeouts would
            // only end a retry that the operation timeout has already given up on.
            .response_timeout(operation_timeout)
            .overall_response_timeout(None)
            // Retries (a redirection during a resharding, a node that is being failed over)
            // come a few milliseconds apart, not redis-rs's default of over a second, which no
            // command bounded by the operation timeout would live to see.
            .min_retry_wait(CLUSTER_RETRY_WAIT.0)
            .max_retry_wait(CLUSTER_RETRY_WAIT.1)
            .retry_wait_formula(CLUSTER_RETRY_WAIT.0, 2)
            .tcp_settings(TcpSettings::default().set_nodelay(nodelay))
            .build()
            .map_err(invalid)?;
        Ok(Self {
            connection: Connection::new(Connector::Cluster(client)),
            operation_timeout,
            breakers: breakers(
                CLUSTER_BREAKERS,
                Some((BREAKER_THRESHOLD, BREAKER_COOL_DOWN)),
            ),
            cluster: true,
        })
    }

    /// Prepares a connection to the master that the Redis Sentinels at `sentinels` monitor as
    /// `master` (`redis://host:port` URLs, or `host:port`; each sentinel is asked in turn until
    /// one names a master that confirms its role), without waiting for it; only a malformed URL,
    /// or no sentinel, is an error. Must be called inside a Tokio runtime.
    ///
    /// A user name or password in the sentinel URLs authenticates to the sentinels. `master` is
    /// the monitored name (`mymaster`), or a URL whose host is that name and which carries what
    /// the master itself needs: `redis://[user:password@]mymaster[/db]`, `rediss://` for TLS
    /// (feature `tls`; `#insecure` skips verification), and `tcp_nodelay` as
    /// [`with_tcp_nodelay`](Self::with_tcp_nodelay) reads it. The same applies to a replica
    /// that a failover promotes.
    ///
    /// Each connection attempt asks the sentinels for the current master, so a failover is
    /// followed by the next reconnect: a lost connection starts one, and so does a `READONLY`
    /// reply (the master was demoted to a replica while the connection lived). Everything else
    /// is as on a single server: one connection, the operation timeout and one circuit breaker.
    pub fn sentinel<N: AsRef<str>>(
        sentinels: impl IntoIterator<Item = N>,
        master: &str,
        operation_timeout: Duration,
        connect_timeout: Duration,
        tcp_nodelay: Option<bool>,
    ) -> Result<Self> {
        let invalid = || {
            Error::new(
                ErrorKind::InvalidUrl,
                "a Redis Sentinel URL or the master's name could not be parsed",
            )
        };
        let sentinels = sentinels
            .into_iter()
            .map(|sentinel| {
                let sentinel = sentinel.as_ref().trim();
                let url = if sentinel.contains("://") {
                    sentinel.to_owned()
                } else {
                    format!("redis://{sentinel}")
                };
                url.as_str().into_connection_info().map_err(|_| invalid())
            })
            .collect::<Result<Vec<_>>>()?;
        if sentinels.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                "Redis Sentinel needs at least one sentinel URL",
            ));
        }
        let master = master.trim();
        let (name, node) = if master.contains("://") {
            let nodelay = tcp_nodelay_parameter(master)?
                .or(tcp_nodelay)
                .unwrap_or(DEFAULT_TCP_NODELAY);
            let info = master.into_connection_info().map_err(|_| invalid())?;
            let node = SentinelNodeConnectionInfo::default()
                .set_redis_connection_info(info.redis_settings().clone())
                .set_tcp_settings(TcpSettings::default().set_nodelay(nodelay));
            match info.addr() {
                ConnectionAddr::Tcp(name, _) => (name.clone(), node),
                ConnectionAddr::TcpTls { host, insecure, .. } => {
                    let mode = if *insecure {
                        TlsMode::Insecure
                    } else {
                        TlsMode::Secure
                    };
                    (host.clone(), node.set_tls_mode(mode))
                }
                _ => return Err(invalid()),
            }
        } else {
            let nodelay = tcp_nodelay.unwrap_or(DEFAULT_TCP_NODELAY);
            let node = SentinelNodeConnectionInfo::default()
                .set_tcp_settings(TcpSettings::default().set_nodelay(nodelay));
            (master.to_owned(), node)
        };
        if name.is_empty() {
            return Err(invalid());
        }
        let client = SentinelClient::build(sentinels, name, Some(node), SentinelServerType::Master)
            .map_err(|_| invalid())?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(None);
        let connection = Connection::new(Connector::Sentinel {
            client: tokio::sync::Mutex::new(client),
            config,
            connect_timeout,
        });
        Ok(Self {
            connection,
            operation_timeout,
            breakers: breakers(1, Some((BREAKER_THRESHOLD, BREAKER_COOL_DOWN))),
            cluster: false,
        })
    }

    /// The client of a single server, for the near cache's tracking connection; `None` for a
    /// cluster.
    pub(crate) fn single_client(&self) -> Option<&redis::Client> {
        self.connection.single_client()
    }

    /// Whether this backend reaches a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// Replaces the circuit breaker (on a cluster, each slot range's): it opens after
    /// `threshold` consecutive timeouts or lost
    /// connections and lets one probe through every `cool_down` while open. `None` turns it off:
    /// every command then waits for the server, up to the operation timeout.
    #[must_use]
    pub fn with_circuit_breaker(mut self, breaker: Option<(u32, Duration)>) -> Self {
        self.breakers = breakers(self.breakers.len(), breaker);
        self
    }

    /// The breakers' counters, summed; open when any is.
    pub(crate) fn breaker_stats(&self) -> BreakerStats {
        self.breakers
            .iter()
            .map(Breaker::stats)
            .fold(BreakerStats::default(), |all, one| BreakerStats {
                open: all.open || one.open,
                trips: all.trips + one.trips,
                skips: all.skips + one.skips,
            })
    }

    /// The breaker in front of commands on `key`: the one on a single server; on a cluster,
    /// that of the range of slots `key` belongs to.
    #[inline]
    fn breaker(&self, key: &str) -> &Breaker {
        let range = if self.cluster {
            usize::from(slot(key)) * self.breakers.len() / usize::from(SLOTS)
        } else {
            0
        };
        &self.breakers[range]
    }

    /// Opens the connection now, waiting at most `wait` for an attempt to connect and a `PING`;
    /// failure is not an error, since the cache works without the server and reconnects when it
    /// appears.
    pub async fn warm_up(&self, wait: Duration) -> bool {
        let ping = async {
            let mut connection = self.connection.ready().await?.connection;
            query::<()>(&mut connection, &redis::cmd("PING"))
                .await
                .map_err(Error::from)
        };
        matches!(tokio::time::timeout(wait, ping).await, Ok(Ok(())))
    }

    /// The server's `INFO` reply; on a cluster, the reply of the master of slot 0's range.
    pub(crate) async fn info(&self) -> Result<String> {
        self.command("", &redis::cmd("INFO")).await
    }

    /// Removes the entries `clear` selects, with their versions and locks: `SCAN` over every key
    /// under the cache's prefix (on each master of a cluster), in batches of [`SCAN_BATCH`], and
    /// `UNLINK`, which frees memory outside Redis's main thread. Never a `KEYS`: each step is
    /// one short command, so Redis keeps serving in between. The number of entries removed.
    pub(crate) async fn clear(&self, clear: &Clear<'_>) -> Result<u64> {
        let pattern = [glob_escape(clear.scope).as_str(), "*"].concat();
        let mut removed = 0;
        for node in self.scan_nodes().await? {
            let mut cursor = 0_u64;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_BATCH);
                let (next, keys): (u64, Vec<String>) = self.on_node(node.as_ref(), &scan).await?;
                let mut entries = std::collections::BTreeSet::new();
                for key in &keys {
                    if let Some(entry) = clear.entry(key) {
                        removed += u64::from(clear.is_entry(key));
                        entries.insert(entry);
                    }
                }
                self.unlink(clear.scope, &entries).await?;
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(removed)
    }

    /// The masters of a cluster, by address, as `CLUSTER NODES` lists them; one `None` (the
    /// server) otherwise.
    async fn scan_nodes(&self) -> Result<Vec<Option<(String, u16)>>> {
        if !self.cluster {
            return Ok(vec![None]);
        }
        let nodes: String = self.command("", redis::cmd("CLUSTER").arg("NODES")).await?;
        Ok(nodes
            .lines()
            .filter_map(|line| {
                let mut fields = line.split(' ');
                let address = fields.nth(1)?;
                let flags = fields.next()?;
                let master = flags.split(',').any(|flag| flag == "master")
                    && !flags
                        .split(',')
                        .any(|flag| flag == "fail" || flag == "noaddr");
                let (host, port) = address.split('@').next()?.rsplit_once(':')?;
                master.then(|| Some((host.to_owned(), port.parse().ok()?)))?
            })
            .map(Some)
            .collect())
    }

    /// Sends `command` to `node` (a master of the cluster, by address), or to the server.
    async fn on_node<T: FromRedisValue>(
        &self,
        node: Option<&(String, u16)>,
        command: &redis::Cmd,
    ) -> Result<T> {
        let Some((host, port)) = node else {
            return self.command("", command).await;
        };
        self.run("", |link| async move {
            let Link::Cluster(mut connection) = link else {
                return query(&mut { link }, command).await;
            };
            let routing = redis::cluster_routing::RoutingInfo::SingleNode(
                redis::cluster_routing::SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                },
            );
            let reply = connection.route_command(command.clone(), routing).await?;
            Ok(redis::from_redis_value(reply.extract_error()?)?)
        })
        .await
    }

    /// `UNLINK`s `entries` with their versions and locks: one pipeline on a server; on a
    /// cluster one command per entry, whose keys share its slot.
    async fn unlink(
        &self,
        scope: &str,
        entries: &std::collections::BTreeSet<String>,
    ) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let unlink = |entry: &str| {
            let mut command = redis::cmd("UNLINK");
            command
                .arg(entry)
                .arg(companion(scope, entry, "#v"))
                .arg(companion(scope, entry, "#lock"));
            command
        };
        if self.cluster {
            for entry in entries {
                self.command::<()>(entry, &unlink(entry)).await?;
            }
            return Ok(());
        }
        let mut pipeline = redis::pipe();
        for entry in entries {
            pipeline.add_command(unlink(entry)).ignore();
        }
        self.run("", |mut connection| async move {
            pipeline.query_async::<()>(&mut connection).await
        })
        .await
    }

    /// Sends a command on `key` (the first key of an operation that has several) unless its
    /// breaker is open, bounded by the operation timeout: `command`
    /// gets the connection to send it on.
    async fn run<T, F>(&self, key: &str, command: impl FnOnce(Link) -> F) -> Result<T>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let Some(pass) = self.breaker(key).pass() else {
            return Err(Error::new(ErrorKind::CircuitOpen, ""));
        };
        let result = match tokio::time::timeout(self.operation_timeout, self.send(command)).await {
            Ok(result) => result,
            Err(_) => Err(Error::new(ErrorKind::Timeout, "")),
        };
        pass.record(result.as_ref().is_err_and(Error::is_unavailable));
        result
    }

    /// Runs `command` on the current connection, which is dropped (and re-made in the
    /// background) when the command finds it dead.
    async fn send<T, F>(&self, command: impl FnOnce(Link) -> F) -> Result<T>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let handle = self.connection.get().await?;
        let generation = handle.generation();
        command(handle.connection).await.map_err(|error| {
            self.connection.failed(generation, &error);
            Error::from(error)
        })
    }

    /// Sends one plain command and converts its reply (see [`run`](Self::run)).
    async fn command<T: FromRedisValue>(&self, key: &str, command: &redis::Cmd) -> Result<T> {
        self.run(key, |mut connection| async move {
            query(&mut connection, command).await
        })
        .await
    }

    /// The batches of an operation on this backend's server or cluster.
    fn batches(&self) -> Batches {
        Batches {
            pipelines: Vec::new(),
            cluster: self.cluster,
            commands: 0,
        }
    }

    /// Sends `batches`, whose commands may invoke `scripts`, in one round trip (see [`Batches`]):
    /// the replies of all their commands, in the order they were added. One timeout and one
    /// breaker pass for the whole.
    async fn query_batches(
        &self,
        key: &str,
        batches: &Batches,
        scripts: &[&Script],
    ) -> Result<Vec<redis::Value>> {
        self.run(key, |connection| async move {
            let replies = match &batches.pipelines[..] {
                [(_, pipeline, _)] => vec![query_pipeline(connection, pipeline, scripts).await?],
                pipelines => {
                    let sent = pipelines.iter().map(|(_, pipeline, _)| {
                        query_pipeline(connection.clone(), pipeline, scripts)
                    });
                    futures_util::future::try_join_all(sent).await?
                }
            };
            let mut ordered = vec![redis::Value::Nil; batches.commands];
            for ((_, _, positions), replies) in batches.pipelines.iter().zip(replies) {
                if replies.len() != positions.len() {
                    return Err(redis::RedisError::from((
                        redis::ErrorKind::Client,
                        "a pipeline's replies do not match its commands",
                    )));
                }
                for (&at, reply) in positions.iter().zip(replies) {
                    ordered[at] = reply;
                }
            }
            Ok(ordered)
        })
        .await
    }
}

/// Commands that each touch the keys of one hash slot, to be sent in one round trip: one
/// pipeline on a single server; on a cluster, where no pipeline may cross slots, one pipeline per
/// slot, all sent at once. The cluster connection routes each pipeline to the master of its
/// slot, over the one connection it keeps to that node, so the pipelines of one node share its
/// socket and each node is asked once per operation.
struct Batches {
    /// Each pipeline with the slot it serves (0 for all, on a single server) and the place of
    /// each of its commands among all of them.
    pipelines: Vec<(u16, redis::Pipeline, Vec<usize>)>,
    cluster: bool,
    /// Commands added so far.
    commands: usize,
}

impl Batches {
    /// The pipeline for the next command, which touches `key` and keys of its slot only: the
    /// caller adds exactly one command to it.
    fn next(&mut self, key: &str) -> &mut redis::Pipeline {
        let slot = if self.cluster { slot(key) } else { 0 };
        let at = match self.pipelines.iter().position(|(of, ..)| *of == slot) {
            Some(at) => at,
            None => {
                self.pipelines.push((slot, redis::pipe(), Vec::new()));
                self.pipelines.len() - 1
            }
        };
        let (_, pipeline, positions) = &mut self.pipelines[at];
        positions.push(self.commands);
        self.commands += 1;
        pipeline
    }
}

/// Runs `pipeline`, which invokes `scripts`; when the server does not know them (after a restart,
/// a failover or `SCRIPT FLUSH`), loads them (on a cluster: on every master) and runs it once
/// more. One round trip otherwise.
async fn query_pipeline(
    mut connection: Link,
    pipeline: &redis::Pipeline,
    scripts: &[&Script],
) -> redis::RedisResult<Vec<redis::Value>> {
    match pipeline.query_async(&mut connection).await {
        Err(error) if error.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript) => {
            for script in scripts {
                script.load_async(&mut connection).await?;
            }
            pipeline.query_async(&mut connection).await
        }
        result => result,
    }
}

/// How many keys each `SCAN` step of a clear asks for.
const SCAN_BATCH: usize = 500;

/// `text` as a `SCAN MATCH` pattern matching it literally.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(character, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

/// Sends `command` and converts its reply, as `Cmd::query_async` does, without the boxed future
/// of redis-rs's `ConnectionLike` on a single server: one allocation less per command.
async fn query<T: FromRedisValue>(
    connection: &mut Link,
    command: &redis::Cmd,
) -> redis::RedisResult<T> {
    // Matched here rather than in a method of `Link`: one async layer less on the hit path.
    let reply = match connection {
        Link::Single(connection) => connection.send_packed_command(command).await?,
        Link::Cluster(connection) => {
            redis::aio::ConnectionLike::req_packed_command(connection, command).await?
        }
    };
    Ok(redis::from_redis_value(reply.extract_error()?)?)
}

/// `GET key`, its buffers sized up front: `redis::cmd` starts from an empty buffer and grows it
/// for any key past five bytes, a reallocation on every hit.
fn get_command(key: &str) -> redis::Cmd {
    let mut command = redis::Cmd::with_capacity(2, "GET".len() + key.len());
    command.arg("GET").arg(key);
    command
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis().max(1) as u64
}

/// Adds to `batches` the read (or creation) of each epoch of `tags`: one command per tag, since
/// each may live in a hash slot of its own.
fn add_epochs(batches: &mut Batches, tags: &[String], ttl: Duration) {
    for tag in tags {
        let mut invocation = EPOCH.key(tag);
        invocation.arg(new_token()).arg(millis(ttl));
        batches.next(tag).invoke_script(&invocation);
    }
}

fn parse_epochs(replies: Vec<redis::Value>) -> Result<Vec<Token>> {
    replies
        .into_iter()
        .map(|reply| {
            let epoch: Vec<u8> = redis::from_redis_value(reply)?;
            token(&epoch).ok_or_else(garbled)
        })
        .collect()
}

/// The reply to a tagged read: the entry, then each tag's epoch. Taken apart where redis-rs
/// parsed it, rather than converted into a vector first, which would cost a tagged hit an
/// allocation.
fn split_read(reply: redis::Value) -> std::result::Result<Found<Vec<u8>>, redis::ParsingError> {
    let replies = match reply {
        redis::Value::Array(replies) => replies,
        other => redis::from_redis_value(other)?,
    };
    let mut replies = replies.into_iter();
    let entry = match replies.next() {
        Some(entry) => redis::from_redis_value::<Option<Vec<u8>>>(entry)?,
        None => None,
    };
    let epochs = replies
        .map(|epoch| {
            let epoch = redis::from_redis_value::<Option<Vec<u8>>>(epoch)?;
            Ok(epoch.as_deref().and_then(token))
        })
        .collect::<std::result::Result<Epochs, redis::ParsingError>>()?;
    Ok(Found { entry, epochs })
}

fn garbled() -> Error {
    Error::new(ErrorKind::Backend, "a fill token is not a number")
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
        self.run(key, |mut connection| async move {
            query(&mut connection, &get_command(key)).await
        })
        .await
    }

    async fn read<K: AsRef<str> + Sync>(
        &self,
        key: &str,
        tags: &[K],
        touch: Option<Duration>,
    ) -> Result<Found<Vec<u8>>> {
        match (tags.is_empty(), touch) {
            // The hit path of an untagged function: one plain command.
            (true, None) => Ok(Found {
                entry: self.get(key).await?,
                epochs: Epochs::new(),
            }),
            (true, Some(ttl)) => {
                let mut command = redis::cmd("GETEX");
                command.arg(key).arg("PX").arg(millis(ttl));
                let entry = self.command(key, &command).await?;
                Ok(Found {
                    entry,
                    epochs: Epochs::new(),
                })
            }
            // One round trip; the epochs are separate commands because they live in other hash
            // slots than the entry.
            (false, touch) if !self.cluster => {
                let mut pipeline = redis::pipe();
                match touch {
                    Some(ttl) => pipeline.cmd("GETEX").arg(key).arg("PX").arg(millis(ttl)),
                    None => pipeline.cmd("GET").arg(key),
                };
                for tag in tags {
                    pipeline.cmd("GET").arg(tag.as_ref());
                }
                self.run(key, |mut connection| async move {
                    let reply = pipeline.query_async(&mut connection).await?;
                    Ok(split_read(reply)?)
                })
                .await
            }
            // On a cluster the entry and the epochs are read by pipelines of their slots, sent
            // at once, which may run in any order. That keeps the promise: a tag invalidation
            // that completed before this read started had deleted its epoch on the epoch's
            // master before any of these commands was sent, so the epoch read sees it gone (or
            // replaced) whatever the order, and the entry's stamp no longer matches; a key
            // invalidation likewise before the entry read. An entry stored after the epoch was
            // read carries that epoch or a newer one, never an older one.
            (false, touch) => {
                let mut batches = self.batches();
                let entry = batches.next(key);
                match touch {
                    Some(ttl) => entry.cmd("GETEX").arg(key).arg("PX").arg(millis(ttl)),
                    None => entry.cmd("GET").arg(key),
                };
                for tag in tags {
                    batches.next(tag.as_ref()).cmd("GET").arg(tag.as_ref());
                }
                let replies = self.query_batches(key, &batches, &[]).await?;
                Ok(split_read(redis::Value::Array(replies))?)
            }
        }
    }

    async fn shorten(&self, key: &str, ttl: Duration) -> Result<()> {
        let mut command = redis::cmd("PEXPIRE");
        command.arg(key).arg(millis(ttl)).arg("LT");
        let _: i64 = self.command(key, &command).await?;
        Ok(())
    }

    async fn set(&self, key: &str, value: Arc<[u8]>, ttl: Duration) -> Result<()> {
        let mut command = redis::cmd("SET");
        command.arg(key).arg(&*value).arg("PX").arg(millis(ttl));
        self.command(key, &command).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let mut command = redis::cmd("DEL");
        command.arg(key);
        let removed: u64 = self.command(key, &command).await?;
        Ok(removed > 0)
    }

    async fn begin_fill(&self, keys: &FillKeys, begin: Begin<'_>) -> Result<FillStart<Vec<u8>>> {
        // The epochs first and the lock last: in one round trip on a single server, where a
        // pipeline runs in order; on a cluster the epochs' slots are elsewhere, so they are read
        // first, at once, and the lock is asked for only once they are known: a failed epoch
        // read then leaves no lock behind.
        let mut invocation = BEGIN_FILL.key(&keys.entry);
        invocation.key(&keys.version).key(&keys.lock);
        match begin.lock {
            Some((token, ttl)) => invocation.arg(token).arg(millis(ttl)),
            None => invocation.arg("").arg(0),
        };
        invocation.arg(new_token()).arg(millis(VERSION_TTL));
        let mut batches = self.batches();
        add_epochs(&mut batches, begin.tags, begin.epoch_ttl);
        let mut replies = if self.cluster && !begin.tags.is_empty() {
            let mut epochs = self.query_batches(&keys.entry, &batches, &[&EPOCH]).await?;
            let mut fill = self.batches();
            fill.next(&keys.entry).invoke_script(&invocation);
            epochs.extend(
                self.query_batches(&keys.entry, &fill, &[&BEGIN_FILL])
                    .await?,
            );
            epochs
        } else {
            batches.next(&keys.entry).invoke_script(&invocation);
            self.query_batches(&keys.entry, &batches, &[&EPOCH, &BEGIN_FILL])
                .await?
        };
        let (locked, version, current): BeginReply = redis::from_redis_value(
            replies
                .pop()
                .ok_or_else(|| Error::new(ErrorKind::Backend, "no reply to begin_fill"))?,
        )?;
        Ok(FillStart {
            locked: locked == 1,
            version: token(&version).ok_or_else(garbled)?,
            epochs: parse_epochs(replies)?,
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
        invocation
            .key(&keys.version)
            .key(&keys.lock)
            .arg(token.unwrap_or(""))
            .arg(version);
        match &value {
            Some(stored) => invocation.arg(&*stored.bytes).arg(millis(stored.ttl)),
            None => invocation.arg("").arg(0),
        };
        // The epochs are read right after the store, in the same round trip: unchanged then,
        // they were unchanged since the fill began (a tag invalidation deletes its epoch, and a
        // new one is a new random token), so no tag invalidation came during the load. On a
        // cluster they are read by pipelines of their own slots, sent with the store's, and may
        // run before it: an invalidation that comes between such a read and the store goes
        // unnoticed here, but it completes after this finish began, so after every follower
        // that takes this value joined (they take only values whose store began after they
        // joined): none of them started after it. And the entry stored carries the old epoch,
        // so later reads take it for a miss.
        let mut batches = self.batches();
        batches.next(&keys.entry).invoke_script(&invocation);
        for (tag, _) in epochs {
            batches.next(tag).cmd("GET").arg(tag);
        }
        let mut replies: Vec<redis::Value> = self
            .query_batches(&keys.entry, &batches, &[&FINISH_FILL])
            .await?;
        let current: Vec<Option<Vec<u8>>> =
            redis::from_redis_value(redis::Value::Array(replies.split_off(1)))?;
        let finished: i64 = redis::from_redis_value(
            replies
                .pop()
                .ok_or_else(|| Error::new(ErrorKind::Backend, "no reply to finish_fill"))?,
        )?;
        let tags_unchanged = epochs
            .iter()
            .zip(&current)
            .all(|((_, epoch), now)| now.as_deref().and_then(self::token) == Some(*epoch));
        match finished {
            2 if tags_unchanged => Err(Error::new(ErrorKind::OutOfMemory, "")),
            1 if tags_unchanged => Ok(true),
            _ => Ok(false),
        }
    }

    async fn unlock(&self, lock: &str, token: &str) -> Result<()> {
        let mut invocation = UNLOCK.key(lock);
        invocation.arg(token);
        let _: i64 = self
            .run(lock, |mut connection| async move {
                invocation.invoke_async(&mut connection).await
            })
            .await?;
        Ok(())
    }

    async fn invalidate(&self, entry: &str, version: &str) -> Result<()> {
        // A plain `DEL`: it needs no memory, so it works on a full server under `noeviction`.
        let mut command = redis::cmd("DEL");
        command.arg(entry).arg(version);
        let _: i64 = self.command(entry, &command).await?;
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
        let stored: i64 = self
            .run(entry, |mut connection| async move {
                invocation.invoke_async(&mut connection).await
            })
            .await?;
        Ok(stored == 1)
    }

    async fn epochs(&self, tags: &[String], ttl: Duration) -> Result<Vec<Token>> {
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        let mut batches = self.batches();
        add_epochs(&mut batches, tags, ttl);
        let replies = self.query_batches(&tags[0], &batches, &[&EPOCH]).await?;
        parse_epochs(replies)
    }

    async fn invalidate_tag(&self, tag: &str) -> Result<()> {
        let mut command = redis::cmd("DEL");
        command.arg(tag);
        let _: i64 = self.command(tag, &command).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use redis::Value;

    use super::*;

    #[test]
    fn a_tagged_read_splits_into_the_entry_and_each_epoch() {
        let reply = Value::Array(vec![
            Value::BulkString(b"entry".to_vec()),
            Value::BulkString(b"42".to_vec()),
            Value::Nil,
            Value::BulkString(b"foreign".to_vec()),
        ]);
        let found = split_read(reply).unwrap();
        assert_eq!(found.entry.as_deref(), Some(&b"entry"[..]));
        assert_eq!(&*found.epochs, &[Some(42), None, None]);

        let missing = split_read(Value::Array(vec![Value::Nil, Value::Nil])).unwrap();
        assert_eq!(missing.entry, None);
        assert_eq!(&*missing.epochs, &[None]);
    }

    #[tokio::test]
    async fn a_cluster_opens_the_breaker_of_a_failing_slot_range_only() {
        let wait = Duration::from_millis(100);
        let cluster = RedisBackend::cluster(["127.0.0.1:1"], wait, wait, None).unwrap();
        // `user:1` and `user:2` are in slots 10778 and 14907: two ranges of 1024.
        let (failing, answering) = ("user:1", "user:2");
        let range = |key| usize::from(slot(key)) * CLUSTER_BREAKERS / usize::from(SLOTS);
        assert_ne!(range(failing), range(answering));
        for _ in 0..BREAKER_THRESHOLD {
            cluster
                .breaker(failing)
                .pass()
                .expect("closed")
                .record(true);
        }
        assert!(cluster.breaker(failing).pass().is_none(), "open");
        assert!(cluster.breaker(answering).pass().is_some(), "closed");
        let stats = cluster.breaker_stats();
        assert!(stats.open);
        assert_eq!(stats.trips, 1);

        let single = RedisBackend::new("redis://127.0.0.1:1/", wait, wait).unwrap();
        assert!(std::ptr::eq(
            single.breaker(failing),
            single.breaker(answering)
        ));
    }

    #[test]
    fn the_url_may_set_tcp_nodelay() {
        let read = |url| tcp_nodelay_parameter(url).ok().flatten();
        assert_eq!(read("redis://127.0.0.1:6379"), None);
        assert_eq!(read("redis://127.0.0.1/?tcp_nodelay=false"), Some(false));
        assert_eq!(
            read("redis://h/0?protocol=resp3&tcp_nodelay=on"),
            Some(true)
        );
        assert_eq!(read("redis://h/?tcp_nodelay=0#fragment"), Some(false));
        let error = tcp_nodelay_parameter("redis://h/?tcp_nodelay=maybe").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidUrl);
    }
}

//! The `Cache` handle, its builder and the process-wide global cache.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{de::DeserializeOwned, Serialize};

use crate::backend::redis::{BREAKER_COOL_DOWN, BREAKER_THRESHOLD};
use crate::backend::{Backend, MemoryBackend, RedisBackend};
use crate::codec::{Codec, Compression, Encoding};
use crate::core::{with_backend, Core, Store, EPOCH_MARK};
use crate::envelope::{self, Meta};
use crate::error::{Error, ErrorKind, Result};
use crate::failure::Failure;
use crate::function::{FunctionStats, Functions};
use crate::loader::InCaller;
use crate::near::{tracking, Near};
use crate::on_cache_error::OnCacheError;
use crate::outcome::{PlainMode, ResultMode, Sharing};
use crate::pending::PendingInvalidations;
use crate::server_stats::ServerStats;
use crate::stats::{Counters, Stats};

const DEFAULT_TTL: Duration = Duration::from_secs(3600);
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_millis(100);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_MEMORY_CAPACITY: u64 = 128 * 1024 * 1024;
const DEFAULT_MAX_VALUE_SIZE: usize = 1024 * 1024;

/// A handle to a cache: in-process memory or a Redis server. Cheap to clone; clones share
/// entries, connection and statistics.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use cachemacro_runtime::Cache;
///
/// let cache = Cache::memory();
/// cache.set("greeting", &"hello", Duration::from_secs(60)).await.unwrap();
/// assert_eq!(cache.get::<String>("greeting").await.unwrap().as_deref(), Some("hello"));
/// # }
/// ```
#[derive(Clone)]
pub struct Cache {
    pub(crate) core: Arc<Core>,
}

impl Cache {
    /// An embedded in-process cache with default options: zero setup.
    pub fn memory() -> Cache {
        Cache::builder().memory()
    }

    /// A cache on the Redis server at `url` (`redis://[user:password@]host:port/db`), with default
    /// options. Only a malformed URL is an error: an unreachable server is retried in the
    /// background while calls are served by their loaders.
    pub async fn redis(url: &str) -> Result<Cache> {
        Cache::builder().redis(url).await
    }

    /// A cache on the Redis Cluster that `nodes` belong to (`redis://[user:password@]host:port`
    /// or `host:port`; one node that answers is enough, the others are found through it), with
    /// default options. Only a malformed node URL, or none, is an error.
    pub async fn redis_cluster<N: AsRef<str>>(nodes: impl IntoIterator<Item = N>) -> Result<Cache> {
        Cache::builder().redis_cluster(nodes).await
    }

    /// A cache on the master that the Redis Sentinels at `sentinels` (`redis://host:port` or
    /// `host:port`) monitor under the name `master`, with default options; a failover is followed
    /// (see [`CacheBuilder::redis_sentinel`]). Only a malformed URL, or no sentinel, is an error.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cachemacro_runtime::Result<()> {
    /// let sentinels = ["redis://10.0.0.1:26379", "redis://10.0.0.2:26379", "redis://10.0.0.3:26379"];
    /// let cache = cachemacro_runtime::Cache::redis_sentinel(sentinels, "mymaster").await?;
    /// # Ok(()) }
    /// ```
    pub async fn redis_sentinel<N: AsRef<str>>(
        sentinels: impl IntoIterator<Item = N>,
        master: &str,
    ) -> Result<Cache> {
        Cache::builder().redis_sentinel(sentinels, master).await
    }

    /// Redis Cluster when the `REDIS_CLUSTER_NODES` environment variable is set (node URLs
    /// separated by commas), Redis Sentinel when `REDIS_SENTINELS` is (sentinel URLs separated by
    /// commas, with the master's name in `REDIS_SENTINEL_MASTER`), Redis when `REDIS_URL` is,
    /// otherwise the embedded cache (see [`CacheBuilder::from_env`]).
    pub async fn from_env() -> Result<Cache> {
        Cache::builder().from_env().await
    }

    /// Options beyond the defaults.
    pub fn builder() -> CacheBuilder {
        CacheBuilder::default()
    }

    /// Makes this cache the one `#[cached]` functions use when they name no `cache`.
    pub fn install(&self) {
        *GLOBAL
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(self.clone());
    }

    /// The value stored under `key`, `None` when absent, expired, stamped with a tag
    /// invalidated since, or written with another codec or compression than the cache's
    /// default ([`CacheBuilder::codec`]); an error when the entry does not decode.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let key = self.core.full_key(key);
        let encoding = self.core.encoding;
        with_backend!(&self.core.store, backend => {
            let Some(bytes) = backend.get(&key).await? else { return Ok(None) };
            let envelope = envelope::decode(bytes.as_ref())?;
            if envelope.is_expired_at(envelope::now_ms()) || !envelope.is_read_by(&encoding) {
                return Ok(None);
            }
            if envelope.stamps.is_empty() {
                return envelope.value().map(Some);
            }
            // A tagged entry: read it again with its tags' epochs, in one round trip.
            let names: Vec<String> = envelope.stamps.iter().map(|(name, _)| name.to_owned()).collect();
            let tag_keys: Vec<String> = names.iter().map(|name| self.core.epoch_key(name)).collect();
            let found = backend.read(&key, &tag_keys, None).await?;
            let Some(bytes) = found.entry else { return Ok(None) };
            let envelope = envelope::decode(bytes.as_ref())?;
            if envelope.is_expired_at(envelope::now_ms())
                || !envelope.is_read_by(&encoding)
                || !envelope.stamps.match_epochs(names.iter().map(String::as_str), &found.epochs)
            {
                return Ok(None);
            }
            envelope.value().map(Some)
        })
    }

    /// Stores `value` under `key` for `ttl`, with the cache's default codec and compression.
    /// Like a write-through, it voids the loads of `key`
    /// in flight, here and in other processes: a load that started before this call cannot
    /// overwrite `value` with what it read. Unlike `#[cache_put]`, which reads the key's version
    /// before its function writes the database, `set` cannot know which of two concurrent `set`s
    /// of one key carries the newer data: the last to reach the cache wins.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<()> {
        let meta = Meta {
            ttl,
            ..Meta::default()
        };
        let bytes = envelope::encode_as(value, &meta, self.core.encoding)?.into();
        crate::write::set(&self.core, &self.core.full_key(key), bytes, ttl).await
    }

    /// Removes the entry under `key` and voids any load of it in flight, in this process or
    /// another: a load that started before this call cannot store its (possibly older) value.
    /// When Redis is unavailable the error is returned and the invalidation is also queued and
    /// carried out once Redis answers again.
    pub async fn delete(&self, key: &str) -> Result<()> {
        crate::invalidate::invalidate_key(&self.core, &self.core.full_key(key)).await
    }

    /// Invalidates every entry stored with `tag` (by `#[cached(tags = [..])]` or `#[cache_put]`),
    /// whatever their number, in one command, and voids their loads in flight.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cachemacro_runtime::Result<()> {
    /// let cache = cachemacro_runtime::Cache::memory();
    /// cache.invalidate_tag("org:7").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// The tag's epoch is deleted; entries stamped with it are misses from then on and leave the
    /// store when their ttl ends (or Redis evicts them). When Redis is unavailable the error is
    /// returned and the invalidation is also queued and carried out once Redis answers again
    /// (see [`Stats::invalidations_queued`]).
    pub async fn invalidate_tag(&self, tag: &str) -> Result<()> {
        crate::invalidate::invalidate_tag(&self.core, tag).await
    }

    /// The value under `key`, or else the result of `load`, stored for `ttl`: cache-aside by hand.
    /// Cache faults are counted and never returned; the loaded value is returned regardless.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # use std::time::Duration;
    /// let cache = cachemacro_runtime::Cache::memory();
    /// let user = cache.get_with("user:1", Duration::from_secs(60), || async { "Ada".to_string() }).await;
    /// assert_eq!(user, "Ada");
    /// # }
    /// ```
    pub async fn get_with<T, F, Fut>(&self, key: &str, ttl: Duration, load: F) -> T
    where
        T: Serialize + DeserializeOwned + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let policy = crate::policy::Policy::new().ttl(ttl);
        let key = self.core.full_key(key);
        let mut load = InCaller::new(load);
        crate::aside::cached::<T, PlainMode, _>(
            &self.core,
            &key,
            &[],
            &policy,
            load.as_loader(),
            Sharing::nothing(),
            Failure::never(),
        )
        .await
    }

    /// Like [`get_with`](Self::get_with) for a fallible loader: only `Ok` values are stored, and
    /// an `Err` is returned untouched.
    pub async fn try_get_with<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Duration,
        load: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned + 'static,
        E: 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let policy = crate::policy::Policy::new().ttl(ttl);
        let key = self.core.full_key(key);
        let mut load = InCaller::new(load);
        crate::aside::cached::<Result<T, E>, ResultMode, _>(
            &self.core,
            &key,
            &[],
            &policy,
            load.as_loader(),
            Sharing::nothing(),
            Failure::never(),
        )
        .await
    }

    /// Removes every entry whose key starts with `prefix` (the cache's own prefix is added), and
    /// voids the loads of them in flight, in this process and others: what `clear_<fn>` does
    /// for a function's entries. Returns how many entries it removed. On Redis it walks the keys
    /// with `SCAN` in batches and removes them with `UNLINK`, so Redis keeps serving meanwhile
    /// (on a cluster, on every master); the embedded cache walks its own.
    ///
    /// `clear_prefix("")` removes every entry of the cache. An entry stored while the walk runs,
    /// by a load that began after the call, may stay: it holds what the loader returned then.
    ///
    /// Fails with the cache's error when Redis could not be walked to the end; the entries
    /// removed until then stay removed. Unlike a key invalidation, a failed clear is not retried
    /// in the background.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cachemacro_runtime::Result<()> {
    /// use std::time::Duration;
    /// let cache = cachemacro_runtime::Cache::memory();
    /// cache.set("user:1", &1, Duration::from_secs(60)).await?;
    /// cache.set("user:2", &2, Duration::from_secs(60)).await?;
    /// cache.set("order:1", &3, Duration::from_secs(60)).await?;
    /// assert_eq!(cache.clear_prefix("user:").await?, 2);
    /// assert_eq!(cache.get::<u64>("order:1").await?, Some(3));
    /// # Ok(()) }
    /// ```
    pub async fn clear_prefix(&self, prefix: &str) -> Result<u64> {
        crate::invalidate::clear_prefixes(&self.core, &[prefix.to_owned()]).await
    }

    /// Counters since this cache was built.
    pub fn stats(&self) -> Stats {
        self.core.stats()
    }

    /// Each cached function's counters on this cache since it was built, by the function's
    /// name: its path (`app::users::get_user`, `app::Users::get`) or its `name = "..."`. A
    /// function appears once it has been called.
    ///
    /// ```
    /// # #[derive(Clone, serde::Serialize, serde::Deserialize)] struct User;
    /// #[cachemacro_runtime::cached(cache = cache, key = "user:<id>", name = "users.get")]
    /// async fn get_user(cache: &cachemacro_runtime::Cache, id: u64) -> User {
    ///     User
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = cachemacro_runtime::Cache::memory();
    /// get_user(&cache, 1).await;
    /// get_user(&cache, 1).await;
    /// let stats = cache.function_stats()["users.get"];
    /// assert_eq!((stats.hits, stats.misses), (1, 1));
    /// # }
    /// ```
    pub fn function_stats(&self) -> HashMap<String, FunctionStats> {
        self.core.functions.stats()
    }

    /// Redis's own view of itself (`INFO`): keyspace hits and misses of every client, memory,
    /// evictions, clients; `None` for the embedded cache. Evictions that climb while the hit rate
    /// falls mean Redis is too small for the working set.
    ///
    /// Fails with the cache's error when Redis cannot be reached.
    pub async fn server_stats(&self) -> Result<Option<ServerStats>> {
        match &self.core.store {
            Store::Memory(_) => Ok(None),
            Store::Redis(backend) => {
                let info = backend.info().await?;
                Ok(Some(ServerStats::parse(&info)))
            }
        }
    }

    /// The cache's name (see [`CacheBuilder::name`]).
    pub fn name(&self) -> &str {
        self.core.functions.cache_name()
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match &self.core.store {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        };
        f.debug_struct("Cache")
            .field("backend", &backend)
            .field("key_prefix", &self.core.key_prefix)
            .field("default_ttl", &self.core.default_ttl)
            .field("encoding", &self.core.encoding)
            .finish_non_exhaustive()
    }
}

/// Options for a [`Cache`]; finish with [`memory`](Self::memory), [`redis`](Self::redis),
/// [`redis_cluster`](Self::redis_cluster), [`redis_sentinel`](Self::redis_sentinel) or
/// [`from_env`](Self::from_env).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cachemacro_runtime::Result<()> {
/// use std::time::Duration;
/// let cache = cachemacro_runtime::Cache::builder()
///     .key_prefix("shop:")
///     .default_ttl(Duration::from_secs(300))
///     .operation_timeout(Duration::from_millis(50))
///     .from_env()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct CacheBuilder {
    key_prefix: String,
    default_ttl: Duration,
    operation_timeout: Duration,
    connect_timeout: Duration,
    memory_capacity: u64,
    ttl_profiles: HashMap<String, Duration>,
    max_value_size: usize,
    on_cache_error: OnCacheError,
    circuit_breaker: Option<(u32, Duration)>,
    tcp_nodelay: Option<bool>,
    name: String,
    encoding: Encoding,
    local: Option<u64>,
}

impl Default for CacheBuilder {
    fn default() -> Self {
        Self {
            key_prefix: String::new(),
            default_ttl: DEFAULT_TTL,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            memory_capacity: DEFAULT_MEMORY_CAPACITY,
            ttl_profiles: HashMap::new(),
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
            on_cache_error: OnCacheError::Ignore,
            circuit_breaker: Some((BREAKER_THRESHOLD, BREAKER_COOL_DOWN)),
            tcp_nodelay: None,
            name: DEFAULT_NAME.to_owned(),
            encoding: Encoding::default(),
            local: None,
        }
    }
}

/// The name of a cache built without [`CacheBuilder::name`].
const DEFAULT_NAME: &str = "default";

impl CacheBuilder {
    /// The cache's name: the `cache` label of its metrics, to tell apart the caches of one
    /// process (default: `"default"`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Prepended to every key, to share one Redis between applications (default: none).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// The ttl of functions that name none (default: one hour).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// The longest any Redis command may take before the cache gives up on it and the caller is
    /// served by its loader (default: 100 ms).
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// How long opening a connection to Redis may take, at start and on reconnects (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The most bytes of keys and values the embedded cache holds (default: 128 MiB).
    pub fn memory_capacity(mut self, bytes: u64) -> Self {
        self.memory_capacity = bytes;
        self
    }

    /// The ttl of functions with `ttl_profile = "name"`. An environment variable
    /// `CACHEMACRO_TTL_<NAME>` (the name in upper case: `CACHEMACRO_TTL_PRODUCT_PRICE=300`, or
    /// `=5m`) overrides it when the cache is built, so operators change ttls without a rebuild.
    pub fn ttl_profile(mut self, name: impl Into<String>, ttl: Duration) -> Self {
        self.ttl_profiles.insert(name.into(), ttl);
        self
    }

    /// The largest stored entry in bytes (default 1 MiB); a larger value is returned to its
    /// caller but not stored, and counted in [`Stats::oversized`].
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = bytes;
        self
    }

    /// What cached functions do when a cache operation fails, unless they say otherwise with
    /// `on_cache_error = "..."` (default: [`OnCacheError::Ignore`]).
    pub fn on_cache_error(mut self, mode: OnCacheError) -> Self {
        self.on_cache_error = mode;
        self
    }

    /// The circuit breaker in front of Redis: after `threshold` consecutive timeouts or lost
    /// connections (default 5) commands are skipped, and calls go straight to their functions
    /// without waiting, for `cool_down` (default 250 ms); then one probe goes through and closes
    /// it when Redis answers.
    pub fn circuit_breaker(mut self, threshold: u32, cool_down: Duration) -> Self {
        self.circuit_breaker = Some((threshold, cool_down));
        self
    }

    /// No circuit breaker: while Redis is down every cache operation waits for the operation
    /// timeout. For comparison and tests.
    pub fn without_circuit_breaker(mut self) -> Self {
        self.circuit_breaker = None;
        self
    }

    /// Whether the connection to Redis sets TCP_NODELAY (default:
    /// [`DEFAULT_TCP_NODELAY`](crate::DEFAULT_TCP_NODELAY)). A
    /// `tcp_nodelay=true|false` parameter in the URL wins over this. See README's performance
    /// section for what each costs.
    pub fn tcp_nodelay(mut self, on: bool) -> Self {
        self.tcp_nodelay = Some(on);
        self
    }

    /// How functions that name no `codec` serialize their values, and how [`Cache::get`] and
    /// [`Cache::set`] do (default: [`Codec::Json`]). Entries record their codec: after a change,
    /// each entry written with the previous one is read once as a miss and reloaded.
    ///
    /// ```
    /// use cachemacro_runtime::{Cache, Codec};
    /// let cache = Cache::builder().codec(Codec::Json).memory();
    /// ```
    pub fn codec(mut self, codec: Codec) -> Self {
        self.encoding.codec = codec;
        self
    }

    /// How functions that name no `compress` compress their values, and how [`Cache::set`]
    /// does (default: [`Compression::None`]). A function reads uncompressed entries and those
    /// compressed its own way; an entry compressed another way is a miss and is reloaded.
    ///
    /// ```
    /// use cachemacro_runtime::{Cache, Compression};
    /// let cache = Cache::builder().compression(Compression::None).memory();
    /// ```
    pub fn compression(mut self, compression: Compression) -> Self {
        self.encoding.compression = compression;
        self
    }

    /// A near cache (L1) of at most `capacity` decoded values in front of Redis: a hit on it does
    /// no I/O and no decode. It is kept coherent by Redis client tracking on a connection of its
    /// own (`CLIENT TRACKING ON BCAST PREFIX <key_prefix>`): a write or invalidation in any
    /// process drops the entry here as soon as Redis pushes it, and while that connection is
    /// down the near cache serves nothing. Off by default.
    ///
    /// It applies to functions whose return type is `Clone` and whose ttl is not sliding
    /// (their hits must reach Redis to restart the ttl); `Cache::get_with` does not use it. On a
    /// Redis Cluster it is refused ([`ErrorKind::InvalidConfig`]): tracking would have to follow
    /// every master. The embedded cache ([`memory`](Self::memory)) is in the process already and
    /// ignores it. See the README's "Near cache (L1)".
    pub fn local(mut self, capacity: u64) -> Self {
        self.local = Some(capacity);
        self
    }

    /// An embedded in-process cache.
    pub fn memory(self) -> Cache {
        let store = Store::Memory(MemoryBackend::new(self.memory_capacity));
        self.finish(store)
    }

    /// A Redis cache at `url`. Waits at most the connect timeout for a first connection; a server
    /// that does not answer is not an error.
    pub async fn redis(self, url: &str) -> Result<Cache> {
        let backend = RedisBackend::with_tcp_nodelay(
            url,
            self.operation_timeout,
            self.connect_timeout,
            self.tcp_nodelay,
        )?;
        Ok(self.connected(backend).await)
    }

    /// A cache on the Redis Cluster that `nodes` belong to (`redis://[user:password@]host:port`
    /// or `host:port`; one node that answers is enough). Waits at most the connect timeout for
    /// a first connection; a cluster that does not answer is not an error. A key prefix with a
    /// `{` that it does not close over something (`x{`, `{}`) is: it would keep entries'
    /// versions and locks out of their slots ([`ErrorKind::InvalidConfig`]). Every option applies
    /// as on a single server: the operation timeout bounds each command, redirections and
    /// retries included, and the circuit breaker counts its timeouts and lost connections.
    pub async fn redis_cluster<N: AsRef<str>>(
        self,
        nodes: impl IntoIterator<Item = N>,
    ) -> Result<Cache> {
        if self.local.is_some() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "the near cache (`local`) is not available on a Redis Cluster: its coherence \
                 needs client tracking on every master",
            ));
        }
        if !crate::key::prefix_keeps_slots(&self.key_prefix) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "on a Redis Cluster the key prefix may hold a `{` only to open a hash tag that it \
                 closes (`{app}:`), or an entry's version and lock would not share its slot",
            ));
        }
        let backend = RedisBackend::cluster(
            nodes,
            self.operation_timeout,
            self.connect_timeout,
            self.tcp_nodelay,
        )?;
        Ok(self.connected(backend).await)
    }

    /// A cache on the master that the Redis Sentinels at `sentinels` (`redis://host:port` or
    /// `host:port`; one that answers is enough) monitor under the name `master`. Waits at most
    /// the connect timeout for a first connection; sentinels or a master that do not answer are
    /// not an error.
    ///
    /// Credentials in the sentinel URLs are the sentinels'. The master's own go in `master`,
    /// which may be a URL whose host is the monitored name:
    /// `redis://[user:password@]mymaster[/db]`, or `rediss://mymaster` for TLS (feature `tls`).
    ///
    /// Each (re)connection asks the sentinels which server is the master now and checks its
    /// role, so after a failover the promoted replica is used from the next reconnect on, which
    /// a lost connection or a `READONLY` reply (from a master demoted to a replica) starts.
    /// Every option applies as on a single server: the operation timeout bounds each command,
    /// the circuit breaker counts its timeouts and lost connections, and faults fail open.
    pub async fn redis_sentinel<N: AsRef<str>>(
        self,
        sentinels: impl IntoIterator<Item = N>,
        master: &str,
    ) -> Result<Cache> {
        let backend = RedisBackend::sentinel(
            sentinels,
            master,
            self.operation_timeout,
            self.connect_timeout,
            self.tcp_nodelay,
        )?;
        Ok(self.connected(backend).await)
    }

    /// Configured by the environment:
    /// - `REDIS_CLUSTER_NODES` (node URLs separated by commas): Redis Cluster;
    /// - `REDIS_SENTINELS` (sentinel URLs separated by commas) and `REDIS_SENTINEL_MASTER` (the
    ///   master's name, or `redis://[user:password@]name[/db]`): Redis Sentinel, see
    ///   [`redis_sentinel`](Self::redis_sentinel);
    /// - `REDIS_URL`: a single Redis server;
    /// - none of them: the embedded cache.
    ///
    /// More than one of the three set is an error, as is `REDIS_SENTINELS` without
    /// `REDIS_SENTINEL_MASTER` or the other way round: which one was meant cannot be told.
    pub async fn from_env(self) -> Result<Cache> {
        let variable = |name| std::env::var(name).ok().filter(|value| !value.is_empty());
        let cluster = variable(CLUSTER_NODES_VARIABLE);
        let url = variable(URL_VARIABLE);
        let sentinels = variable(SENTINELS_VARIABLE);
        let master = variable(SENTINEL_MASTER_VARIABLE);
        let set: Vec<&str> = [
            (CLUSTER_NODES_VARIABLE, cluster.is_some()),
            (SENTINELS_VARIABLE, sentinels.is_some() || master.is_some()),
            (URL_VARIABLE, url.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if set.len() > 1 {
            return Err(Error::new(
                ErrorKind::InvalidUrl,
                format!("{} are all set: unset those not meant", set.join(" and ")),
            ));
        }
        match (cluster, sentinels, master, url) {
            (Some(nodes), ..) => self.redis_cluster(nodes.split(',')).await,
            (_, Some(sentinels), Some(master), _) => {
                self.redis_sentinel(sentinels.split(','), &master).await
            }
            (_, Some(_), None, _) | (_, None, Some(_), _) => Err(Error::new(
                ErrorKind::InvalidUrl,
                "Redis Sentinel needs both REDIS_SENTINELS and REDIS_SENTINEL_MASTER",
            )),
            (.., Some(url)) => self.redis(&url).await,
            (None, None, None, None) => Ok(self.memory()),
        }
    }

    /// A cache over `backend`, with this builder's circuit breaker, after waiting at most the
    /// connect timeout for a first connection.
    async fn connected(self, backend: RedisBackend) -> Cache {
        let backend = backend.with_circuit_breaker(self.circuit_breaker);
        backend.warm_up(self.connect_timeout).await;
        self.finish(Store::Redis(backend))
    }

    /// A cache over an existing embedded store; caches built over clones of one store share
    /// its entries (each with its own prefix and statistics).
    pub fn memory_backend(self, backend: MemoryBackend) -> Cache {
        self.finish(Store::Memory(backend))
    }

    /// A cache over an existing Redis connection, shared with its other users. On a cluster, the
    /// key prefix must keep slots as [`redis_cluster`](Self::redis_cluster) requires.
    pub fn redis_backend(self, backend: RedisBackend) -> Cache {
        self.finish(Store::Redis(backend))
    }

    fn finish(self, store: Store) -> Cache {
        let mut ttl_profiles = self.ttl_profiles;
        ttl_profiles.extend(ttl_profiles_from_env());
        let near = self.local.and_then(|capacity| {
            near_cache(&store, capacity, &self.key_prefix, self.connect_timeout)
        });
        Cache {
            core: Arc::new(Core {
                store,
                key_prefix: self.key_prefix,
                default_ttl: self.default_ttl,
                counters: Counters::named(&self.name),
                functions: Functions::new(&self.name),
                flights: Arc::default(),
                ttl_profiles,
                max_value_size: self.max_value_size,
                on_cache_error: self.on_cache_error,
                encoding: self.encoding,
                pending: PendingInvalidations::default(),
                near,
            }),
        }
    }
}

/// The near cache over `store`, tracking `prefix`: only a single Redis server has one.
fn near_cache(store: &Store, capacity: u64, prefix: &str, connect: Duration) -> Option<Near> {
    let Store::Redis(backend) = store else {
        return None;
    };
    let Some(client) = backend.single_client() else {
        tracing::warn!(
            "the near cache (`local`) is off: it is not available on a Redis Cluster or Sentinel"
        );
        return None;
    };
    let near = Near::new(capacity, [prefix, EPOCH_MARK].concat());
    tracking::spawn(&near, client, prefix.to_owned(), connect);
    Some(near)
}

const TTL_PROFILE_VARIABLE: &str = "CACHEMACRO_TTL_";
/// The URL of a single Redis server, for [`CacheBuilder::from_env`].
const URL_VARIABLE: &str = "REDIS_URL";
/// The node URLs of a Redis Cluster, separated by commas, for [`CacheBuilder::from_env`].
const CLUSTER_NODES_VARIABLE: &str = "REDIS_CLUSTER_NODES";
/// The URLs of Redis Sentinels, separated by commas, for [`CacheBuilder::from_env`].
const SENTINELS_VARIABLE: &str = "REDIS_SENTINELS";
/// The name the sentinels monitor the master under, for [`CacheBuilder::from_env`].
const SENTINEL_MASTER_VARIABLE: &str = "REDIS_SENTINEL_MASTER";

/// `CACHEMACRO_TTL_<NAME>=<duration>` variables, by lower-case name. A value that does not parse
/// is ignored with a warning rather than failing the application.
fn ttl_profiles_from_env() -> impl Iterator<Item = (String, Duration)> {
    std::env::vars().filter_map(|(variable, value)| {
        let name = variable
            .strip_prefix(TTL_PROFILE_VARIABLE)?
            .to_ascii_lowercase();
        match crate::duration::parse(&value) {
            Some(ttl) if !ttl.is_zero() => Some((name, ttl)),
            _ => {
                tracing::warn!(%variable, %value, "ignored: not a duration like 300, 90s or 1h30m");
                None
            }
        }
    })
}

static GLOBAL: RwLock<Option<Cache>> = RwLock::new(None);

/// The installed cache, or an embedded one made on first use.
pub(crate) fn global() -> Cache {
    if let Some(cache) = GLOBAL.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
        return cache.clone();
    }
    GLOBAL
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(Cache::memory)
        .clone()
}

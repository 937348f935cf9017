//! The connection to Redis: one redis-rs `MultiplexedConnection` to a single server, or one
//! `cluster_async::ClusterConnection` to a Redis Cluster, shared by every command and made in the
//! background.
//!
//! A command takes a handle to the current connection (an `ArcSwapOption` load and a clone of
//! the connection's channel) and sends on it. There is never a wait for a connection, except for
//! the very first attempt, made when the backend is created: until it ends, a command waits for
//! its outcome (within the command's own timeout), as a lazily opened connection would. After
//! that, a command that finds no connection fails at once with the error that left it without
//! one, and a command whose connection turns out to be dropped fails with that error; both make
//! sure that a reconnect runs. One reconnect runs at a time, in a task of its own, retrying with
//! a capped backoff until it connects or the backend is dropped, so a restarted server is used
//! again without any caller waiting for it.
//!
//! A cluster connection is made the same way (the first attempt needs one node that answers and
//! a slot map), but once made it is kept: it holds a connection per node, reconnects to a node it
//! lost, follows `MOVED` and `ASK` and refreshes its slot map by itself, so an error on one node
//! (a master killed before its replica takes over) says nothing about the others.
//!
//! A master found through Redis Sentinel is a single server whose address is looked up anew by
//! each attempt: the attempt asks the sentinels which server is the master now, checks with
//! `ROLE` that it is one, and connects to it. A failover is then followed by the next reconnect,
//! which a lost connection starts, and so does a `READONLY` reply: the server this connection
//! reached was demoted to a replica (a failover the connection outlived).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::SentinelClient;
use redis::{AsyncConnectionConfig, Cmd, RedisResult, ServerErrorKind, Value};
use tokio::sync::Notify;

use crate::error::{Error, ErrorKind, Result};

/// The pause after the first failed attempt of a reconnect; it doubles after each failure.
pub(crate) const MIN_DELAY: Duration = Duration::from_millis(10);
/// The longest pause between two attempts of a reconnect.
pub(crate) const MAX_DELAY: Duration = Duration::from_millis(500);

/// A cheap-to-clone handle on the one connection of a Redis backend.
#[derive(Clone)]
pub(crate) struct Connection {
    shared: Arc<Shared>,
}

struct Shared {
    connector: Connector,
    current: ArcSwapOption<Live>,
    /// Why there is no connection: the last failed attempt, or the error that lost the last
    /// connection. `None` until the first attempt ends.
    failure: Mutex<Option<Error>>,
    /// Whether a reconnect task runs; set and cleared only by [`Reconnecting`].
    reconnecting: AtomicBool,
    /// Connection attempts begun, ever.
    attempts: AtomicU64,
    /// Connection attempts ended, ever.
    settled: AtomicU64,
    /// Told when an attempt ends.
    changed: Notify,
}

/// What connections are made with.
pub(crate) enum Connector {
    /// One server; connection timeout as configured, no response timeout: the backend bounds
    /// each command.
    Single {
        client: redis::Client,
        config: AsyncConnectionConfig,
    },
    /// A Redis Cluster, reached through its nodes.
    Cluster(ClusterClient),
    /// The master that Redis Sentinel names, connected to as a single server.
    Sentinel {
        /// Keeps a connection to the sentinels it asked; locked only by the one reconnect task.
        client: tokio::sync::Mutex<SentinelClient>,
        /// For the connection to the master, as for a single server.
        config: AsyncConnectionConfig,
        /// Bounds a whole attempt: asking the sentinels, checking the master's role,
        /// connecting to it.
        connect_timeout: Duration,
    },
}

impl Connector {
    async fn connect(&self) -> RedisResult<Link> {
        match self {
            Connector::Single { client, config } => client
                .get_multiplexed_async_connection_with_config(config)
                .await
                .map(Link::Single),
            Connector::Cluster(client) => client.get_async_connection().await.map(Link::Cluster),
            Connector::Sentinel {
                client,
                config,
                connect_timeout,
            } => {
                // redis-rs bounds each connection it opens, not the sentinels' replies: a
                // sentinel that accepts and never answers would hold the attempt forever.
                let mut client = client.lock().await;
                let connect = client.get_async_connection_with_config(config);
                match tokio::time::timeout(*connect_timeout, connect).await {
                    Ok(connected) => connected.map(Link::Single),
                    Err(_) => Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()),
                }
            }
        }
    }

    /// Whether a command's `error` means that its connection is of no more use: lost (see
    /// [`is_lost`]); through Sentinel also a `READONLY` reply, which says that the server it
    /// reaches is no longer the master. A cluster connection follows its nodes by itself.
    fn drops_on(&self, error: &redis::RedisError) -> bool {
        match self {
            Connector::Single { .. } => is_lost(error),
            Connector::Cluster(_) => false,
            Connector::Sentinel { .. } => is_lost(error) || is_demoted(error),
        }
    }
}

/// A connection commands are sent on: cheap to clone, pipelining the commands of concurrent
/// callers.
#[derive(Clone)]
pub(crate) enum Link {
    /// To one server.
    Single(MultiplexedConnection),
    /// To a cluster: routes each command (and each pipeline, whose keys must share a hash slot)
    /// to the master of its slot.
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, command: &'a Cmd) -> redis::RedisFuture<'a, Value> {
        match self {
            Link::Single(connection) => connection.req_packed_command(command),
            Link::Cluster(connection) => connection.req_packed_command(command),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        match self {
            Link::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Link::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Single(connection) => connection.get_db(),
            Link::Cluster(connection) => connection.get_db(),
        }
    }
}

/// The current connection and the attempt that made it, which tells it from its successors.
struct Live {
    connection: Link,
    generation: u64,
}

/// The connection for one command.
pub(crate) struct Handle {
    pub(crate) connection: Link,
    generation: u64,
}

impl Connection {
    /// The client of a single server; `None` for a cluster, and for a master found through
    /// Sentinel, whose address a failover changes.
    pub(crate) fn single_client(&self) -> Option<&redis::Client> {
        match &self.shared.connector {
            Connector::Single { client, .. } => Some(client),
            Connector::Cluster(_) | Connector::Sentinel { .. } => None,
        }
    }

    /// A connection made by `connector`, first attempted now in the background when called
    /// inside a Tokio runtime (else by the first command).
    pub(crate) fn new(connector: Connector) -> Self {
        let connection = Self {
            shared: Arc::new(Shared {
                connector,
                current: ArcSwapOption::empty(),
                failure: Mutex::new(None),
                reconnecting: AtomicBool::new(false),
                attempts: AtomicU64::new(0),
                settled: AtomicU64::new(0),
                changed: Notify::new(),
            }),
        };
        connection.reconnect();
        connection
    }

    /// The connection for a command: the current one; before the first attempt ended, its
    /// outcome; else at once the error that left the backend without one (and a reconnect runs).
    pub(crate) async fn get(&self) -> Result<Handle> {
        match self.current() {
            Some(handle) => Ok(handle),
            None => self.without_current().await,
        }
    }

    /// The current connection or, when there is none, the outcome of the next attempt to make
    /// one (starting one if none runs): for a caller that chooses to wait, such as a warm-up.
    pub(crate) async fn ready(&self) -> Result<Handle> {
        if let Some(handle) = self.current() {
            return Ok(handle);
        }
        self.next_outcome(self.shared.settled.load(Ordering::Acquire))
            .await
    }

    /// The command on `handle` failed with `error`: when that means its connection is dead (or,
    /// through Sentinel, reaches a demoted master), drops the connection (unless already
    /// replaced) and makes sure a reconnect runs. A cluster connection is never dropped: it
    /// reconnects to its nodes by itself.
    pub(crate) fn failed(&self, handle_generation: u64, error: &redis::RedisError) {
        let shared = &self.shared;
        if !shared.connector.drops_on(error) {
            return;
        }
        let current = shared.current.load();
        if let Some(live) = &*current {
            if live.generation != handle_generation {
                // A newer connection replaced the one that failed.
                return;
            }
            shared.fail(Error::from(error.clone()));
            let previous = shared.current.compare_and_swap(&current, None);
            if previous
                .as_ref()
                .is_some_and(|previous| previous.generation == handle_generation)
            {
                tracing::debug!("the connection to Redis was lost; reconnecting in the background");
            }
        }
        self.reconnect();
    }

    /// Connection attempts begun so far.
    #[cfg(test)]
    pub(crate) fn attempts(&self) -> u64 {
        self.shared.attempts.load(Ordering::Relaxed)
    }

    #[inline(always)]
    fn current(&self) -> Option<Handle> {
        self.shared.current.load().as_ref().map(|live| Handle {
            connection: live.connection.clone(),
            generation: live.generation,
        })
    }

    /// Boxed: the path of a command that finds no connection is cold, and must not grow the
    /// future of every command.
    fn without_current(&self) -> Pin<Box<dyn Future<Output = Result<Handle>> + Send + '_>> {
        Box::pin(async move {
            if self.shared.settled.load(Ordering::Acquire) == 0 {
                return self.next_outcome(0).await;
            }
            self.reconnect();
            Err(self.failure())
        })
    }

    /// Waits until there is a connection, or until more than `seen` attempts have ended.
    async fn next_outcome(&self, seen: u64) -> Result<Handle> {
        loop {
            let changed = self.shared.changed.notified();
            let mut changed = std::pin::pin!(changed);
            // Registered before the checks, so that an attempt ending between them is not missed.
            changed.as_mut().enable();
            if let Some(handle) = self.current() {
                return Ok(handle);
            }
            if self.shared.settled.load(Ordering::Acquire) > seen {
                return Err(self.failure());
            }
            self.reconnect();
            changed.await;
        }
    }

    fn failure(&self) -> Error {
        self.shared
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| Error::new(ErrorKind::Connection, "not connected"))
    }

    /// Starts a reconnect task unless one runs (or there is no runtime to run it on).
    fn reconnect(&self) {
        let shared = &self.shared;
        if shared.reconnecting.load(Ordering::Acquire)
            || shared.reconnecting.swap(true, Ordering::AcqRel)
        {
            return;
        }
        // From here on the guard clears the flag when the task ends, however it ends: connected,
        // dropped with its runtime, or never spawned.
        let guard = Reconnecting(Arc::downgrade(shared));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(reconnect(guard));
        }
    }
}

/// Whether a command's error means that its connection is dead: an I/O error (dropped, reset,
/// refused). Not a reply that did not convert to the type asked for, which redis-rs counts among
/// the errors to reconnect on (`ErrorKind::Parse`) though the connection is fine, nor a server's
/// error reply.
fn is_lost(error: &redis::RedisError) -> bool {
    error.is_io_error()
}

/// Whether a command's error is a `READONLY` reply: its server is a replica now. Inside a Lua
/// script too, whose error keeps the code of the write that failed.
fn is_demoted(error: &redis::RedisError) -> bool {
    error.kind() == redis::ErrorKind::Server(ServerErrorKind::ReadOnly)
}

/// The right to run the one reconnect task; clears the flag when dropped.
struct Reconnecting(Weak<Shared>);

impl Drop for Reconnecting {
    fn drop(&mut self) {
        if let Some(shared) = self.0.upgrade() {
            shared.reconnecting.store(false, Ordering::Release);
        }
    }
}

/// Attempts to connect until it succeeds or the backend is dropped, pausing between attempts
/// for `MIN_DELAY`, doubling up to `MAX_DELAY` (with jitter, so that the processes of a fleet do
/// not all knock on a restarted server at once). Each attempt is bounded by the configured
/// connection timeout.
async fn reconnect(guard: Reconnecting) {
    let mut delay = MIN_DELAY;
    loop {
        let Some(shared) = guard.0.upgrade() else {
            return;
        };
        let attempt = shared.attempts.fetch_add(1, Ordering::Relaxed) + 1;
        let outcome = shared.connector.connect().await;
        match outcome {
            Ok(connection) => {
                shared.current.store(Some(Arc::new(Live {
                    connection,
                    generation: attempt,
                })));
                shared.settle();
                tracing::debug!(attempt, "connected to Redis");
                return;
            }
            Err(error) => {
                let error = Error::from(error);
                tracing::debug!(%error, attempt, "could not connect to Redis");
                shared.fail(error);
                shared.settle();
            }
        }
        // Not kept alive by its reconnect while it pauses.
        drop(shared);
        tokio::time::sleep(rand::random_range(delay / 2..=delay)).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

impl Shared {
    fn fail(&self, error: Error) {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    fn settle(&self) {
        self.settled.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }
}

impl Handle {
    /// The attempt that made this handle's connection, for [`Connection::failed`].
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    use tokio::io::AsyncReadExt;

    use super::*;

    fn connection_to(port: u16, connect_timeout: Duration) -> Connection {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(None);
        Connection::new(Connector::Single { client, config })
    }

    /// A port nobody listens on.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    /// A server that accepts connections and never answers, so that each attempt to connect
    /// hangs until its timeout; counts the connections open at once.
    struct Silent {
        port: u16,
        open: Arc<AtomicUsize>,
        most_open: Arc<AtomicUsize>,
        accepted: Arc<AtomicUsize>,
    }

    async fn silent_server() -> Silent {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = Silent {
            port: listener.local_addr().unwrap().port(),
            open: Arc::default(),
            most_open: Arc::default(),
            accepted: Arc::default(),
        };
        let (open, most_open) = (Arc::clone(&silent.open), Arc::clone(&silent.most_open));
        let accepted = Arc::clone(&silent.accepted);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                most_open.fetch_max(now, Ordering::SeqCst);
                let open = Arc::clone(&open);
                tokio::spawn(async move {
                    let mut buffer = [0; 256];
                    while matches!(socket.read(&mut buffer).await, Ok(read) if read > 0) {}
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        silent
    }

    #[test]
    fn only_an_io_error_loses_the_connection() {
        let io = |kind| redis::RedisError::from(std::io::Error::from(kind));
        assert!(is_lost(&io(std::io::ErrorKind::BrokenPipe)));
        assert!(is_lost(&io(std::io::ErrorKind::UnexpectedEof)));
        let unconverted = redis::from_redis_value::<i64>(redis::Value::BulkString(b"x".to_vec()))
            .map_err(redis::RedisError::from)
            .unwrap_err();
        assert!(!is_lost(&unconverted));
        let refused = redis::RedisError::from((redis::ErrorKind::Client, "refused"));
        assert!(!is_lost(&refused));
    }

    #[test]
    fn a_readonly_reply_drops_a_connection_through_sentinel_only() {
        let readonly = redis::RedisError::from((
            redis::ErrorKind::Server(ServerErrorKind::ReadOnly),
            "You can't write against a read only replica.",
        ));
        let lost = redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        let sentinel = Connector::Sentinel {
            client: tokio::sync::Mutex::new(
                SentinelClient::build(
                    vec!["redis://127.0.0.1:1/"],
                    String::from("mymaster"),
                    None,
                    redis::sentinel::SentinelServerType::Master,
                )
                .unwrap(),
            ),
            config: AsyncConnectionConfig::new(),
            connect_timeout: Duration::from_secs(1),
        };
        let single = Connector::Single {
            client: redis::Client::open("redis://127.0.0.1:1/").unwrap(),
            config: AsyncConnectionConfig::new(),
        };
        assert!(sentinel.drops_on(&readonly));
        assert!(sentinel.drops_on(&lost));
        assert!(!single.drops_on(&readonly), "a replica named by its URL");
        assert!(single.drops_on(&lost));
    }

    #[tokio::test]
    async fn without_a_server_commands_fail_at_once_after_the_first_attempt() {
        let connection = connection_to(closed_port(), Duration::from_secs(1));
        let error = connection.get().await.err().expect("nobody listens");
        assert!(error.is_unavailable(), "{error:?}");
        let started = Instant::now();
        for _ in 0..100 {
            let error = connection.get().await.err().expect("nobody listens");
            assert_eq!(error.kind(), ErrorKind::Connection);
        }
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_attempt_runs_at_a_time_and_no_command_waits_for_it() {
        let silent = silent_server().await;
        let connect_timeout = Duration::from_millis(300);
        let connection = connection_to(silent.port, connect_timeout);
        // The first attempt hangs: a command waits for its outcome.
        let error = connection
            .get()
            .await
            .err()
            .expect("the server never answers");
        assert!(error.is_timeout(), "{error:?}");

        // Then none waits, however many there are, while attempts go on in the background.
        let deadline = Instant::now() + 4 * connect_timeout;
        while Instant::now() < deadline {
            let commands = (0..64).map(|_| {
                let connection = connection.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    let error = connection.get().await.err().expect("never connected");
                    assert!(error.is_unavailable(), "{error:?}");
                    started.elapsed()
                })
            });
            for command in commands {
                let waited = command.await.unwrap();
                assert!(waited < connect_timeout / 2, "a command waited {waited:?}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(silent.accepted.load(Ordering::SeqCst) >= 2);
        assert_eq!(
            silent.most_open.load(Ordering::SeqCst),
            1,
            "two attempts ran at once"
        );
        let attempts = connection.attempts();
        assert!(
            attempts <= 8,
            "{attempts} attempts in {:?}",
            4 * connect_timeout
        );
    }

    #[test]
    fn a_reconnect_dropped_with_its_runtime_is_started_again() {
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        };
        // Accepted by the kernel and never answered: the attempt hangs.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let first = runtime();
        let connection = first.block_on(async {
            let connection = connection_to(port, Duration::from_secs(60));
            tokio::time::sleep(Duration::from_millis(50)).await;
            connection
        });
        assert_eq!(connection.attempts(), 1);
        // The attempt is cancelled mid-way; its guard hands the right to reconnect on.
        drop(first);
        assert!(!connection.shared.reconnecting.load(Ordering::SeqCst));

        runtime().block_on(async {
            let waited = tokio::time::timeout(Duration::from_millis(100), connection.ready()).await;
            assert!(waited.is_err(), "the new attempt hangs too");
        });
        assert_eq!(connection.attempts(), 2, "a new attempt was made");
        drop(listener);
    }
}

//! A private Redis Sentinel deployment: a primary, its replica and three sentinels on free
//! loopback ports, without persistence, stopped on drop.

use std::time::{Duration, Instant};

use redis::FromRedisValue;

use crate::redis_server::{free_port, RedisServer, ScratchDir};

/// The name the sentinels monitor the primary under.
pub const MASTER_NAME: &str = "cachemacro";

/// Sentinels of a deployment; two of them must agree that the primary is down (the quorum)
/// before one of them fails it over.
pub const SENTINELS: usize = 3;

/// How long the primary may be unreachable before a sentinel counts it down: short, so that a
/// failover test takes seconds.
pub const DOWN_AFTER: Duration = Duration::from_millis(1000);

/// A primary, a replica and three sentinels owned by a test.
#[derive(Debug)]
pub struct RedisSentinel {
    /// The primary and the replica, in that order (whichever is master now).
    servers: Vec<RedisServer>,
    sentinels: Vec<RedisServer>,
    /// The configuration files; after the processes, which stop first.
    _directory: ScratchDir,
}

impl RedisSentinel {
    /// Starts a primary and a replica of it, waits until the replica's link is up (replicas sync
    /// at once: `repl-diskless-sync-delay 0`), then three sentinels monitoring the primary as
    /// [`MASTER_NAME`] (quorum 2, down after [`DOWN_AFTER`]), and waits until each names the
    /// primary and knows the replica and the two other sentinels.
    ///
    /// # Panics
    /// When `redis-server` is not installed, or the deployment is not ready within 30 s.
    pub fn start() -> Self {
        let directory = ScratchDir::new("sentinel");
        let dir = directory.path().display().to_string();
        let data = |more: &[&str]| {
            ["--dir", &dir, "--repl-diskless-sync-delay", "0"]
                .iter()
                .chain(more)
                .map(|argument| (*argument).to_owned())
                .collect::<Vec<String>>()
        };
        let primary = RedisServer::start_configured(free_port(), None, data(&[]));
        let primary_port = primary.port().to_string();
        let replica = RedisServer::start_configured(
            free_port(),
            None,
            data(&["--replicaof", "127.0.0.1", &primary_port]),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ask::<String>(replica.port(), &["INFO", "replication"])
            .is_some_and(|info| info.contains("master_link_status:up"))
        {
            assert!(Instant::now() < deadline, "the replica never synced");
            std::thread::sleep(Duration::from_millis(20));
        }
        let sentinels = (0..SENTINELS)
            .map(|_| {
                let port = free_port();
                let file = directory.path().join(format!("sentinel-{port}.conf"));
                let name = MASTER_NAME;
                let down_after = DOWN_AFTER.as_millis();
                std::fs::write(
                    &file,
                    format!(
                        "sentinel monitor {name} 127.0.0.1 {primary_port} 2\n\
                         sentinel down-after-milliseconds {name} {down_after}\n\
                         sentinel failover-timeout {name} 5000\n\
                         sentinel parallel-syncs {name} 1\n"
                    ),
                )
                .expect("a sentinel configuration file");
                RedisServer::start_configured(
                    port,
                    Some(file),
                    vec!["--sentinel".to_owned(), "--dir".to_owned(), dir.clone()],
                )
            })
            .collect();
        let deployment = RedisSentinel {
            servers: vec![primary, replica],
            sentinels,
            _directory: directory,
        };
        deployment.wait_until_ready(deadline);
        deployment
    }

    /// The URL of each sentinel, for `Cache::redis_sentinel`.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels.iter().map(RedisServer::url).collect()
    }

    /// The primary and the replica, in the order they were started.
    pub fn servers(&self) -> &[RedisServer] {
        &self.servers
    }

    /// The port of the master as the first sentinel that answers names it.
    pub fn master_port(&self) -> Option<u16> {
        self.sentinels
            .iter()
            .find_map(|sentinel| master_addr(sentinel.port()))
    }

    /// Kills the server on `port` with SIGKILL, as a crash would.
    pub fn kill(&mut self, port: u16) {
        self.servers
            .iter_mut()
            .find(|server| server.port() == port)
            .expect("a server of this deployment")
            .kill();
    }

    /// Asks a sentinel to fail the master over (`SENTINEL FAILOVER`) while it runs: the replica
    /// is promoted, then the old master is made a replica of it.
    ///
    /// # Panics
    /// When the sentinel refuses.
    pub fn fail_over(&self) {
        let reply: Option<String> = ask(
            self.sentinels[0].port(),
            &["SENTINEL", "FAILOVER", MASTER_NAME],
        );
        assert_eq!(reply.as_deref(), Some("OK"), "SENTINEL FAILOVER refused");
    }

    /// Waits until every sentinel names a master other than `old`, and that server says it is a
    /// master: the port of the promoted replica.
    ///
    /// # Panics
    /// When that does not happen within `patience`.
    pub fn wait_for_failover(&self, old: u16, patience: Duration) -> u16 {
        let deadline = Instant::now() + patience;
        loop {
            let named: Vec<Option<u16>> = self
                .sentinels
                .iter()
                .map(|sentinel| master_addr(sentinel.port()))
                .collect();
            if let Some(Some(new)) = named.first().copied() {
                let agreed = named.iter().all(|port| *port == Some(new));
                if new != old && agreed && role(new).as_deref() == Some("master") {
                    return new;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no failover from {old} within {patience:?}: the sentinels name {named:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the server on `port` says it is a replica: after a failover the sentinels
    /// make the old master, when it runs, a replica of the new one.
    ///
    /// # Panics
    /// When that does not happen within `patience`.
    pub fn wait_for_demotion(&self, port: u16, patience: Duration) {
        let deadline = Instant::now() + patience;
        while role(port).as_deref() != Some("slave") {
            assert!(
                Instant::now() < deadline,
                "the server on {port} is still {:?} after {patience:?}",
                role(port)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_until_ready(&self, deadline: Instant) {
        let primary = self.servers[0].port();
        for sentinel in &self.sentinels {
            let port = sentinel.port();
            while !sentinel_ready(port, primary) {
                assert!(
                    Instant::now() < deadline,
                    "the sentinel on {port} was not ready within 30 s"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Whether the sentinel on `port` names `primary` as the master and knows one replica and the
/// other sentinels.
fn sentinel_ready(port: u16, primary: u16) -> bool {
    let replicas = ask::<Vec<redis::Value>>(port, &["SENTINEL", "REPLICAS", MASTER_NAME]);
    let others = ask::<Vec<redis::Value>>(port, &["SENTINEL", "SENTINELS", MASTER_NAME]);
    master_addr(port) == Some(primary)
        && replicas.is_some_and(|replicas| replicas.len() == 1)
        && others.is_some_and(|others| others.len() == SENTINELS - 1)
}

/// The master's port as the sentinel on `port` names it.
fn master_addr(port: u16) -> Option<u16> {
    let (_host, master): (String, u16) =
        ask(port, &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME])?;
    Some(master)
}

/// The `role:` of `INFO replication` of the server on `port`.
fn role(port: u16) -> Option<String> {
    let info: String = ask(port, &["INFO", "replication"])?;
    info.lines()
        .find_map(|line| line.strip_prefix("role:"))
        .map(|role| role.trim().to_owned())
}

/// The reply of a command to the server or sentinel on `port`, `None` when it does not answer.
fn ask<T: FromRedisValue>(port: u16, command: &[&str]) -> Option<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let mut connection = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    connection
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    let mut request = redis::cmd(command[0]);
    for argument in &command[1..] {
        request.arg(*argument);
    }
    request.query(&mut connection).ok()
}

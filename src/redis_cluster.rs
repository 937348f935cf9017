//! A private Redis Cluster: 3 masters and 3 replicas on free loopback ports, without persistence,
//! stopped on drop.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::redis_server::{free_port, RedisServer, ScratchDir};

/// Masters of a test cluster; each has one replica.
pub const MASTERS: usize = 3;

/// How long a node may be unreachable before the others count it failed and its replica takes
/// over: short, so that a failover test takes seconds.
pub const NODE_TIMEOUT: Duration = Duration::from_millis(1000);

/// A Redis Cluster of six `redis-server` processes owned by a test.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    /// The node files; after the nodes, which stop first.
    _directory: ScratchDir,
}

impl RedisCluster {
    /// Starts six nodes, joins them with `redis-cli --cluster create` (3 masters, one replica
    /// each) and waits until every node says `cluster_state:ok`, agrees on the slots, and every
    /// replica's link to its master is up (a replica promoted before its first sync would not
    /// take over: Redis 7 delays the first sync by `repl-diskless-sync-delay`, set to 0 here).
    ///
    /// # Panics
    /// When `redis-server` or `redis-cli` is not installed, or the cluster is not ready within
    /// 30 s.
    pub fn start() -> Self {
        let directory = ScratchDir::new("cluster");
        let nodes: Vec<RedisServer> = (0..2 * MASTERS)
            .map(|_| {
                let port = free_port();
                let file = directory.path().join(format!("nodes-{port}.conf"));
                RedisServer::start_clustered(port, file, NODE_TIMEOUT)
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli must be installed (with redis-server)");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let cluster = RedisCluster {
            nodes,
            _directory: directory,
        };
        cluster.wait_until_ready(Duration::from_secs(30));
        cluster
    }

    /// The URL of each node, for `Cache::redis_cluster`.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes, masters and replicas, in the order they were started.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The ports of the nodes that are masters now, as the first running node sees it.
    pub fn masters(&self) -> Vec<u16> {
        let asked = self
            .nodes
            .iter()
            .find(|node| node.is_running())
            .expect("a running node");
        let nodes = info(asked.port(), &["CLUSTER", "NODES"]).unwrap_or_default();
        nodes
            .lines()
            .filter(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                fields.len() > 2
                    && fields[2].split(',').any(|flag| flag == "master")
                    && !fields[2].contains("fail")
            })
            .filter_map(|line| {
                let address = line.split(' ').nth(1)?;
                let port = address.split('@').next()?.rsplit(':').next()?;
                port.parse().ok()
            })
            .collect()
    }

    /// Kills the node on `port` with SIGKILL, as a crash would.
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.port() == port)
            .expect("a node of this cluster");
        node.kill();
    }

    /// A plain redis-rs cluster connection, for what a test writes or reads behind the cache's
    /// back. Without a response timeout of redis-rs's own (see [`crate::redis_server::connect`]).
    pub async fn connection(&self) -> redis::cluster_async::ClusterConnection {
        redis::cluster::ClusterClient::builder(self.urls())
            .connection_timeout(Duration::from_secs(10))
            .response_timeout(Duration::from_secs(10))
            .build()
            .expect("valid node URLs")
            .get_async_connection()
            .await
            .expect("the test cluster answers")
    }

    /// Waits until every running node says `cluster_state:ok` and sees every slot served by a
    /// master it does not count failed, and every running replica's link to its master is up.
    ///
    /// # Panics
    /// When that does not happen within `patience`.
    pub fn wait_until_ready(&self, patience: Duration) {
        let deadline = Instant::now() + patience;
        loop {
            let unready: Vec<u16> = self
                .nodes
                .iter()
                .filter(|node| node.is_running() && !node_ready(node.port()))
                .map(RedisServer::port)
                .collect();
            if unready.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cluster nodes {unready:?} not ready within {patience:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether the node on `port` is ready: its cluster state is ok, it serves all slots
/// (`cluster_slots_ok`), and when it is a replica its link to its master is up.
fn node_ready(port: u16) -> bool {
    let Some(cluster) = info(port, &["CLUSTER", "INFO"]) else {
        return false;
    };
    if !cluster.contains("cluster_state:ok") || !cluster.contains("cluster_slots_ok:16384") {
        return false;
    }
    let Some(replication) = info(port, &["INFO", "replication"]) else {
        return false;
    };
    !replication.contains("role:slave") || replication.contains("master_link_status:up")
}

/// The text reply of a command to the node on `port`, `None` when it does not answer.
fn info(port: u16, command: &[&str]) -> Option<String> {
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

/// Runs `redis-cli` with `arguments`; its standard output, or a panic with what it said.
///
/// # Panics
/// When `redis-cli` fails.
pub fn redis_cli(arguments: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(arguments)
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli must be installed (with redis-server)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "redis-cli {arguments:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

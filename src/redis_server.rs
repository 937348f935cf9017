//! A private `redis-server` on a free loopback port, without persistence, stopped on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` process owned by a test.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    password: Option<String>,
    /// The certificate and key of a TLS-only server.
    tls: Option<PathBuf>,
    /// A configuration file, given first on the command line (a sentinel's, which it rewrites).
    config_file: Option<PathBuf>,
    /// More configuration, given on the command line after the harness's own.
    config: Vec<String>,
    /// The node configuration file of a cluster node, removed on drop.
    cluster_config: Option<PathBuf>,
    process: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    ///
    /// # Panics
    /// When `redis-server` is not installed or does not come up within 10 s.
    pub fn start() -> Self {
        Self::start_with(free_port(), None)
    }

    /// Starts a server on `port`, e.g. one a cache was already pointed at before it existed.
    pub fn start_on(port: u16) -> Self {
        Self::start_with(port, None)
    }

    /// Starts a server that requires `password` (`requirepass`).
    pub fn start_with_password(password: &str) -> Self {
        Self::start_with(free_port(), Some(password.to_owned()))
    }

    /// Starts a server that speaks TLS only, with a self-signed certificate made by `openssl`.
    pub fn start_tls() -> Self {
        let port = free_port();
        let directory =
            std::env::temp_dir().join(format!("cachemacro-tls-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("a temporary directory");
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args([
                "-subj",
                "/CN=localhost",
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
            ])
            .current_dir(&directory)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is installed");
        assert!(status.success(), "openssl made no certificate");
        let mut server = RedisServer::new(port);
        server.tls = Some(directory);
        server.spawn();
        server
    }

    /// Starts a server with `cluster-enabled yes`: a cluster of one node that owns no hash slot
    /// until given some (`CLUSTER ADDSLOTSRANGE 0 16383`). Its node file is private to it.
    pub fn start_cluster_node() -> Self {
        let port = free_port();
        let file = std::env::temp_dir().join(format!(
            "cachemacro-nodes-{}-{port}.conf",
            std::process::id()
        ));
        let mut server = RedisServer::new(port);
        server.config = vec![
            "--cluster-enabled".to_owned(),
            "yes".to_owned(),
            "--cluster-config-file".to_owned(),
            file.display().to_string(),
        ];
        server.cluster_config = Some(file);
        server.spawn();
        server
    }

    /// Starts a node of a multi-node cluster on `port`, keeping its node configuration in
    /// `file` (removed on drop). Replicas sync at once (`repl-diskless-sync-delay 0`), so that
    /// one can take over right after the cluster is made.
    pub(crate) fn start_clustered(port: u16, file: PathBuf, node_timeout: Duration) -> Self {
        let mut server = RedisServer::new(port);
        // Whatever a node writes (a full sync's snapshot) goes beside its node file, not into
        // the directory the tests run in.
        let directory = file.parent().unwrap_or(&file).display().to_string();
        server.config = [
            "--dir",
            &directory,
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            &file.display().to_string(),
            "--cluster-node-timeout",
            &node_timeout.as_millis().to_string(),
            "--repl-diskless-sync-delay",
            "0",
        ]
        .map(str::to_owned)
        .to_vec();
        server.cluster_config = Some(file);
        server.spawn();
        server
    }

    /// Starts a server on `port` with the configuration `file` (first on the command line) and
    /// `config` (last): a replica (`--replicaof`), or a sentinel (`--sentinel`).
    pub(crate) fn start_configured(port: u16, file: Option<PathBuf>, config: Vec<String>) -> Self {
        let mut server = RedisServer::new(port);
        server.config_file = file;
        server.config = config;
        server.spawn();
        server
    }

    fn start_with(port: u16, password: Option<String>) -> Self {
        let mut server = RedisServer::new(port);
        server.password = password;
        server.spawn();
        server
    }

    fn new(port: u16) -> Self {
        RedisServer {
            port,
            password: None,
            tls: None,
            config_file: None,
            config: Vec::new(),
            cluster_config: None,
            process: None,
        }
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL to connect with, password included.
    pub fn url(&self) -> String {
        if self.tls.is_some() {
            // The certificate is self-signed: skip verification (test servers only).
            return format!("rediss://127.0.0.1:{}/#insecure", self.port);
        }
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// A plain redis-rs connection to the server, for what a test writes or reads behind the
    /// cache's back.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        connect(&self.url()).await
    }

    /// Whether the server process runs (was not killed).
    pub fn is_running(&self) -> bool {
        self.process.is_some()
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts the server again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Sends SIGSTOP: the server keeps its connections but answers nothing.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Sends SIGCONT after [`freeze`](Self::freeze).
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        if let Some(process) = &self.process {
            let status = Command::new("kill")
                .arg(format!("-{name}"))
                .arg(process.id().to_string())
                .status()
                .expect("kill is available");
            assert!(status.success(), "kill -{name} failed");
        }
    }

    fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        command.args(&self.config_file);
        command
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        if let Some(directory) = &self.tls {
            let file = |name: &str| directory.join(name).display().to_string();
            command
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .args([
                    "--tls-cert-file",
                    &file("cert.pem"),
                    "--tls-key-file",
                    &file("key.pem"),
                ])
                .args([
                    "--tls-ca-cert-file",
                    &file("cert.pem"),
                    "--tls-auth-clients",
                    "no",
                ]);
        }
        command.args(&self.config);
        let process = command
            .spawn()
            .expect("redis-server must be installed (scripts/test.sh installs it)");
        self.process = Some(process);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers_ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        if self.tls.is_some() {
            // Listening is all a plain socket can tell of a TLS server.
            return true;
        }
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let request = match &self.password {
            Some(password) => format!(
                "*2\r\n$4\r\nAUTH\r\n${}\r\n{password}\r\n*1\r\n$4\r\nPING\r\n",
                password.len()
            ),
            None => "*1\r\n$4\r\nPING\r\n".to_owned(),
        };
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut reply = Vec::new();
        let mut buffer = [0u8; 64];
        while let Ok(read) = stream.read(&mut buffer) {
            if read == 0 {
                break;
            }
            reply.extend_from_slice(&buffer[..read]);
            if reply.ends_with(b"+PONG\r\n") {
                return true;
            }
        }
        false
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.thaw();
        self.kill();
        if let Some(directory) = &self.tls {
            let _ = std::fs::remove_dir_all(directory);
        }
        if let Some(file) = &self.cluster_config {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// A plain redis-rs connection to `url`. Without redis-rs's default 500 ms response timeout,
/// which a busy machine can exceed: these commands set up and check a test, and a slow answer
/// must not fail it.
///
/// # Panics
/// When the server does not answer within 10 s.
pub async fn connect(url: &str) -> redis::aio::MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(10)))
        .set_response_timeout(None);
    redis::Client::open(url)
        .expect("a valid Redis URL")
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("the test server answers")
}

/// A directory of its own under the system's temporary one, for the files of a test's servers
/// (cluster node files, sentinel configurations); removed with everything in it on drop. Hold it
/// after the servers that write there, so that they stop first.
#[derive(Debug)]
pub struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    /// A new directory named after `kind`, this process and a free port.
    pub fn new(kind: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "cachemacro-{kind}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&path).expect("a temporary directory");
        ScratchDir(path)
    }

    /// Where it is.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

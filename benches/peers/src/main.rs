//! `#[cached]` side by side with what users compare it to, in one run:
//!
//! ```text
//! cargo run --release --manifest-path benches/peers/Cargo.toml            # full run, ~10 min
//! cargo run --release --manifest-path benches/peers/Cargo.toml -- --quick # a smoke run
//! ```
//!
//! `--hit-loop=<client>,<calls>,<tasks>` reads through one client and exits, for counting
//! instructions per hit (`scripts/hit-instructions.sh`).
//!
//! A part of the grid: `--workers=1 --sizes=200 --tasks=64,256 --reads-only --no-outages` (a
//! partial run prints its tables and writes nothing).
//!
//! Clients: raw redis-rs (`MultiplexedConnection` and `ConnectionManager`, with their defaults
//! and with TCP_NODELAY; GET + `serde_json` by hand), the `cached` crate's `AsyncRedisCache`,
//! `#[cached]` on Redis (TCP_NODELAY on, its default, and off), and on the embedded backend
//! against a bare `moka` get. Each point (workers, value size, tasks) runs every client for the
//! same number of calls, in rounds whose order alternates; reported: median throughput over the
//! rounds, p50 and p99 of all calls, and the ratio to the best raw redis-rs client. Then, with
//! the same clients: 200 callers of one cold key (loads), and calls while Redis is frozen
//! (SIGSTOP) and killed (latency, errors). Results go to stdout as Markdown and, with charts
//! (SVG), to `docs/bench/`.

mod clients;
mod plot;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use cachemacro_tests::RedisServer;
use clients::{Client, Kind, Row, LOADS};

/// Value sizes: a typical row, and a large document (several TCP segments).
pub const SIZES: [usize; 2] = [200, 100 * 1024];
pub const TASKS: [usize; 5] = [1, 4, 16, 64, 256];
pub const WORKERS: [usize; 2] = [1, 2];

/// One measured point of one client.
#[derive(Debug, Clone)]
pub struct Point {
    pub kind: Kind,
    pub workers: usize,
    pub size: usize,
    pub tasks: usize,
    pub write: bool,
    pub calls_per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
}

struct Settings {
    workers: Vec<usize>,
    sizes: Vec<usize>,
    tasks: Vec<usize>,
    reads_only: bool,
    outages: bool,
    rounds: usize,
    /// Calls per point for a Redis client at one task; scaled with tasks and size.
    base_calls: usize,
    outage: Duration,
    /// How long a call during an outage is waited for before it counts as hung.
    patience: Duration,
}

/// The numbers of `--name=a,b,c`, else `all`.
fn list(name: &str, all: &[usize]) -> Vec<usize> {
    let prefix = format!("--{name}=");
    std::env::args()
        .find_map(|arg| arg.strip_prefix(&prefix).map(str::to_owned))
        .map_or_else(
            || all.to_vec(),
            |values| {
                values
                    .split(',')
                    .map(|value| value.parse().expect("a list of numbers"))
                    .collect()
            },
        )
}

fn main() {
    let flag = |name: &str| std::env::args().any(|arg| arg == name);
    if flag("--timer") {
        timer_cost();
        return;
    }
    if let Some(spec) =
        std::env::args().find_map(|arg| arg.strip_prefix("--hit-loop=").map(str::to_owned))
    {
        hit_loop(&spec);
        return;
    }
    let quick = flag("--quick");
    let (rounds, base_calls, outage, patience) = if quick {
        (1, 50, Duration::from_millis(300), Duration::from_secs(1))
    } else {
        (3, 1500, Duration::from_secs(2), Duration::from_secs(5))
    };
    let settings = Settings {
        workers: list("workers", &WORKERS),
        sizes: list("sizes", &SIZES),
        tasks: list("tasks", &TASKS),
        reads_only: flag("--reads-only"),
        outages: !flag("--no-outages"),
        rounds,
        base_calls,
        outage,
        patience,
    };
    let partial = settings.workers.len() < WORKERS.len()
        || settings.sizes.len() < SIZES.len()
        || settings.tasks.len() < TASKS.len()
        || settings.reads_only
        || !settings.outages;
    let mut server = RedisServer::start();
    let url = server.url();
    let mut report = String::new();
    let mut points = Vec::new();

    for &workers in &settings.workers {
        let runtime = runtime(workers);
        for &size in &settings.sizes {
            for write in [false, true] {
                if write && settings.reads_only {
                    continue;
                }
                for &tasks in &settings.tasks {
                    let measured = runtime
                        .block_on(measure_point(&url, workers, size, tasks, write, &settings));
                    points.extend(measured);
                }
            }
        }
    }
    write_throughput_tables(&mut report, &points);

    let mut outages_measured = Vec::new();
    if settings.outages {
        let runtime = runtime(2);
        let stampede = runtime.block_on(cold_key(&url));
        write_stampede(&mut report, &stampede);
        outages_measured = runtime.block_on(outages(&mut server, &settings));
        write_outages(&mut report, &outages_measured, &settings);
    }

    print!("{report}");
    if !quick && !partial {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/bench");
        std::fs::create_dir_all(&dir).expect("docs/bench can be created");
        std::fs::write(dir.join("peers.md"), &report).expect("the report is written");
        plot::throughput(&dir, &points);
        plot::p99(&dir, &points);
        plot::outages(&dir, &outages_measured);
        println!("charts and report written to {}", dir.display());
    }
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

fn kinds() -> impl Iterator<Item = Kind> {
    Kind::REDIS.into_iter().chain(Kind::EMBEDDED)
}

async fn measure_point(
    url: &str,
    workers: usize,
    size: usize,
    tasks: usize,
    write: bool,
    settings: &Settings,
) -> Vec<Point> {
    let mut clients = Vec::new();
    for kind in kinds() {
        let mut client = kind.connect(url).await;
        // Fill every key the point reads, so that reads are hits.
        for id in 0..16 {
            client
                .read(size, id)
                .await
                .expect("the first read fills the key");
            client.read(size, id).await.expect("a hit");
        }
        clients.push((kind, client));
    }
    let loads_before = LOADS.load(Relaxed);
    let row = Row::new(7, size);
    let by_size = if size > 1024 { 10 } else { 1 };
    let mut per_kind: BTreeMap<usize, (Vec<f64>, Vec<Duration>)> = BTreeMap::new();
    for round in 0..settings.rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..clients.len()).collect()
        } else {
            (0..clients.len()).rev().collect()
        };
        for index in order {
            let (kind, client) = &clients[index];
            let embedded = Kind::EMBEDDED.contains(kind);
            let calls =
                settings.base_calls * tasks.clamp(1, 32) / by_size * if embedded { 20 } else { 1 };
            let (rate, latencies) =
                run_calls(client, tasks, calls, size, write.then(|| row.clone())).await;
            let entry = per_kind.entry(index).or_default();
            entry.0.push(rate);
            entry.1.extend(latencies);
        }
    }
    let points = per_kind
        .into_iter()
        .map(|(index, (mut rates, mut latencies))| {
            rates.sort_by(f64::total_cmp);
            latencies.sort();
            Point {
                kind: clients[index].0,
                workers,
                size,
                tasks,
                write,
                calls_per_second: rates[rates.len() / 2],
                p50: percentile(&latencies, 0.50),
                p99: percentile(&latencies, 0.99),
            }
        })
        .collect();
    assert_eq!(
        LOADS.load(Relaxed),
        loads_before,
        "every measured read was a hit"
    );
    points
}

/// Runs `calls` calls split over `tasks` tasks; returns calls per second and each latency.
async fn run_calls(
    client: &Client,
    tasks: usize,
    calls: usize,
    size: usize,
    write: Option<Row>,
) -> (f64, Vec<Duration>) {
    let per_task = calls.div_ceil(tasks);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let mut client = client.clone();
            let write = write.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for call in 0..per_task {
                    let id = ((task + call) % 16) as u64;
                    let began = Instant::now();
                    match &write {
                        Some(row) => client.write(size, id, row.clone()).await.expect("a write"),
                        None => {
                            client.read(size, id).await.expect("a read");
                        }
                    }
                    latencies.push(began.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(per_task * tasks);
    for handle in handles {
        latencies.extend(handle.await.expect("a task panicked"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    ((per_task * tasks) as f64 / elapsed, latencies)
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * fraction).round() as usize]
}

fn micros(duration: Duration) -> String {
    format!("{:.0}", duration.as_secs_f64() * 1e6)
}

fn best_raw<'a>(points: &'a [Point], like: &Point) -> Option<&'a Point> {
    points
        .iter()
        .filter(|p| {
            p.kind.is_raw()
                && p.workers == like.workers
                && p.size == like.size
                && p.tasks == like.tasks
                && p.write == like.write
        })
        .max_by(|a, b| a.calls_per_second.total_cmp(&b.calls_per_second))
}

fn write_throughput_tables(report: &mut String, points: &[Point]) {
    for write in [false, true] {
        for size in SIZES {
            for workers in WORKERS {
                let _ = writeln!(
                    report,
                    "\n### {} of {} B values, {workers} Tokio worker{}\n",
                    if write { "Writes" } else { "Hits" },
                    size,
                    if workers == 1 { "" } else { "s" },
                );
                let _ = writeln!(
                    report,
                    "| client | tasks | calls/s | p50 µs | p99 µs | / best raw |\n|---|---:|---:|---:|---:|---:|"
                );
                for kind in kinds() {
                    for tasks in TASKS {
                        let Some(point) = points.iter().find(|p| {
                            p.kind == kind
                                && p.workers == workers
                                && p.size == size
                                && p.tasks == tasks
                                && p.write == write
                        }) else {
                            continue;
                        };
                        let ratio = best_raw(points, point)
                            .map(|best| {
                                format!("{:.2}", point.calls_per_second / best.calls_per_second)
                            })
                            .unwrap_or_default();
                        let _ = writeln!(
                            report,
                            "| {} | {tasks} | {:.0} | {} | {} | {ratio} |",
                            kind.label(),
                            point.calls_per_second,
                            micros(point.p50),
                            micros(point.p99),
                        );
                    }
                }
            }
        }
    }
}

/// Cold key: 200 callers of one missing key at once.
struct Stampede {
    kind: Kind,
    loads: u64,
    p50: Duration,
    p99: Duration,
}

async fn cold_key(url: &str) -> Vec<Stampede> {
    let mut results = Vec::new();
    for (round, kind) in kinds().enumerate() {
        let client = kind.connect(url).await;
        let id = 1_000 + round as u64;
        let before = LOADS.load(Relaxed);
        let handles: Vec<_> = (0..200)
            .map(|_| {
                let mut client = client.clone();
                tokio::spawn(async move {
                    let began = Instant::now();
                    client.read(200, id).await.expect("a read");
                    began.elapsed()
                })
            })
            .collect();
        let mut latencies = Vec::new();
        for handle in handles {
            latencies.push(handle.await.expect("a caller panicked"));
        }
        latencies.sort();
        results.push(Stampede {
            kind,
            loads: LOADS.load(Relaxed) - before,
            p50: percentile(&latencies, 0.5),
            p99: percentile(&latencies, 0.99),
        });
    }
    results
}

fn write_stampede(report: &mut String, results: &[Stampede]) {
    let _ = writeln!(
        report,
        "\n### A cold key, 200 concurrent callers (load takes {} ms)\n\n| client | loads | p50 ms | p99 ms |\n|---|---:|---:|---:|",
        clients::LOAD_TIME.as_millis()
    );
    for result in results {
        let _ = writeln!(
            report,
            "| {} | {} | {:.1} | {:.1} |",
            result.kind.label(),
            result.loads,
            result.p50.as_secs_f64() * 1e3,
            result.p99.as_secs_f64() * 1e3,
        );
    }
}

/// Calls while Redis is frozen or killed.
pub struct Outage {
    pub kind: Kind,
    pub frozen: bool,
    pub calls: usize,
    pub errors: usize,
    /// Calls unanswered after [`Settings::patience`], counted at that.
    pub hung: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

async fn outages(server: &mut RedisServer, settings: &Settings) -> Vec<Outage> {
    let url = server.url();
    let mut results = Vec::new();
    for frozen in [true, false] {
        for kind in Kind::REDIS {
            let client = kind.connect(&url).await;
            if frozen {
                server.freeze();
            } else {
                server.kill();
            }
            let down = calls_while_down(kind, &client, frozen, settings.outage, settings.patience);
            results.push(down.await);
            if frozen {
                server.thaw();
            } else {
                server.restart();
            }
            // Each client gets a server that has been up for a moment.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    results
}

async fn calls_while_down(
    kind: Kind,
    client: &Client,
    frozen: bool,
    length: Duration,
    patience: Duration,
) -> Outage {
    let ends = Instant::now() + length;
    let handles: Vec<_> = (0..16u64)
        .map(|task| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let (mut latencies, mut errors, mut hung) = (Vec::new(), 0, 0);
                let mut call = 0u64;
                while Instant::now() < ends {
                    call += 1;
                    // Keys never read before: a working cache would miss and load.
                    let id = 1_000_000 + task * 100_000 + call;
                    let began = Instant::now();
                    match tokio::time::timeout(patience, client.read(200, id)).await {
                        Ok(Ok(_)) => latencies.push(began.elapsed()),
                        Ok(Err(_)) => {
                            errors += 1;
                            latencies.push(began.elapsed());
                        }
                        Err(_) => {
                            hung += 1;
                            latencies.push(began.elapsed());
                        }
                    }
                }
                (latencies, errors, hung)
            })
        })
        .collect();
    let (mut latencies, mut errors, mut hung) = (Vec::new(), 0, 0);
    for handle in handles {
        let (l, e, h) = handle.await.expect("a caller panicked");
        latencies.extend(l);
        errors += e;
        hung += h;
    }
    latencies.sort();
    Outage {
        kind,
        frozen,
        calls: latencies.len(),
        errors,
        hung,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
    }
}

fn write_outages(report: &mut String, results: &[Outage], settings: &Settings) {
    for frozen in [true, false] {
        let _ = writeln!(
            report,
            "\n### Redis {} for {} s (16 tasks calling keys never read before; each load takes {} ms)\n\n| client | calls | errors to callers | hung > {} s | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|---:|",
            if frozen { "frozen (SIGSTOP)" } else { "killed" },
            settings.outage.as_secs_f64(),
            clients::LOAD_TIME.as_millis(),
            settings.patience.as_secs(),
        );
        for result in results.iter().filter(|r| r.frozen == frozen) {
            let _ = writeln!(
                report,
                "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} |",
                result.kind.label(),
                result.calls,
                result.errors,
                result.hung,
                result.p50.as_secs_f64() * 1e3,
                result.p99.as_secs_f64() * 1e3,
                result.max.as_secs_f64() * 1e3,
            );
        }
    }
}

/// A future that is pending once, as a command is until its reply arrives.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

/// What the operation timeout around each command costs: 64 tasks on one worker await a future
/// that is pending once, bare and inside `tokio::time::timeout`, in alternating rounds.
/// `--hit-loop=<client>,<calls per task>,<tasks>[,<url>]`: reads one 200 B row through one
/// client on a current-thread runtime and exits; `scripts/hit-instructions.sh` runs it under
/// callgrind at two call counts, so the difference is the instructions of the hits alone.
/// Clients: `manager`, `multiplexed`, `cached-crate`, `ours`, `ours-memory`, `moka`.
fn hit_loop(spec: &str) {
    let parts: Vec<&str> = spec.split(',').collect();
    let (kind, calls, tasks) = match parts[..] {
        [kind, calls, tasks, ..] => (kind, calls, tasks),
        _ => panic!("--hit-loop=<client>,<calls per task>,<tasks>[,<url>]"),
    };
    let kind = match kind {
        "manager" => Kind::Manager,
        "multiplexed" => Kind::Multiplexed,
        "cached-crate" => Kind::CachedCrate,
        "ours" => Kind::Ours,
        "ours-memory" => Kind::OursMemory,
        "moka" => Kind::Moka,
        other => panic!("unknown client {other}"),
    };
    let calls: u64 = calls.parse().expect("a number of calls");
    let tasks: u64 = tasks.parse().expect("a number of tasks");
    let server = parts.get(3).is_none().then(RedisServer::start);
    let url = parts.get(3).map_or_else(
        || server.as_ref().map(RedisServer::url).unwrap_or_default(),
        |url| (*url).to_owned(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(async {
        let mut client = kind.connect(&url).await;
        let expected = Row::new(HIT_LOOP_ID, HIT_LOOP_SIZE);
        // Reads until one is a hit (a fill may land after its caller returned): every read
        // measured after it is a hit too.
        let mut loads = u64::MAX;
        while LOADS.load(Relaxed) != loads {
            loads = LOADS.load(Relaxed);
            let row = client.read(HIT_LOOP_SIZE, HIT_LOOP_ID).await;
            assert_eq!(row, Ok(expected.clone()));
        }
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let mut client = client.clone();
                tokio::spawn(async move {
                    for _ in 0..calls {
                        let row = client.read(HIT_LOOP_SIZE, HIT_LOOP_ID).await;
                        std::hint::black_box(row.expect("a hit"));
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.await.expect("a reader panicked");
        }
        assert_eq!(LOADS.load(Relaxed), loads, "a measured read missed");
    });
}

const HIT_LOOP_ID: u64 = 1;
const HIT_LOOP_SIZE: usize = 200;

fn timer_cost() {
    const TASKS: usize = 64;
    const PER_TASK: usize = 20_000;
    let runtime = runtime(1);
    let round = |timed: bool| {
        runtime.block_on(async move {
            let started = Instant::now();
            let handles: Vec<_> = (0..TASKS)
                .map(|_| {
                    tokio::spawn(async move {
                        for _ in 0..PER_TASK {
                            if timed {
                                let bounded = tokio::time::timeout(
                                    Duration::from_millis(100),
                                    YieldOnce(false),
                                );
                                bounded.await.expect("never times out");
                            } else {
                                YieldOnce(false).await;
                            }
                        }
                    })
                })
                .collect();
            for handle in handles {
                handle.await.expect("a task panicked");
            }
            started.elapsed().as_secs_f64() * 1e9 / (TASKS * PER_TASK) as f64
        })
    };
    let (mut bare, mut timed) = (Vec::new(), Vec::new());
    for index in 0..10 {
        if index % 2 == 0 {
            bare.push(round(false));
            timed.push(round(true));
        } else {
            timed.push(round(true));
            bare.push(round(false));
        }
    }
    bare.sort_by(f64::total_cmp);
    timed.sort_by(f64::total_cmp);
    println!(
        "64 tasks, 1 worker: a pending-once future takes {:.0} ns bare, {:.0} ns inside tokio::time::timeout (median of 10 rounds): the timer costs {:.0} ns per command",
        bare[5],
        timed[5],
        timed[5] - bare[5]
    );
}

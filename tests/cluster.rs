//! The cache on a real Redis Cluster (3 masters, 3 replicas, `cachemacro_tests::RedisCluster`):
//! where its keys land, and what callers see while a master dies or slots move. The conformance
//! suite (`tests/conformance/`) checks every other behaviour on a cluster too.

#[path = "common/failover.rs"]
mod failover;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachemacro_runtime::{cache_put, cached, Cache, ErrorKind};
use cachemacro_tests::redis_cluster::redis_cli;
use cachemacro_tests::RedisCluster;
use failover::{all_hit, load, Rows, Seen, ROWS};
use redis::cluster_async::ClusterConnection;
use tokio::sync::Semaphore;

/// The database stand-in: a version per row, a count of reads, and a gate that holds reads while
/// it is set.
#[derive(Default)]
struct Db {
    rows: Mutex<HashMap<String, u64>>,
    reads: AtomicUsize,
    gate: Mutex<Option<Arc<Semaphore>>>,
    /// Set by each read that starts.
    reading: AtomicBool,
}

impl Db {
    fn version(&self, id: &str) -> u64 {
        *self.rows.lock().unwrap().get(id).unwrap_or(&0)
    }

    fn write(&self, id: &str) -> u64 {
        let mut rows = self.rows.lock().unwrap();
        let version = rows.entry(id.to_owned()).or_insert(0);
        *version += 1;
        *version
    }

    async fn read(&self, id: &str) -> u64 {
        self.reads.fetch_add(1, SeqCst);
        let version = self.version(id);
        self.reading.store(true, SeqCst);
        let gate = self.gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.acquire().await.unwrap().forget();
        }
        version
    }

    fn reads(&self) -> usize {
        self.reads.load(SeqCst)
    }
}

// A sample of templates: plain, with a hash tag of their own, with braces that open no tag, and
// versioned (`@v2` after the key). Each has tags of its own shape.

#[cached(ttl = 60, key = "user:<id>", tags = ["org:<org>"], cache = cache)]
async fn plain(cache: &Cache, db: &Db, id: &str, org: &str) -> u64 {
    db.read(id).await
}

#[cached(ttl = 60, key = "{tenant}:user:<id>", tags = ["{tenant}:all", "org:<org>"], cache = cache)]
async fn hash_tagged(cache: &Cache, db: &Db, id: &str, org: &str) -> u64 {
    db.read(id).await
}

#[cached(ttl = 60, key = "a}b{:<id>", tags = ["t}{<org>"], cache = cache)]
async fn braces(cache: &Cache, db: &Db, id: &str, org: &str) -> u64 {
    db.read(id).await
}

#[cached(ttl = 60, key = "v:<id>", version = 2, tags = ["org:<org>"], cache = cache)]
async fn versioned(cache: &Cache, db: &Db, id: &str, org: &str) -> u64 {
    db.read(id).await
}

#[cache_put(ttl = 60, key = "user:<id>", tags = ["org:<org>"], cache = cache)]
async fn put_plain(cache: &Cache, db: &Db, id: &str, org: &str) -> u64 {
    db.write(id)
}

/// Each key on the cluster: `KEYS *` on every master, joined.
async fn all_keys(raw: &mut ClusterConnection) -> BTreeSet<String> {
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(raw).await.unwrap();
    keys.into_iter().collect()
}

async fn key_slot(raw: &mut ClusterConnection, key: &str) -> u16 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(raw)
        .await
        .unwrap()
}

async fn cluster_cache(cluster: &RedisCluster, prefix: &str, timeout: Duration) -> Cache {
    Cache::builder()
        .key_prefix(prefix)
        .operation_timeout(timeout)
        .connect_timeout(Duration::from_secs(2))
        .redis_cluster(cluster.urls())
        .await
        .unwrap()
}

async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// For each sample template under each sample prefix (and argument values holding braces), a
/// tagged fill is held while `KEYS *` lists what it wrote, then a write-through of the same key
/// runs. Every key the runtime wrote is then asked `CLUSTER KEYSLOT`: the entry's version and
/// lock must be in the entry's slot (one script touches all three), start with the prefix, and
/// nothing else may have been written but the tags' epochs, one key each. The cluster enforces
/// the rest itself: a script or pipeline over two slots is refused (CROSSSLOT), which would show
/// as an error, an entry not stored, or a second call that misses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_the_runtime_writes_keeps_to_its_entrys_slot() {
    let cluster = RedisCluster::start();
    let mut raw = cluster.connection().await;
    type Call = for<'a> fn(
        &'a Cache,
        &'a Db,
        &'a str,
        &'a str,
    )
        -> std::pin::Pin<Box<dyn std::future::Future<Output = u64> + Send + 'a>>;
    let templates: [(&str, Call); 4] = [
        ("user:", |c, d, i, o| Box::pin(plain(c, d, i, o))),
        ("{tenant}:user:", |c, d, i, o| {
            Box::pin(hash_tagged(c, d, i, o))
        }),
        ("a}b{:", |c, d, i, o| Box::pin(braces(c, d, i, o))),
        ("v:", |c, d, i, o| Box::pin(versioned(c, d, i, o))),
    ];
    let mut slots_seen = BTreeSet::new();
    for prefix in ["", "app:", "{app}:", "x}{y}:"] {
        for (template, call) in templates {
            for (id, org) in [("1", "7"), ("{9}", "}{"), ("u}2", "{o")] {
                let () = redis::cmd("FLUSHALL").query_async(&mut raw).await.unwrap();
                let cache = cluster_cache(&cluster, prefix, Duration::from_secs(2)).await;
                let db = Arc::new(Db::default());
                let gate = Arc::new(Semaphore::new(0));
                *db.gate.lock().unwrap() = Some(Arc::clone(&gate));
                let fill = {
                    let (cache, db) = (cache.clone(), Arc::clone(&db));
                    let (id, org) = (id.to_owned(), org.to_owned());
                    tokio::spawn(async move { call(&cache, &db, &id, &org).await })
                };
                until("the fill loads", || db.reading.load(SeqCst)).await;
                let during = all_keys(&mut raw).await;
                *db.gate.lock().unwrap() = None;
                gate.add_permits(1);
                fill.await.unwrap();
                assert_eq!(call(&cache, &db, id, org).await, 0);
                assert_eq!(db.reads(), 1, "{prefix}{template}{id}: the second call hit");
                if template == "user:" {
                    assert_eq!(put_plain(&cache, &db, id, org).await, 1);
                    assert_eq!(
                        call(&cache, &db, id, org).await,
                        1,
                        "the write-through's value"
                    );
                    assert_eq!(
                        db.reads(),
                        1,
                        "{prefix}{template}{id}: served the write-through"
                    );
                }
                let after = all_keys(&mut raw).await;
                let written: BTreeSet<&String> = during.iter().chain(&after).collect();

                let entries: Vec<&&String> =
                    written.iter().filter(|key| !key.contains('#')).collect();
                assert_eq!(entries.len(), 1, "one entry in {written:?}");
                let entry = entries[0];
                assert!(entry.starts_with(prefix), "{entry:?}");
                assert!(entry[prefix.len()..].starts_with(template), "{entry:?}");
                let entry_slot = key_slot(&mut raw, entry).await;
                slots_seen.insert(entry_slot);
                let mut companions = 0;
                let mut epochs = 0;
                for key in &written {
                    assert!(key.starts_with(prefix), "{key:?} is outside {prefix:?}");
                    if key.ends_with("#v") || key.ends_with("#lock") {
                        companions += 1;
                        assert_eq!(
                            key_slot(&mut raw, key).await,
                            entry_slot,
                            "{key:?} is not in the slot of {entry:?}"
                        );
                    } else if key.contains("tag#") {
                        epochs += 1;
                        // Any slot; asked so that every key written has been.
                        key_slot(&mut raw, key).await;
                    } else {
                        assert_eq!(key, entry, "an unexpected key");
                    }
                }
                assert_eq!(companions, 2, "a version and a lock: {written:?}");
                let tags = if template.starts_with('{') { 2 } else { 1 };
                assert_eq!(epochs, tags, "one epoch per tag: {written:?}");
                let stats = cache.stats();
                assert_eq!(stats.errors, 0, "{entry:?}: {stats:?}");
            }
        }
    }
    assert!(
        slots_seen.len() > 4,
        "the sample spread over slots: {slots_seen:?}"
    );

    // A prefix whose `{` the companions cannot close over their entry is refused up front.
    for prefix in ["x}{:", "{}:"] {
        let refused = Cache::builder()
            .key_prefix(prefix)
            .redis_cluster(cluster.urls())
            .await
            .expect_err("refused");
        assert_eq!(refused.kind(), ErrorKind::InvalidConfig, "{prefix:?}");
    }
}

/// The slot ranges the node on `port` serves, from `CLUSTER NODES`.
fn slots_of(cluster: &RedisCluster, port: u16) -> Vec<(u16, u16)> {
    let alive = cluster
        .nodes()
        .iter()
        .find(|node| node.is_running())
        .unwrap();
    let nodes = redis_cli(&["-p", &alive.port().to_string(), "cluster", "nodes"]);
    let line = nodes
        .lines()
        .find(|line| {
            line.split(' ')
                .nth(1)
                .is_some_and(|address| address.starts_with(&format!("127.0.0.1:{port}@")))
        })
        .expect("the node is listed");
    line.split(' ')
        .skip(8)
        .filter(|range| !range.starts_with('['))
        .map(|range| match range.split_once('-') {
            Some((low, high)) => (low.parse().unwrap(), high.parse().unwrap()),
            None => (range.parse().unwrap(), range.parse().unwrap()),
        })
        .collect()
}

/// The rows whose entries live in `ranges`.
async fn rows_in(raw: &mut ClusterConnection, ranges: &[(u16, u16)]) -> Vec<u64> {
    let mut rows = Vec::new();
    for id in 0..ROWS {
        let slot = key_slot(raw, &format!("row:{id}")).await;
        if ranges
            .iter()
            .any(|(low, high)| (*low..=*high).contains(&slot))
        {
            rows.push(id);
        }
    }
    rows
}

/// A master is killed with SIGKILL under load; its replica takes over. No caller sees an error
/// or a value older than an acknowledged write, before, during or after; once the replica is
/// master, the rows of the dead master's slots are cached again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_under_load_fails_over_without_errors_or_stale_values() {
    let mut cluster = RedisCluster::start();
    let mut raw = cluster.connection().await;
    let cache = cluster_cache(&cluster, "", Duration::from_millis(100)).await;
    let db = Arc::new(Rows::default());
    let (stop, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(Seen::default()));
    let tasks = load(&cache, &db, &stop, &seen);

    let victim = cluster.masters()[0];
    let moved = rows_in(&mut raw, &slots_of(&cluster, victim)).await;
    assert!(!moved.is_empty());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let calls_before = seen.calls.load(SeqCst);
    cluster.kill(victim);
    let killed = Instant::now();
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.wait_until_ready(Duration::from_secs(30));
        cluster
    })
    .await
    .unwrap();
    let failed_over = killed.elapsed();
    assert!(!cluster.masters().contains(&victim));
    // Load goes on over the new master for a while.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let resumed = loop {
        if all_hit(&cache, &db, &moved).await {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "caching never resumed on the new master"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stats = cache.stats();
    eprintln!(
        "failover in {failed_over:?}, rows of the dead master cached again {resumed:?} after the kill; \
         {seen:?}; {stats:?}"
    );
    assert!(
        seen.calls.load(SeqCst) > calls_before,
        "calls went on after the kill"
    );
    assert_eq!(seen.errors.load(SeqCst), 0, "callers saw errors");
    assert_eq!(seen.stale.load(SeqCst), 0, "callers saw stale values");
    assert!(seen.acknowledged.load(SeqCst) > 0);
    assert!(stats.hits > 0);
}

/// 2000 slots move from one master to another (`redis-cli --cluster reshard`, keys migrated
/// with them) under load: commands meet `MOVED` and `ASK` and follow them. No caller sees an
/// error or a value older than an acknowledged write, and rows of the moved slots are cached on
/// their new master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_resharded_under_load_move_without_errors_or_stale_values() {
    let cluster = RedisCluster::start();
    let mut raw = cluster.connection().await;
    let cache = cluster_cache(&cluster, "", Duration::from_millis(100)).await;
    let db = Arc::new(Rows::default());
    let (stop, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(Seen::default()));
    let tasks = load(&cache, &db, &stop, &seen);

    let masters = cluster.masters();
    let (from, to) = (masters[0], masters[1]);
    let id = |port: u16| {
        redis_cli(&["-p", &port.to_string(), "cluster", "myid"])
            .trim()
            .to_owned()
    };
    let before = slots_of(&cluster, from);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls_before = seen.calls.load(SeqCst);
    let (from_id, to_id) = (id(from), id(to));
    tokio::task::spawn_blocking(move || {
        redis_cli(&[
            "--cluster",
            "reshard",
            &format!("127.0.0.1:{from}"),
            "--cluster-from",
            &from_id,
            "--cluster-to",
            &to_id,
            "--cluster-slots",
            "2000",
            "--cluster-yes",
        ])
    })
    .await
    .unwrap();
    let calls_during = seen.calls.load(SeqCst) - calls_before;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let after = slots_of(&cluster, from);
    let moved_ranges: Vec<(u16, u16)> = before
        .iter()
        .flat_map(|&(low, high)| low..=high)
        .filter(|slot| {
            !after
                .iter()
                .any(|(low, high)| (*low..=*high).contains(slot))
        })
        .map(|slot| (slot, slot))
        .collect();
    assert_eq!(moved_ranges.len(), 2000, "2000 slots moved");
    let moved = rows_in(&mut raw, &moved_ranges).await;
    assert!(!moved.is_empty());
    assert!(
        all_hit(&cache, &db, &moved).await,
        "rows of the moved slots are cached"
    );
    let stats = cache.stats();
    eprintln!("{calls_during} calls during the resharding; {seen:?}; {stats:?}");
    assert!(calls_during > 0, "calls went on during the resharding");
    assert_eq!(seen.errors.load(SeqCst), 0, "callers saw errors");
    assert_eq!(seen.stale.load(SeqCst), 0, "callers saw stale values");
    assert!(seen.acknowledged.load(SeqCst) > 0);
}

//! The load the failover tests run: 16 readers and one writer on a table of versioned rows,
//! counting the calls, the errors and the stale values callers saw. Shared by the cluster and
//! Sentinel tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cachemacro_runtime::{cached, Cache};

/// The database stand-in: a version per row and a count of reads.
#[derive(Default)]
pub struct Rows {
    rows: Mutex<HashMap<String, u64>>,
    reads: AtomicUsize,
}

impl Rows {
    /// Bumps the version of row `id`, and returns it.
    pub fn write(&self, id: &str) -> u64 {
        let mut rows = self.rows.lock().unwrap();
        let version = rows.entry(id.to_owned()).or_insert(0);
        *version += 1;
        *version
    }

    pub fn read(&self, id: &str) -> u64 {
        self.reads.fetch_add(1, SeqCst);
        *self.rows.lock().unwrap().get(id).unwrap_or(&0)
    }

    pub fn reads(&self) -> usize {
        self.reads.load(SeqCst)
    }
}

/// An error a row never returns: a call that returns one saw the cache fail it.
#[derive(Debug, PartialEq)]
pub struct Unavailable;

/// Rows read under load; a write bumps a row's version.
pub const ROWS: u64 = 200;
/// Tags: each row carries `group:<id % GROUPS>`.
pub const GROUPS: u64 = 10;

#[cached(ttl = 60, key = "row:<id>", tags = ["group:<group>"], cache = cache)]
pub async fn row(cache: &Cache, db: &Rows, id: &str, group: &str) -> Result<u64, Unavailable> {
    Ok(db.read(id))
}

/// Whether each of `rows` is served from the cache: a call after a filling call runs no load.
pub async fn all_hit(cache: &Cache, db: &Rows, rows: &[u64]) -> bool {
    for &id in rows {
        let (id, group) = (id.to_string(), (id % GROUPS).to_string());
        let _ = row(cache, db, &id, &group).await;
        let reads = db.reads();
        let _ = row(cache, db, &id, &group).await;
        if db.reads() != reads {
            return false;
        }
    }
    true
}

/// What a load run saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Calls that returned.
    pub calls: AtomicU64,
    /// Calls that returned an error: none may.
    pub errors: AtomicU64,
    /// Calls that returned an older version than a write whose invalidation had returned before
    /// they started: none may.
    pub stale: AtomicU64,
    /// Writes whose invalidation returned `Ok`.
    pub acknowledged: AtomicU64,
    /// Writes whose invalidation failed (queued for replay, so not acknowledged).
    pub unacknowledged: AtomicU64,
}

/// Runs 16 readers and one writer until `stop` is set. A reader takes the highest version
/// acknowledged for a row before its call starts, and counts a call that returns less as stale.
/// The writer bumps a row's version in the database, then invalidates the row's key (even
/// writes) or its group's tag (odd writes); once that returns `Ok`, the version is acknowledged.
pub fn load(
    cache: &Cache,
    db: &Arc<Rows>,
    stop: &Arc<AtomicBool>,
    seen: &Arc<Seen>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let acknowledged: Arc<Vec<AtomicU64>> =
        Arc::new((0..ROWS).map(|_| AtomicU64::new(0)).collect());
    let mut tasks = Vec::new();
    for reader in 0..16u64 {
        let (cache, db, stop, seen) = (
            cache.clone(),
            Arc::clone(db),
            Arc::clone(stop),
            Arc::clone(seen),
        );
        let acknowledged = Arc::clone(&acknowledged);
        tasks.push(tokio::spawn(async move {
            let mut next = reader;
            while !stop.load(SeqCst) {
                next = (next * 31 + 17) % ROWS;
                let floor = acknowledged[next as usize].load(SeqCst);
                let id = next.to_string();
                let group = (next % GROUPS).to_string();
                match row(&cache, &db, &id, &group).await {
                    Ok(version) if version < floor => {
                        seen.stale.fetch_add(1, SeqCst);
                    }
                    Ok(_) => {}
                    Err(Unavailable) => {
                        seen.errors.fetch_add(1, SeqCst);
                    }
                }
                seen.calls.fetch_add(1, SeqCst);
                // A call that skips the cache (breaker open) never suspends: let the rest run.
                tokio::task::yield_now().await;
            }
        }));
    }
    let (cache, db, stop, seen) = (
        cache.clone(),
        Arc::clone(db),
        Arc::clone(stop),
        Arc::clone(seen),
    );
    tasks.push(tokio::spawn(async move {
        let mut write = 0u64;
        while !stop.load(SeqCst) {
            write += 1;
            let row = (write * 7) % ROWS;
            let id = row.to_string();
            let group = (row % GROUPS).to_string();
            let version = db.write(&id);
            let invalidated = if write & 1 == 0 {
                invalidate_row(&cache, &db, &id, &group).await
            } else {
                cache.invalidate_tag(&format!("group:{group}")).await
            };
            match invalidated {
                Ok(()) => {
                    acknowledged[row as usize].fetch_max(version, SeqCst);
                    seen.acknowledged.fetch_add(1, SeqCst);
                }
                Err(_) => {
                    seen.unacknowledged.fetch_add(1, SeqCst);
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }));
    tasks
}

//! Tag invalidation at scale, and what tags cost a hit.
//!
//! ```text
//! cargo bench --bench tags
//! ```
//!
//! 1. 100,000 entries carrying one tag are written through `#[cache_put]` to a private
//!    `redis-server`; `invalidate_tag` then invalidates them all. Reported: its wall time and the
//!    commands it took (from the server's own counters): one, whatever the number of entries.
//! 2. Hits through two `#[cached]` functions returning the same value, one with two tags and
//!    one without, 64 tasks on one Tokio worker: calls per second and their ratio.
//!
//! Under `cargo test --benches` it runs with 2,000 entries and short loops, as a smoke test, and
//! prints no figures.

use std::time::Instant;

use cachemacro_runtime::{cache_put, cached, Cache};
use cachemacro_tests::bench::{client_runtime, measuring, redis_cache, smoke_test_done};
use cachemacro_tests::RedisServer;

#[cache_put(ttl = "1h", key = "item:<id>", tags = ["catalog"], cache = cache)]
async fn save_item(cache: &Cache, id: u64) -> u64 {
    id
}

#[cached(ttl = "1h", key = "plain:<id>", cache = cache)]
async fn read_untagged(cache: &Cache, id: u64) -> Vec<u64> {
    vec![id; 16]
}

#[cached(ttl = "1h", key = "tagged:<id>", tags = ["owner:<id>", "catalog-reads"], cache = cache)]
async fn read_tagged(cache: &Cache, id: u64) -> Vec<u64> {
    vec![id; 16]
}

async fn commands_processed(connection: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(connection)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("total_commands_processed:"))
        .and_then(|count| count.trim().parse().ok())
        .expect("INFO stats has total_commands_processed")
}

async fn fill(cache: &Cache, entries: u64) {
    let writers: Vec<_> = (0..64)
        .map(|writer| {
            let cache = cache.clone();
            tokio::spawn(async move {
                for id in (writer..entries).step_by(64) {
                    save_item(&cache, id).await;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
}

async fn hits_per_second(cache: &Cache, tagged: bool, calls_per_task: u64) -> f64 {
    let started = Instant::now();
    let readers: Vec<_> = (0..64)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move {
                for _ in 0..calls_per_task {
                    let value = if tagged {
                        read_tagged(&cache, 1).await
                    } else {
                        read_untagged(&cache, 1).await
                    };
                    assert_eq!(value.len(), 16);
                }
            })
        })
        .collect();
    for reader in readers {
        reader.await.unwrap();
    }
    (64 * calls_per_task) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let measuring = measuring();
    let (entries, calls_per_task, rounds) = if measuring {
        (100_000, 2_000, 5)
    } else {
        (2_000, 20, 1)
    };
    let runtime = client_runtime();
    let server = RedisServer::start();
    runtime.block_on(async {
        let cache = redis_cache(&server.url()).await;
        let mut raw = server.connection().await;

        fill(&cache, entries).await;
        let sample = ["item:0".to_owned(), format!("item:{}", entries - 1)];
        for key in &sample {
            assert!(cache.get::<u64>(key).await.unwrap().is_some());
        }
        let commands_before = commands_processed(&mut raw).await;
        let started = Instant::now();
        cache.invalidate_tag("catalog").await.unwrap();
        let took = started.elapsed();
        // The INFO call itself is one command.
        let commands = commands_processed(&mut raw).await - commands_before - 1;
        assert_eq!(commands, 1, "one DEL of the tag's epoch");
        for key in &sample {
            assert!(
                cache.get::<u64>(key).await.unwrap().is_none(),
                "{key} is invalidated"
            );
        }
        if measuring {
            println!("invalidate_tag over {entries} keys: {took:.1?}, {commands} command");
        }

        read_untagged(&cache, 1).await;
        read_tagged(&cache, 1).await;
        let mut ratios = Vec::new();
        for _ in 0..rounds {
            let untagged = hits_per_second(&cache, false, calls_per_task).await;
            let tagged = hits_per_second(&cache, true, calls_per_task).await;
            ratios.push(tagged / untagged);
            if measuring {
                println!(
                    "hit with two tags: {tagged:.0}/s, without: {untagged:.0}/s, ratio {:.3}",
                    tagged / untagged
                );
            }
        }
        assert_eq!(cache.stats().loads, 2, "every measured call was a hit");
        if !measuring {
            smoke_test_done("tags");
            return;
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "median ratio tagged / untagged over {rounds} rounds: {:.3}",
            ratios[ratios.len() / 2]
        );
    });
}

//! A hit is one round trip, and its commands are counted by the server itself (`INFO
//! commandstats`): one `GET` for a plain function, one `GETEX` for a sliding one, and for a tagged
//! one a `GET` of the entry and one of each tag's epoch, pipelined (the epochs live in other hash
//! slots than the entry, so no single command may read them all on Redis Cluster). The fill guard
//! costs the miss path, never the hit.

use std::collections::BTreeMap;

use cachemacro_runtime::{cached, Cache};
use cachemacro_tests::RedisServer;

#[cached(ttl = "1h", key = "plain:<id>", cache = cache)]
async fn plain(cache: &Cache, id: u64) -> u64 {
    id
}

#[cached(ttl = "1h", key = "tagged:<id>", tags = ["owner:<id>", "all"], cache = cache)]
async fn tagged(cache: &Cache, id: u64) -> u64 {
    id
}

#[cached(ttl = "1h", key = "sliding:<id>", sliding = true, cache = cache)]
async fn sliding(cache: &Cache, id: u64) -> u64 {
    id
}

/// Calls per command since the last reset, without the `INFO` and `CONFIG` of the test itself.
async fn commands(raw: &mut redis::aio::MultiplexedConnection) -> BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(raw)
        .await
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats
                .strip_prefix("calls=")?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .filter(|(name, _)| name != "info" && !name.starts_with("config"))
        .collect()
}

async fn reset(raw: &mut redis::aio::MultiplexedConnection) {
    let () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(raw)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_hit_is_one_command() {
    const HITS: u64 = 50;
    let server = RedisServer::start();
    let cache = Cache::redis(&server.url()).await.unwrap();
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();

    for (name, command, per_hit) in [
        ("plain", "get", 1),
        ("tagged", "get", 3),
        ("sliding", "getex", 1),
    ] {
        let cache = &cache;
        let call = |id| async move {
            match name {
                "plain" => plain(cache, id).await,
                "tagged" => tagged(cache, id).await,
                _ => sliding(cache, id).await,
            }
        };
        assert_eq!(call(7).await, 7, "the miss that fills the entry");
        reset(&mut raw).await;
        let hits_before = cache.stats().hits;
        for _ in 0..HITS {
            assert_eq!(call(7).await, 7);
        }
        assert_eq!(
            cache.stats().hits - hits_before,
            HITS,
            "{name}: every call hit"
        );
        let counted = commands(&mut raw).await;
        assert_eq!(
            counted,
            BTreeMap::from([(command.to_owned(), per_hit * HITS)]),
            "{name}: {per_hit} {command} per hit and nothing else"
        );
    }
}

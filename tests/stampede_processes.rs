//! The fill lock across real processes: this test binary starts copies of itself as workers, all
//! on one `redis-server`, and counts the loads in Redis.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cachemacro_runtime::{cached, Cache};
use cachemacro_tests::redis_server::connect;
use cachemacro_tests::RedisServer;

const ROLE: &str = "CACHEMACRO_WORKER_ROLE";
const URL: &str = "CACHEMACRO_WORKER_REDIS_URL";
const LOAD_COUNTER: &str = "test:loads";

/// The database stand-in: counts each load in Redis, where every process sees it.
async fn load_report(redis_url: &str, id: u64, load_time: Duration) -> Result<String, String> {
    let mut connection = connect(redis_url).await;
    let _: u64 = redis::cmd("INCR")
        .arg(LOAD_COUNTER)
        .query_async(&mut connection)
        .await
        .map_err(|e| e.to_string())?;
    tokio::time::sleep(load_time).await;
    Ok(format!("report {id}"))
}

#[cached(ttl = 60, key = "report:<id>", cache = cache, lock_timeout = "10s")]
async fn report(cache: &Cache, redis_url: &str, id: u64) -> Result<String, String> {
    load_report(redis_url, id, Duration::from_millis(200)).await
}

#[cached(ttl = 60, key = "report:<id>", cache = cache, lock_timeout = "2s")]
async fn report_with_short_lock(
    cache: &Cache,
    redis_url: &str,
    hang: bool,
    id: u64,
) -> Result<String, String> {
    let load_time = if hang {
        Duration::from_secs(3600)
    } else {
        Duration::from_millis(10)
    };
    load_report(redis_url, id, load_time).await
}

/// The body of a worker process; a no-op unless a test started this binary as one.
#[tokio::test]
#[ignore = "entry point of the worker processes that the other tests start"]
async fn worker() {
    let (Ok(role), Ok(url)) = (std::env::var(ROLE), std::env::var(URL)) else {
        return;
    };
    let cache = patient_cache(&url).await;
    match role.as_str() {
        "stampede" => {
            let callers: Vec<_> = (0..100)
                .map(|_| {
                    let (cache, url) = (cache.clone(), url.clone());
                    tokio::spawn(async move { report(&cache, &url, 1).await })
                })
                .collect();
            for caller in callers {
                assert_eq!(caller.await.unwrap(), Ok("report 1".to_owned()));
            }
        }
        "hang" => {
            report_with_short_lock(&cache, &url, true, 2).await.unwrap();
            unreachable!("the hanging load is killed before it returns");
        }
        other => panic!("unknown worker role {other}"),
    }
}

/// A cache whose commands may take long on a busy test machine: these tests count loads, and a
/// timed-out read would add one.
async fn patient_cache(url: &str) -> Cache {
    Cache::builder()
        .operation_timeout(Duration::from_secs(2))
        .redis(url)
        .await
        .unwrap()
}

fn start_worker(role: &str, url: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "worker",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(ROLE, role)
        .env(URL, url)
        .stdout(Stdio::null())
        .spawn()
        .expect("the test binary starts as a worker")
}

async fn loads_counted(url: &str) -> u64 {
    let mut connection = connect(url).await;
    let count: Option<u64> = redis::cmd("GET")
        .arg(LOAD_COUNTER)
        .query_async(&mut connection)
        .await
        .unwrap();
    count.unwrap_or(0)
}

#[tokio::test]
async fn four_processes_of_a_hundred_callers_load_once() {
    let server = RedisServer::start();
    let workers: Vec<Child> = (0..4)
        .map(|_| start_worker("stampede", &server.url()))
        .collect();
    for mut worker in workers {
        assert!(worker.wait().unwrap().success(), "a worker failed");
    }
    assert_eq!(loads_counted(&server.url()).await, 1);
}

#[tokio::test]
async fn a_lock_holder_killed_mid_load_is_taken_over() {
    let server = RedisServer::start();
    let url = server.url();
    let mut holder = start_worker("hang", &url);
    // The holder counts its load once it holds the lock and is inside the loader.
    for _ in 0..500 {
        if loads_counted(&url).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(loads_counted(&url).await, 1, "the holder started loading");
    holder.kill().unwrap();
    holder.wait().unwrap();

    let cache = patient_cache(&url).await;
    let value = report_with_short_lock(&cache, &url, false, 2).await;
    assert_eq!(value, Ok("report 2".to_owned()), "no caller gets an error");
    assert_eq!(
        loads_counted(&url).await,
        2,
        "this process completed the load"
    );
    let stats = cache.stats();
    assert_eq!((stats.lock_waits, stats.loads, stats.errors), (1, 1, 0));
}

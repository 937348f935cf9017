//! Credentials in a Redis URL, a `requirepass` password or an ACL user's: the cache
//! authenticates with them, a wrong one costs no error to callers, and the secret shows up in no
//! `Debug` or `Display` of the cache or its errors, nor in any log line.

#[path = "common/logs.rs"]
mod logs;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use cachemacro_runtime::backend::RedisBackend;
use cachemacro_runtime::{cached, Cache};
use cachemacro_tests::RedisServer;
use logs::CapturedLogs;

const PASSWORD: &str = "requirepass-secret-4f1c";
const WRONG_PASSWORD: &str = "wrong-secret-9d2e";
const ACL_SECRET: &str = "app-secret";
const WRONG_ACL_SECRET: &str = "app-wrong-secret";

#[cached(ttl = 60, key = "square:<n>", cache = cache)]
async fn square(cache: &Cache, loads: &AtomicUsize, n: u64) -> u64 {
    loads.fetch_add(1, SeqCst);
    n * n
}

async fn cache_for(url: &str) -> Cache {
    Cache::builder()
        .operation_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(2))
        .redis(url)
        .await
        .expect("a well-formed URL is accepted")
}

/// Calls `square(3)` twice on `cache`: both answer, and the second is a hit.
async fn assert_second_call_hits(cache: &Cache) {
    let loads = AtomicUsize::new(0);
    assert_eq!(square(cache, &loads, 3).await, 9);
    assert_eq!(square(cache, &loads, 3).await, 9);
    assert_eq!(
        loads.load(SeqCst),
        1,
        "the second call was not served from Redis"
    );
    assert_eq!(cache.stats().hits, 1);
    assert_eq!(cache.stats().errors, 0);
}

/// Calls `square(3)` twice on `cache`, which cannot authenticate: both answer from the loader.
/// Returns what a caller could print of the cache and of the error of a direct read.
async fn assert_calls_load_without_errors(cache: &Cache) -> String {
    let loads = AtomicUsize::new(0);
    assert_eq!(square(cache, &loads, 3).await, 9);
    assert_eq!(square(cache, &loads, 3).await, 9);
    assert_eq!(loads.load(SeqCst), 2, "without the cache every call loads");
    assert!(cache.stats().errors > 0, "the failed reads are counted");
    let error = cache
        .get::<u64>("square:3")
        .await
        .expect_err("a read without authentication fails");
    format!("{cache:?} {:?} {error:?} {error}", cache.stats())
}

fn assert_hidden(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{secret:?} shown in: {text}");
    }
}

#[tokio::test]
async fn a_requirepass_password_authenticates_and_is_never_shown() {
    let logs = CapturedLogs::start();
    let server = RedisServer::start_with_password(PASSWORD);
    let url = server.url();
    assert!(url.contains(PASSWORD));

    let cache = cache_for(&url).await;
    assert_second_call_hits(&cache).await;
    let backend = RedisBackend::new(&url, Duration::from_secs(1), Duration::from_secs(1))
        .expect("a well-formed URL");
    let mut shown = format!("{cache:?} {:?} {backend:?}", cache.stats());

    let before_wrong_password = logs.len();
    let wrong = cache_for(&url.replace(PASSWORD, WRONG_PASSWORD)).await;
    shown += &assert_calls_load_without_errors(&wrong).await;
    assert!(
        logs.len() > before_wrong_password,
        "the failed reads were not logged, so the log check below would prove nothing"
    );

    let malformed = format!("redis://:{PASSWORD}@127.0.0.1:not-a-port/");
    let error = Cache::redis(&malformed)
        .await
        .expect_err("a malformed URL is an error");
    shown += &format!("{error:?} {error}");

    assert_hidden(&shown, &[PASSWORD, WRONG_PASSWORD]);
    assert_hidden(&logs.text(), &[PASSWORD, WRONG_PASSWORD]);
}

#[tokio::test]
async fn an_acl_user_authenticates_and_its_secret_is_never_shown() {
    let logs = CapturedLogs::start();
    let server = RedisServer::start();
    let mut admin = server.connection().await;
    let () = redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "app",
            "on",
            &format!(">{ACL_SECRET}"),
            "~*",
            "&*",
            "+@all",
        ])
        .query_async(&mut admin)
        .await
        .expect("ACL SETUSER");
    // Without the default user, only a connection that authenticates as `app` gets an answer.
    let () = redis::cmd("ACL")
        .arg(&["SETUSER", "default", "off"])
        .query_async(&mut admin)
        .await
        .expect("ACL SETUSER default off");

    let url = format!("redis://app:{ACL_SECRET}@127.0.0.1:{}/", server.port());
    let cache = cache_for(&url).await;
    assert_second_call_hits(&cache).await;
    let mut shown = format!("{cache:?} {:?}", cache.stats());

    let before_wrong_secret = logs.len();
    let wrong = cache_for(&url.replace(ACL_SECRET, WRONG_ACL_SECRET)).await;
    shown += &assert_calls_load_without_errors(&wrong).await;
    assert!(
        logs.len() > before_wrong_secret,
        "the failed reads were not logged"
    );

    assert_hidden(&shown, &[ACL_SECRET, WRONG_ACL_SECRET]);
    assert_hidden(&logs.text(), &[ACL_SECRET, WRONG_ACL_SECRET]);
}

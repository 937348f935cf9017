use std::rc::Rc;

use cachemacro_runtime::{cached, Cache};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    region: String,
    id: u64,
}

// Owned arguments and refreshing on: refreshes run in a background task.
#[cached(
    ttl = "1s500ms",
    key = "report:<region>:<id>",
    lock = true,
    lock_timeout = "250ms",
    early_refresh = true,
    beta = 1.5,
    stale = "10m"
)]
pub async fn report(region: String, id: u64) -> Result<Report, String> {
    Ok(Report { region, id })
}

/// Deliberately not `Clone`: a failed load is then not shared with the callers that waited.
#[derive(Debug)]
pub struct DbError;

#[cached(ttl = "250ms", lock = false, beta = 2, stale = "1m")]
pub async fn count(table: String) -> Result<u64, DbError> {
    u64::try_from(table.len()).map_err(|_| DbError)
}

// Early refresh off and no stale window: the body never outlives its caller, so it need not be
// `Send`.
#[cached(ttl = 60, early_refresh = false)]
pub async fn local(id: u64) -> u64 {
    let counter = Rc::new(id);
    std::future::ready(()).await;
    *counter
}

#[cached(ttl = "5m", negative_ttl = "500ms", stale = "30s", lock_timeout = 2)]
pub async fn lookup(id: u64) -> Option<u64> {
    (id % 2 == 0).then_some(id)
}

pub struct Repo {
    cache: Cache,
    tenant: String,
}

impl Repo {
    // A borrowing method: refreshes run in the task of the caller that drew them.
    #[cached(
        cache = self.cache,
        key = "<self.tenant>:<id>",
        ttl = "100ms",
        lock_timeout = "1s",
        beta = 0.5,
        stale = "2s"
    )]
    pub async fn name(&self, id: u64) -> Result<String, DbError> {
        Ok(format!("{}:{id}", self.tenant))
    }

    #[cached(cache = self.cache, key = "plain:<id>", lock = false, early_refresh = false)]
    pub async fn plain(&self, id: u64) -> u64 {
        id + self.tenant.len() as u64
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let expected = Report {
        region: String::from("eu"),
        id: 7,
    };
    for _ in 0..2 {
        assert_eq!(report(String::from("eu"), 7).await, Ok(expected.clone()));
        assert_eq!(count(String::from("users")).await.unwrap(), 5);
        assert_eq!(local(3).await, 3);
        assert_eq!(lookup(4).await, Some(4));
        assert_eq!(lookup(5).await, None);
    }
    let repo = Repo {
        cache: Cache::memory(),
        tenant: String::from("acme"),
    };
    assert_eq!(repo.name(1).await.unwrap(), "acme:1");
    assert_eq!(repo.name(1).await.unwrap(), "acme:1");
    assert_eq!(repo.plain(1).await, 5);
}

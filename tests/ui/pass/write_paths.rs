use cachemacro_runtime::{cache_invalidate, cache_put, cached, Cache};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    id: u64,
    org: u64,
    name: String,
}

static LOADS: AtomicU64 = AtomicU64::new(0);

#[cached(key = "user:<id>", tags = ["org:<org>"])]
pub async fn get_user(id: u64, org: u64) -> Result<User, String> {
    LOADS.fetch_add(1, SeqCst);
    Ok(User {
        id,
        org,
        name: "loaded".into(),
    })
}

// The body moves `user`: the key and the tags are rendered before it runs.
#[cache_put(key = "user:<user.id>", ttl = "1h", tags = ["org:<user.org>"])]
pub async fn save_user(user: User) -> Result<User, String> {
    Ok(user)
}

#[cache_put(key = "user:<id>")]
pub async fn failing_save(id: u64) -> Result<User, String> {
    Err(format!("cannot save {id}"))
}

#[cache_invalidate(keys = ["user:<id>"])]
pub async fn delete_user(id: u64) -> Result<(), String> {
    let _ = id;
    Ok(())
}

#[cache_invalidate(tags = ["org:<org>"])]
pub async fn rename_org(org: u64) {
    let _ = org;
}

pub struct Counters {
    cache: Cache,
    name: String,
    value: u64,
}

impl Counters {
    #[cached(cache = self.cache, key = "count:<self.name>")]
    pub async fn get(&self) -> u64 {
        self.value
    }

    #[cache_put(cache = self.cache, key = "count:<self.name>", tags = ["counters"])]
    pub async fn set(&mut self, value: u64) -> u64 {
        self.value = value;
        value
    }

    #[cache_invalidate(cache = self.cache, keys = ["count:<self.name>"], tags = ["counters"])]
    pub async fn reset(&mut self) -> Option<u64> {
        self.value = 0;
        None
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let user = User {
        id: 1,
        org: 9,
        name: "saved".into(),
    };
    assert_eq!(save_user(user.clone()).await, Ok(user.clone()));
    assert_eq!(get_user(1, 9).await, Ok(user.clone()));
    assert_eq!(LOADS.load(SeqCst), 0, "the write went through to the cache");

    assert!(failing_save(1).await.is_err());
    assert_eq!(get_user(1, 9).await.unwrap().name, "loaded");
    assert_eq!(LOADS.load(SeqCst), 1, "a failed write removes the key");

    delete_user(1).await.unwrap();
    get_user(1, 9).await.unwrap();
    assert_eq!(LOADS.load(SeqCst), 2);

    rename_org(9).await;
    get_user(1, 9).await.unwrap();
    assert_eq!(LOADS.load(SeqCst), 3, "the tag removed the entry");

    let mut counters = Counters {
        cache: Cache::memory(),
        name: "hits".into(),
        value: 1,
    };
    assert_eq!(counters.get().await, 1);
    assert_eq!(counters.set(5).await, 5);
    assert_eq!(counters.get().await, 5);
    assert_eq!(counters.reset().await, None);
    assert_eq!(counters.get().await, 0);
}

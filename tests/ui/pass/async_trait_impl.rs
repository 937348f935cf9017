use async_trait::async_trait;
use cachemacro_runtime::{cache_invalidate, cache_put, cached, Cache};

#[async_trait]
pub trait Repo {
    async fn get(&self, id: u64) -> Option<String>;
    async fn count(&self) -> Result<u64, String>;
    async fn bump(&mut self, by: u64) -> u64;
    async fn put(&self, id: u64) -> Option<String>;
    async fn remove(&mut self, id: u64) -> Result<(), String>;
}

pub struct Db {
    cache: Cache,
    rows: u64,
}

#[async_trait]
impl Repo for Db {
    #[cached(ttl = 60, key = "repo:<id>")]
    async fn get(&self, id: u64) -> Option<String> {
        (id < self.rows).then(|| id.to_string())
    }

    #[cached(cache = self.cache)]
    async fn count(&self) -> Result<u64, String> {
        Ok(self.rows)
    }

    #[cached(key = "bump:<by>:<self.rows>")]
    async fn bump(&mut self, by: u64) -> u64 {
        self.rows += by;
        self.rows
    }

    #[cache_put(key = "repo:<id>", ttl = 60)]
    async fn put(&self, id: u64) -> Option<String> {
        Some(format!("put {id}"))
    }

    #[cache_invalidate(keys = ["repo:<id>"])]
    async fn remove(&mut self, id: u64) -> Result<(), String> {
        self.rows -= id;
        Ok(())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut db = Db {
        cache: Cache::memory(),
        rows: 2,
    };
    assert_eq!(db.get(1).await, Some(String::from("1")));
    assert_eq!(db.get(5).await, None);
    assert_eq!(db.count().await, Ok(2));
    assert_eq!(db.bump(1).await, 3);
    assert_eq!(db.put(1).await, Some(String::from("put 1")));
    assert_eq!(db.get(1).await, Some(String::from("put 1")));
    assert_eq!(db.remove(1).await, Ok(()));
    assert_eq!(db.get(1).await, Some(String::from("1")));
}

use cachemacro_runtime::{cache_invalidate, cache_put, cached, Cache};

// A trait implemented with plain `async fn`: `companions = false` leaves out what the impl
// cannot hold. The write paths add nothing to the impl.
trait Repo {
    async fn name(&self, id: u64) -> Option<String>;
    async fn bump(&mut self, by: u64) -> u64;
    async fn rename(&self, id: u64) -> Option<String>;
    async fn forget(&self, id: u64) -> Result<(), String>;
}

pub struct Db {
    cache: Cache,
    rows: u64,
}

impl Repo for Db {
    #[cached(cache = self.cache, key = "name:<id>", companions = false)]
    async fn name(&self, id: u64) -> Option<String> {
        Some(format!("{id}/{}", self.rows))
    }

    #[cached(cache = self.cache, key = "bump:<by>", companions = false)]
    async fn bump(&mut self, by: u64) -> u64 {
        self.rows += by;
        self.rows
    }

    #[cache_put(cache = self.cache, key = "name:<id>")]
    async fn rename(&self, id: u64) -> Option<String> {
        Some(format!("renamed {id}"))
    }

    #[cache_invalidate(cache = self.cache, keys = ["name:<id>"])]
    async fn forget(&self, id: u64) -> Result<(), String> {
        let _ = id;
        Ok(())
    }
}

// Companions of a method with a default body in a trait definition are provided methods.
trait Defaults {
    #[cached(key = "defaults:<id>")]
    async fn load(&self, id: u64) -> u64 {
        id
    }
}

impl Defaults for Db {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut db = Db {
        cache: Cache::memory(),
        rows: 1,
    };
    assert_eq!(db.name(7).await.as_deref(), Some("7/1"));
    assert_eq!(db.bump(2).await, 3);
    assert_eq!(db.name(7).await.as_deref(), Some("7/1"));
    assert_eq!(db.rename(7).await.as_deref(), Some("renamed 7"));
    assert_eq!(db.name(7).await.as_deref(), Some("renamed 7"));
    db.forget(7).await.unwrap();
    assert_eq!(db.name(7).await.as_deref(), Some("7/3"));
    assert_eq!(db.load(5).await, 5);
    db.invalidate_load(5).await.unwrap();
    assert_eq!(db.refresh_load(5).await, 5);
}

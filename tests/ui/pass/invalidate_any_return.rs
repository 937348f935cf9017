//! An invalidation stores nothing: its function may return what cannot be cached.
use cachemacro_runtime::{cache_invalidate, cached, Cache};

/// Neither `Serialize` nor `Deserialize`.
#[derive(Debug, PartialEq)]
pub struct Receipt(u64);

#[cached(cache = cache, key = "row:<id>")]
pub async fn row(cache: &Cache, id: u64) -> u64 {
    id
}

#[cache_invalidate(cache = cache, keys = ["row:<id>"])]
pub async fn delete(cache: &Cache, id: u64) -> Receipt {
    Receipt(id)
}

#[cache_invalidate(cache = cache, keys = ["row:<id>"])]
pub async fn try_delete(cache: &Cache, id: u64) -> Result<Receipt, String> {
    Ok(Receipt(id))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::memory();
    row(&cache, 1).await;
    assert_eq!(delete(&cache, 1).await, Receipt(1));
    assert_eq!(cache.get::<u64>("row:1").await.unwrap(), None);
    row(&cache, 2).await;
    assert_eq!(try_delete(&cache, 2).await, Ok(Receipt(2)));
    assert_eq!(cache.get::<u64>("row:2").await.unwrap(), None);
}

use std::sync::Arc;

use cachemacro_runtime::{cached, Cache};

#[cached(cache = cache)]
pub async fn by_ref(cache: &Cache, id: u64) -> u64 {
    id
}

#[cached(cache = cache, key = "shared:<id>")]
pub async fn by_arc(cache: Arc<Cache>, id: u64) -> u64 {
    id
}

#[cached(cache = caches[0])]
pub async fn by_index(caches: Vec<Cache>, id: u64) -> u64 {
    id
}

#[cached(cache = Cache::memory())]
pub async fn fresh(id: u64) -> u64 {
    id
}

fn main() {}

// The arguments that need no feature of the runtime.
use cachemacro_runtime::{cache_put, cached};

#[cached(codec = "json", compress = "none")]
pub async fn get(id: u64) -> u64 {
    id
}

#[cache_put(key = "row:<id>", codec = "json")]
pub async fn save(id: u64) -> u64 {
    id
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(get(1).await, 1);
    assert_eq!(save(2).await, 2);
}

use cachemacro_runtime::cached;

#[cached(ttl = 60, lock_timeout = "0ms")]
pub async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}

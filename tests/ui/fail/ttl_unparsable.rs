use cachemacro_runtime::cached;

#[cached(ttl = "30m1h")]
pub async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}

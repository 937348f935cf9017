use cachemacro_runtime::cached;

#[cached(ttl = 60, early_refresh = false, beta = 2.0)]
pub async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}

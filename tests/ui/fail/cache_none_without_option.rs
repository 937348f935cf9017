use cachemacro_runtime::cached;

#[cached(cache_none = false)]
pub async fn get(id: u64) -> Vec<u64> {
    vec![id]
}

fn main() {
    let _ = get(1);
}

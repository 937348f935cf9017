use cachemacro_runtime::cached;

#[cached(key = id * 2)]
pub async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}

use cachemacro_runtime::cached;

#[cached(name = "users get")]
pub async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}

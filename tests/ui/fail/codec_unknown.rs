use cachemacro_runtime::cached;

#[cached(codec = "bson")]
pub async fn get(id: u64) -> u64 {
    id
}

#[cached(codec = "msgpak")]
pub async fn near_miss(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
    let _ = near_miss(1);
}

use cachemacro_runtime::cached;

#[cached(ttl = 60, negative_ttl = 10)]
pub async fn get(id: u64) -> Result<u64, String> {
    Ok(id)
}

fn main() {
    let _ = get(1);
}

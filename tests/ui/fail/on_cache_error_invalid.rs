use cachemacro_runtime::cached;

#[cached(on_cache_error = "panic")]
pub async fn get(id: u64) -> Result<u64, String> {
    Ok(id)
}

fn main() {
    let _ = get(1);
}

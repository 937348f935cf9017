use cachemacro_runtime::cached;

// A plain return type has no error to return a failed cache operation through.
#[cached(on_cache_error = "fail")]
pub async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}

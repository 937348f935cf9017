use cachemacro_runtime::cache_put;

#[derive(Debug)]
pub struct DbError;

// `DbError` has no `From<cachemacro_runtime::Error>`, so the cache's error cannot become one.
#[cache_put(key = "user:<id>", on_cache_error = "fail")]
pub async fn save(id: u64) -> Result<u64, DbError> {
    Ok(id)
}

fn main() {
    let _ = save(1);
}

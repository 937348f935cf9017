use cachemacro_runtime::cache_invalidate;

// `ttl` belongs to `#[cached]` and `#[cache_put]`: an invalidation stores nothing.
#[cache_invalidate(keys = ["user:<id>"], ttl = 60)]
pub async fn delete(id: u64) -> Result<(), String> {
    let _ = id;
    Ok(())
}

fn main() {
    let _ = delete(1);
}

use cachemacro_runtime::cache_invalidate;

#[cache_invalidate(keys = ["product:<id>", "category:<category>"])]
pub async fn delete(id: u64) -> Result<(), String> {
    let _ = id;
    Ok(())
}

fn main() {
    let _ = delete(1);
}

use cachemacro_runtime::cached;

#[cached(unless = |name: &String| name.is_empty())]
pub async fn get(id: u64) -> Result<u64, String> {
    Ok(id)
}

fn main() {
    let _ = get(1);
}

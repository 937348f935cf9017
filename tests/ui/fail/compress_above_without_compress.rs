use cachemacro_runtime::cached;

#[cached(compress_above = "4KiB")]
pub async fn get(id: u64) -> u64 {
    id
}

#[cached(compress = "none", compress_above = "1MB")]
pub async fn bad_unit(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
    let _ = bad_unit(1);
}

// trybuild builds the ui cases against a runtime without its compression features.
use cachemacro_runtime::cache_put;

#[cache_put(key = "row:<id>", compress = "zstd")]
pub async fn save(id: u64) -> u64 {
    id
}

fn main() {
    let _ = save(1);
}

// trybuild builds the ui cases against a runtime without its codec features.
use cachemacro_runtime::cached;

#[cached(codec = "msgpack")]
pub async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}

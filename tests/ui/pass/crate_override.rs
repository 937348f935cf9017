mod reexport {
    pub use cachemacro_runtime;
}

use reexport::cachemacro_runtime::cached;

#[cached(crate = "crate::reexport::cachemacro_runtime", ttl = 10)]
pub async fn through_reexport(id: u64) -> u64 {
    id
}

fn main() {}

use cachemacro_runtime::cache_put;

// `keys` belongs to `#[cache_invalidate]`; `#[cache_put]` writes one `key`.
#[cache_put(keys = ["user:<id>"], ttl_profil = "users")]
pub async fn save(id: u64) -> u64 {
    id
}

fn main() {
    let _ = save(1);
}

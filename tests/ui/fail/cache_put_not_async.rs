use cachemacro_runtime::cache_put;

#[cache_put(key = "user:<id>")]
pub fn save(id: u64) -> u64 {
    id
}

fn main() {
    let _ = save(1);
}

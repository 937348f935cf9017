use cachemacro_runtime::cached;

// Nothing the attribute takes is spelled close to `expiry`: every argument is listed.
#[cached(expiry = 60)]
pub async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}

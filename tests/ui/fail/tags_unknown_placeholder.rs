use cachemacro_runtime::cached;

#[cached(key = "user:<id>", tags = ["users", "org:<org_id>"])]
pub async fn get(id: u64) -> u64 {
    id
}

fn main() {
    let _ = get(1);
}

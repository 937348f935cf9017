use cachemacro_runtime::cached;

#[cached(key = "user:<usr>")]
pub async fn get(id: u64, name: String) -> String {
    format!("{id}{name}")
}

fn main() {
    let _ = get(1, String::new());
}

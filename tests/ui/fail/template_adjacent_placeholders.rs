use cachemacro_runtime::cached;

#[cached(key = "<a>-<b>")]
pub async fn get(a: String, b: String) -> String {
    a + &b
}

fn main() {
    let _ = get(String::new(), String::new());
}

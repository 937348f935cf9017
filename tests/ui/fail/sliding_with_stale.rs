use cachemacro_runtime::cached;

#[cached(ttl = "30m", sliding = true, stale = "1h")]
pub async fn session(token: String) -> Option<String> {
    Some(token)
}

fn main() {
    let _ = session(String::new());
}

use cachemacro_runtime::cached;

// `%` starts every escape in a rendered value, so it cannot tell two values apart.
#[cached(key = "pct:<a>%<b>")]
async fn percent(a: String, b: String) -> String {
    a + &b
}

fn main() {}

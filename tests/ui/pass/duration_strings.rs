use cachemacro_runtime::cached;

#[cached(ttl = "90s")]
pub async fn seconds() -> u8 {
    1
}

#[cached(ttl = "5m")]
pub async fn minutes() -> u8 {
    2
}

#[cached(ttl = "1h")]
pub async fn hours() -> u8 {
    3
}

#[cached(ttl = "1d")]
pub async fn days() -> u8 {
    4
}

#[cached(ttl = "1h30m", negative_ttl = "1m")]
pub async fn combined() -> Option<u8> {
    Some(5)
}

#[cached(ttl = "2d12h30m15s")]
pub async fn every_unit() -> u8 {
    6
}

fn main() {}

use cachemacro_runtime::cached;

// Serializes, but a hit could not decode it.
#[derive(serde::Serialize)]
pub struct Report {
    pub total: u64,
}

#[cached(ttl = 60)]
pub async fn report(total: u64) -> Report {
    Report { total }
}

fn main() {}

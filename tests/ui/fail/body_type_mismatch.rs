use cachemacro_runtime::cached;

#[cached(key = "user:<id>")]
pub async fn name(id: u64) -> Result<String, std::io::Error> {
    Ok(id)
}

fn main() {}

use cachemacro_runtime::cached;
use serde::de::DeserializeOwned;
use serde::Serialize;

#[cached(key = "item:<id>")]
pub async fn load<T: Serialize + DeserializeOwned + Default + Send + 'static>(id: u64) -> T {
    let _ = id;
    T::default()
}

#[cached]
pub async fn find<T, K>(id: K) -> Option<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    K: std::fmt::Display,
{
    let _ = id;
    None
}

#[cached(key = "len:<name>")]
pub async fn length<'a>(name: &'a str) -> Result<usize, &'static str> {
    Ok(name.len())
}

fn main() {}

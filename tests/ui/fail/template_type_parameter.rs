use cachemacro_runtime::cached;

#[cached(key = "item:<T>:<id>")]
pub async fn item<T: Default + serde::Serialize + serde::de::DeserializeOwned + Send + 'static>(
    id: u64,
) -> T {
    let _ = id;
    T::default()
}

fn main() {
    let _ = item::<u64>(1);
}

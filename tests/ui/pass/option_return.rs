use cachemacro_runtime::cached;

#[cached(key = "row:<id>")]
pub async fn row(id: u64) -> Option<String> {
    (id == 1).then(|| String::from("one"))
}

#[cached(key = "short:<id>", negative_ttl = 5)]
pub async fn short_negative(id: u64) -> Option<u64> {
    Some(id)
}

#[cached(key = "never:<id>", cache_none = false)]
pub async fn never_cache_none(id: u64) -> core::option::Option<u64> {
    None.filter(|_: &u64| id > 0)
}

#[cached(key = "always:<id>", cache_none = true, negative_ttl = "2m")]
pub async fn always(id: u64) -> Option<Vec<u64>> {
    Some(vec![id])
}

fn main() {}

use cachemacro_runtime::{cache_invalidate, cache_put, cached};

#[derive(Debug)]
pub enum AppError {
    Cache(cachemacro_runtime::Error),
    NotFound,
}

impl From<cachemacro_runtime::Error> for AppError {
    fn from(error: cachemacro_runtime::Error) -> Self {
        AppError::Cache(error)
    }
}

#[cached(key = "user:<id>", on_cache_error = "fail")]
async fn get_user(id: u64) -> Result<String, AppError> {
    if id == 0 {
        return Err(AppError::NotFound);
    }
    Ok(format!("user {id}"))
}

#[cache_put(key = "user:<id>", on_cache_error = "fail")]
async fn save_user(id: u64, name: String) -> Result<String, AppError> {
    let _ = id;
    Ok(name)
}

#[cache_invalidate(keys = ["user:<id>"], on_cache_error = "fail")]
async fn delete_user(id: u64) -> Result<(), AppError> {
    let _ = id;
    Ok(())
}

// `"ignore"` keeps the default, and takes any return type.
#[cached(on_cache_error = "ignore")]
async fn answer() -> u64 {
    42
}

#[cache_invalidate(tags = ["users"], on_cache_error = "ignore")]
async fn touch() {}

struct Repo {
    cache: cachemacro_runtime::Cache,
}

impl Repo {
    #[cached(cache = self.cache, key = "name:<id>", on_cache_error = "fail")]
    async fn name(&self, id: u64) -> Result<String, AppError> {
        Ok(id.to_string())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(get_user(1).await.unwrap(), "user 1");
    assert!(matches!(get_user(0).await, Err(AppError::NotFound)));
    assert_eq!(save_user(1, String::from("Ada")).await.unwrap(), "Ada");
    assert_eq!(get_user(1).await.unwrap(), "Ada");
    delete_user(1).await.unwrap();
    assert_eq!(get_user(1).await.unwrap(), "user 1");
    assert_eq!(answer().await, 42);
    touch().await;
    let repo = Repo {
        cache: cachemacro_runtime::Cache::memory(),
    };
    assert_eq!(repo.name(7).await.unwrap(), "7");
}

use std::sync::atomic::{AtomicUsize, Ordering};

use cachemacro_runtime::cached;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    id: u64,
    name: String,
}

#[derive(Debug)]
pub struct DbError;

static LOADS: AtomicUsize = AtomicUsize::new(0);

/// Attributes and docs stay on the function.
#[cached(ttl = 3600, key = "user:<id>")]
#[must_use = "a user"]
pub async fn get_user(id: u64) -> Result<User, DbError> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    Ok(User {
        id,
        name: String::from("Ada"),
    })
}

#[cached]
async fn answer() -> u64 {
    42
}

#[cached(ttl = "5m")]
async fn greeting(name: String, times: usize) -> String {
    name.repeat(times)
}

#[cached(key = "io:<path>")]
async fn read(path: String) -> std::io::Result<Vec<u8>> {
    let _ = path;
    Ok(Vec::new())
}

impl From<std::num::ParseIntError> for DbError {
    fn from(_: std::num::ParseIntError) -> Self {
        DbError
    }
}

// `?` converts the error through `From`: the loader's type must be known for that.
#[cached(key = "parsed:<text>")]
async fn parse(text: String) -> Result<u64, DbError> {
    let value: u64 = text.parse()?;
    Ok(value * 2)
}

#[cached]
async fn unit(id: u64) {
    let _ = id;
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let first = get_user(1).await.unwrap();
    let second = get_user(1).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(LOADS.load(Ordering::SeqCst), 1);
    assert_eq!(answer().await, 42);
    assert_eq!(greeting(String::from("ab"), 2).await, "abab");
    assert!(read(String::from("/")).await.unwrap().is_empty());
    assert_eq!(parse(String::from("21")).await.unwrap(), 42);
    unit(1).await;
}

use std::borrow::Cow;

use cachemacro_runtime::{cache_put, cached};

pub struct Db {
    name: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct User {
    pub id: u64,
}

// A hit decodes a new value, which cannot borrow: even a `&'static str` cannot be decoded.
#[cached]
pub async fn label(id: u64) -> &'static str {
    if id == 0 {
        "zero"
    } else {
        "other"
    }
}

impl Db {
    #[cached(key = "name")]
    pub async fn name(&self) -> Option<&str> {
        Some(&self.name)
    }

    #[cached(key = "bytes")]
    pub async fn bytes(&self) -> Result<&[u8], String> {
        Ok(self.name.as_bytes())
    }
}

#[cached(key = "user:<id>")]
pub async fn user<'a>(id: u64, users: &'a [User]) -> Vec<&'a User> {
    users.iter().filter(|user| user.id == id).collect()
}

#[cached(key = "text:<text>")]
pub async fn text<'a>(text: &'a str) -> Cow<'a, str> {
    Cow::Borrowed(text)
}

#[cache_put(key = "put:<id>")]
pub async fn put(id: u64, db: &Db) -> &str {
    let _ = id;
    &db.name
}

fn main() {}

use cachemacro_runtime::{cache_put, cached};

pub struct User {
    pub id: u64,
}

// One error each, at the type the cache stores, instead of one per bound at the attribute.
#[cached]
pub async fn plain(id: u64) -> User {
    User { id }
}

#[cached(key = "user:<id>")]
pub async fn result(id: u64) -> Result<User, String> {
    Ok(User { id })
}

// A type of several tokens is pointed at by its first one.
#[cached(key = "users:<id>")]
pub async fn option(id: u64) -> Option<Vec<User>> {
    Some(vec![User { id }])
}

#[cache_put(key = "user:<id>")]
pub async fn put(id: u64) -> Result<User, String> {
    Ok(User { id })
}

pub struct Repo;

impl Repo {
    #[cached(key = "repo:<id>")]
    pub async fn method(&self, id: u64) -> User {
        User { id }
    }
}

// A type parameter without the bounds.
#[cached(key = "item:<id>")]
pub async fn generic<T: Default + Send + 'static>(id: u64) -> T {
    let _ = id;
    T::default()
}

fn main() {}

use cachemacro_runtime::{cached, Cache};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

static LOADS: AtomicU64 = AtomicU64::new(0);

#[cached(cache = cache, key = "square:<n>")]
async fn square(cache: &Cache, n: u64) -> u64 {
    LOADS.fetch_add(1, SeqCst);
    n * n
}

// Parameters the key does not read, `mut` bindings and `_` are all accepted.
#[cached(key = "label:<id>", version = 2)]
pub async fn label(id: u64, mut suffix: String, _: bool) -> Result<String, String> {
    suffix.insert(0, '-');
    Ok(format!("{id}{suffix}"))
}

#[cached(key = "item:<id>")]
pub async fn item<T: Serialize + DeserializeOwned + Default + Send + 'static>(id: u64) -> T {
    let _ = id;
    T::default()
}

#[cached(key = "len:<name>")]
pub async fn length<'a>(name: &'a str) -> Option<usize> {
    Some(name.len())
}

// A parameter named like the function does not hide it from `refresh_pair`.
#[cached(key = "pair:<pair.0>")]
async fn pair(pair: (u32, String)) -> String {
    pair.1
}

pub struct Repo {
    cache: Cache,
    tenant: String,
    loads: AtomicU64,
}

impl Repo {
    #[cached(cache = self.cache, key = "<self.tenant>:<id>")]
    pub async fn name(&self, id: u64) -> String {
        self.loads.fetch_add(1, SeqCst);
        format!("{}:{id}", self.tenant)
    }

    #[cached(cache = self.cache)]
    pub async fn bump(&mut self, by: u64) -> u64 {
        *self.loads.get_mut() += by;
        by
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::memory();
    assert_eq!(square(&cache, 3).await, 9);
    assert_eq!(square(&cache, 3).await, 9);
    assert_eq!(LOADS.load(SeqCst), 1);
    invalidate_square(&cache, 3).await.unwrap();
    assert_eq!(square(&cache, 3).await, 9);
    assert_eq!(LOADS.load(SeqCst), 2);
    assert_eq!(refresh_square(&cache, 3).await, 9);
    assert_eq!(LOADS.load(SeqCst), 3);
    assert_eq!(square(&cache, 3).await, 9);
    assert_eq!(LOADS.load(SeqCst), 3);

    assert_eq!(label(1, "a".into(), true).await, Ok("1-a".to_owned()));
    invalidate_label(1, String::new(), false).await.unwrap();
    assert_eq!(
        refresh_label(1, "b".into(), true).await,
        Ok("1-b".to_owned())
    );
    assert_eq!(label(1, "c".into(), true).await, Ok("1-b".to_owned()));

    assert_eq!(item::<u64>(1).await, 0);
    invalidate_item::<u64>(1).await.unwrap();
    assert_eq!(refresh_item::<String>(1).await, "");
    assert_eq!(refresh_length("four").await, Some(4));
    invalidate_length("four").await.unwrap();
    assert_eq!(refresh_pair((1, "one".into())).await, "one");
    invalidate_pair((1, String::new())).await.unwrap();

    let mut repo = Repo {
        cache: Cache::memory(),
        tenant: "acme".into(),
        loads: AtomicU64::new(0),
    };
    assert_eq!(repo.name(7).await, "acme:7");
    assert_eq!(repo.name(7).await, "acme:7");
    assert_eq!(repo.loads.load(SeqCst), 1);
    repo.invalidate_name(7).await.unwrap();
    assert_eq!(repo.name(7).await, "acme:7");
    assert_eq!(repo.loads.load(SeqCst), 2);
    assert_eq!(repo.refresh_name(7).await, "acme:7");
    assert_eq!(repo.loads.load(SeqCst), 3);

    assert_eq!(repo.bump(5).await, 5);
    assert_eq!(repo.refresh_bump(5).await, 5);
    repo.invalidate_bump(5).await.unwrap();
    assert_eq!(repo.loads.load(SeqCst), 13);
}

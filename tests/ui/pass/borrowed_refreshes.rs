//! Every shape of borrowing function compiles: those whose borrows can be owned refresh in the
//! background, the others in the caller, chosen without annotations.
use std::fmt::Display;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use cachemacro_runtime::{cached, Cache};

#[derive(Clone)]
pub struct Service {
    cache: Cache,
}

impl Service {
    #[cached(cache = self.cache, stale = "1m", key = "<name>:<id>")]
    pub async fn owned_self(&self, name: &str, bytes: &[u8], path: &Path, mut id: u64) -> String {
        id += 1;
        format!("{name}{}{}{id}", bytes.len(), path.display())
    }

    // `tenant` is read by the key alone.
    #[cached(key = "<tenant>:<id>")]
    pub async fn key_only(&self, tenant: &str, id: u64) -> u64 {
        id
    }

    #[cached]
    pub async fn not_send(&self, id: u64) -> u64 {
        let here = Rc::new(id);
        tokio::task::yield_now().await;
        *here
    }

    #[cached(key = "dyn")]
    pub async fn unsized_dyn(&self, label: &dyn Display) -> String {
        label.to_string()
    }

    #[cached]
    pub async fn mutable(&mut self, id: u64) -> u64 {
        id
    }
}

pub struct NotClone;

impl NotClone {
    #[cached(key = "in_caller")]
    pub async fn in_caller(&self, shared: &Rc<u64>) -> u64 {
        **shared
    }
}

#[derive(Clone)]
pub struct Generic<T>(T);

impl<T: Clone + Send + Sync + 'static> Generic<T> {
    #[cached]
    pub async fn bounded(&self, id: u64) -> u64 {
        id
    }
}

impl<T> Generic<T> {
    #[cached(key = "unbounded:<id>")]
    pub async fn unbounded(&self, id: u64) -> u64 {
        id
    }
}

#[derive(Clone)]
pub struct Borrowing<'a>(&'a str);

impl Borrowing<'_> {
    // Lifetimes are invisible to the choice: this one opts out.
    #[cached(detach = false)]
    pub async fn opted_out(&self, id: u64) -> String {
        format!("{}{id}", self.0)
    }
}

#[cached(cache = cache, key = "free:<id>")]
async fn free(cache: &Cache, shared: &Arc<Vec<u8>>, id: u64) -> usize {
    shared.len() + usize::try_from(id).unwrap_or(0)
}

fn assert_send<T: Send>(_: &T) {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut service = Service { cache: Cache::memory() };
    let call = service.owned_self("a", b"b", Path::new("c"), 1);
    assert_send(&call);
    assert_eq!(call.await, "a1c2");
    assert_eq!(service.key_only("t", 3).await, 3);
    assert_eq!(service.not_send(4).await, 4);
    assert_eq!(service.unsized_dyn(&5).await, "5");
    assert_eq!(service.mutable(6).await, 6);
    assert_eq!(NotClone.in_caller(&Rc::new(7)).await, 7);
    assert_eq!(Generic(0u8).bounded(8).await, 8);
    assert_eq!(Generic(Rc::new(0)).unbounded(9).await, 9);
    let text = String::from("x");
    assert_eq!(Borrowing(&text).opted_out(10).await, "x10");
    let cache = Cache::memory();
    assert_eq!(free(&cache, &Arc::new(vec![1]), 11).await, 12);
}

use async_trait::async_trait;
use cachemacro_runtime::cached;

#[async_trait]
pub trait Repo {
    async fn name(&self, id: u64) -> String;
}

pub struct Db;

#[async_trait]
impl Repo for Db {
    #[cached(key = "name:<id>", companions = true)]
    async fn name(&self, id: u64) -> String {
        id.to_string()
    }
}

fn main() {}

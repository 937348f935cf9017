use cachemacro_runtime::cached;

// A trait implemented with plain `async fn`, without `#[async_trait]`.
trait Repo {
    async fn name(&self, id: u64) -> Option<String>;
    async fn bump(&mut self, by: u64) -> u64;
}

pub struct Db {
    rows: u64,
}

// `#[cached]` sees the method, not the impl: it adds companions as it would to an inherent impl.
// rustc reports each one the trait impl cannot hold, and one error says what to write.
impl Repo for Db {
    #[cached(key = "name:<id>")]
    async fn name(&self, id: u64) -> Option<String> {
        Some(format!("{id}/{}", self.rows))
    }

    #[cached(key = "bump:<by>")]
    async fn bump(&mut self, by: u64) -> u64 {
        self.rows += by;
        self.rows
    }
}

fn main() {}

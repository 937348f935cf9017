use cachemacro_runtime::{cached, Cache};

pub struct Repo {
    cache: Cache,
    tenant: String,
}

impl Repo {
    #[cached(cache = self.cache, key = "name:<id>")]
    pub async fn name(&self, id: u64) -> Option<String> {
        Some(format!("{}:{id}", self.tenant))
    }

    #[cached(key = "<self.tenant>:<id>")]
    pub async fn scoped(&self, id: u64) -> String {
        format!("{}:{id}", self.tenant)
    }

    #[cached]
    pub async fn default_key(&self, id: u64, page: u32) -> Vec<u64> {
        vec![id, u64::from(page)]
    }
}

fn main() {}

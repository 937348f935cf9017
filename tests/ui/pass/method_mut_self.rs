use cachemacro_runtime::{cached, Cache};

pub struct Counter {
    cache: Cache,
    loads: u64,
}

impl Counter {
    #[cached(cache = self.cache, ttl = 60)]
    pub async fn load(&mut self, id: u64) -> u64 {
        self.loads += 1;
        id + self.loads
    }

    #[cached(key = "counter:<id>")]
    pub async fn fallible(&mut self, id: u64) -> Result<u64, String> {
        self.loads += id;
        Ok(self.loads)
    }
}

fn main() {}

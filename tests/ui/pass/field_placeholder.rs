use cachemacro_runtime::cached;

pub struct Account {
    pub id: u64,
}

pub struct Query {
    pub account: Account,
    pub page: u32,
}

pub struct Service {
    region: &'static str,
}

impl Service {
    #[cached(key = "search:<self.region>:<query.account.id>/<query.page>")]
    pub async fn search(&self, query: Query) -> Vec<u64> {
        vec![query.account.id, u64::from(query.page)]
    }
}

#[cached(key = "pair:<pair.0>:<pair.1>")]
pub async fn pair(pair: (u32, String)) -> String {
    pair.1.repeat(pair.0 as usize)
}

fn main() {}

use cachemacro_runtime::cached;

pub struct Query {
    pub page: u32,
}

#[cached]
pub async fn search(term: String, query: Query) -> Vec<u32> {
    let _ = term;
    vec![query.page]
}

fn main() {}

use cachemacro_runtime::cached;

pub struct Address {
    pub city: String,
}

pub struct User {
    pub id: u64,
    pub address: Address,
}

#[cached(key = "user:<user.address>")]
pub async fn get(user: &User) -> u64 {
    user.id
}

fn main() {}

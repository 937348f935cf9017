use cachemacro_runtime::cached;

pub struct User {
    pub id: u64,
    pub name: String,
}

// rustc reports the field at the template, and suggests no fix it cannot place.
#[cached(key = "user:<user.idd>")]
pub async fn get(user: &User) -> String {
    user.name.clone()
}

#[cached(key = "pair:<pair.2>")]
pub async fn pair(pair: (u32, String)) -> String {
    pair.1
}

fn main() {}

use cachemacro_runtime::cached;

#[cached(ttl_profile = "Product-Price")]
pub async fn price(sku: u64) -> u64 {
    sku
}

fn main() {
    let _ = price(1);
}

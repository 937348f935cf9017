use cachemacro_runtime::{cached, Cache};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

static LOADS: AtomicU64 = AtomicU64::new(0);

#[cached(
    cache = cache,
    key = "session:<token>",
    ttl = "30m",
    sliding = true,
    tags = ["user:<user_id>", "sessions"]
)]
async fn session(cache: &Cache, token: String, user_id: u64) -> Option<String> {
    LOADS.fetch_add(1, SeqCst);
    Some(format!("{token}:{user_id}"))
}

#[cached(cache = cache, key = "price:<sku>", ttl = 60, ttl_profile = "product_price", version = 3)]
async fn price(cache: &Cache, sku: String) -> Result<u64, String> {
    Ok(sku.len() as u64)
}

// Sliding without a ttl profile, explicitly off early refresh, default key with a version.
#[cached(sliding = true, early_refresh = false, version = 1, companions = false)]
async fn counter(id: u64) -> u64 {
    id
}

#[cached(sliding = false, stale = "1m")]
async fn fixed(id: u64) -> u64 {
    id
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cache = Cache::builder()
        .ttl_profile("product_price", Duration::from_secs(300))
        .memory();
    assert_eq!(session(&cache, "t".into(), 7).await, Some("t:7".into()));
    assert_eq!(session(&cache, "t".into(), 7).await, Some("t:7".into()));
    assert_eq!(LOADS.load(SeqCst), 1);
    cache.invalidate_tag("user:7").await.unwrap();
    assert_eq!(session(&cache, "t".into(), 7).await, Some("t:7".into()));
    assert_eq!(LOADS.load(SeqCst), 2);
    cache.invalidate_tag("sessions").await.unwrap();
    session(&cache, "t".into(), 7).await;
    assert_eq!(LOADS.load(SeqCst), 3);

    assert_eq!(price(&cache, "abc".into()).await, Ok(3));
    assert_eq!(cache.get::<u64>("price:abc@v3").await.unwrap(), Some(3));
    assert_eq!(counter(4).await, 4);
    assert_eq!(fixed(4).await, 4);
}

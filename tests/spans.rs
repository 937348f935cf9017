//! Each cache call has a `tracing` span: its function, its outcome, its timings. Alone in its
//! binary: a span's interest is cached per callsite for the whole process, and a test on another
//! thread reaching a callsite while this one's subscriber is being set would leave it disabled.

#[path = "common/logs.rs"]
mod logs;

use cachemacro_runtime::{cached, Cache};

#[cached(cache = cache, key = "traced:<id>", name = "traced")]
async fn traced(cache: &Cache, id: u64) -> u64 {
    tracing::info!("loading from the database");
    id
}

#[tokio::test(flavor = "current_thread")]
async fn each_cache_call_has_a_span_with_its_function_and_outcome() {
    let logs = logs::CapturedLogs::with_span_closes();
    let cache = Cache::memory();
    traced(&cache, 1).await;
    traced(&cache, 1).await;
    invalidate_traced(&cache, 1).await.unwrap();
    let text = logs.text();
    let closes = |span: &str| -> Vec<&str> {
        text.lines()
            .filter(|line| line.contains(&format!("{span}{{")) && line.contains("close"))
            .collect()
    };
    let reads = closes("cache.read");
    assert_eq!(reads.len(), 2, "{text}");
    assert!(reads[0].contains("function=\"traced\"") && reads[0].contains("outcome=\"miss\""));
    assert!(reads[1].contains("outcome=\"hit\""), "{}", reads[1]);
    let fills = closes("cache.fill");
    assert_eq!(fills.len(), 1, "{text}");
    assert!(
        fills[0].contains("load_ms=") && fills[0].contains("cached=true"),
        "{}",
        fills[0]
    );
    // The body's own events nest under the fill.
    let body = text
        .lines()
        .find(|line| line.contains("loading from the database"))
        .expect("the body logged");
    assert!(body.contains("cache.fill{"), "{body}");
    let invalidations = closes("cache.invalidate");
    assert_eq!(invalidations.len(), 1, "{text}");
    assert!(
        invalidations[0].contains("outcome=\"done\""),
        "{}",
        invalidations[0]
    );
}
